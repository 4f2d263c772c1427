/* fuzz_updatereq.c - libFuzzer target for POST /v1/charges/{id} and /v1/refunds/{id} bodies (updatereq_parse_as). */
#include <jansson.h>
#include <sodium.h>

#include "canon.h"
#include "charge.h"
#include "err.h"
#include "fuzz_common.h"
#include "http.h"
#include "updatereq.h"

static const char *const fuzz_ids[] = {
	[UPDATEREQ_CHARGE] = "ch_0123456789abcdefABCDEFgh",
	[UPDATEREQ_REFUND] = "re_0123456789abcdefABCDEFgh",
};

/* A refusal names a 4xx error, leaves req empty and renders as a JSON error object. */
static void fuzz_check_refusal(int rc, const struct updatereq *req, const struct body_error *err)
{
	const struct err_info *info = err_info(rc);
	json_t *obj;

	FUZZ_CHECK(rc < 0);
	FUZZ_CHECK(err->err == rc);
	FUZZ_CHECK(info->status >= 400 && info->status < 500);
	FUZZ_CHECK(req->root == NULL && req->description == NULL && req->metadata_json == NULL);
	obj = http_error_object(rc, err->param, err->message);
	FUZZ_CHECK(obj != NULL);
	json_decref(obj);
}

/*
 * An accepted body holds only the kind's fields; description is within its
 * limit; metadata is absent, "" or an object of at most 50 strings; and its
 * canonical JSON parses to the same update with the same fingerprint.
 */
static void fuzz_check_accepted(const struct updatereq *req, enum updatereq_kind kind)
{
	struct updatereq again;
	struct body_error err;
	const char *key;
	json_t *v, *md;
	char *text;

	json_object_foreach(req->root, key, v) {
		(void)v;
		FUZZ_CHECK(strcmp(key, "metadata") == 0 ||
			   (kind == UPDATEREQ_CHARGE && strcmp(key, "description") == 0));
	}
	if (req->description != NULL)
		FUZZ_CHECK(charge_utf8_chars(req->description, strlen(req->description)) <=
			   CHARGE_DESCRIPTION_MAX);
	if (req->metadata_json != NULL) {
		md = json_loads(req->metadata_json, JSON_DECODE_ANY, NULL);
		FUZZ_CHECK(md != NULL);
		FUZZ_CHECK((json_is_string(md) && json_string_length(md) == 0) ||
			   (json_is_object(md) && json_object_size(md) <= CHARGE_METADATA_MAX_KEYS));
		json_object_foreach(md, key, v)
			FUZZ_CHECK(json_is_string(v));
		json_decref(md);
	}
	text = canon_dump(req->root);
	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(updatereq_parse_as(&again, kind, fuzz_ids[kind], text, strlen(text),
				      BODY_FORMAT_JSON, &err) == PAY_OK);
	/* A form and its JSON twin are one request: one fingerprint. */
	FUZZ_CHECK(memcmp(again.fingerprint, req->fingerprint, sizeof(again.fingerprint)) == 0);
	FUZZ_CHECK((again.description == NULL) == (req->description == NULL));
	FUZZ_CHECK(again.description == NULL || strcmp(again.description, req->description) == 0);
	FUZZ_CHECK((again.metadata_json == NULL) == (req->metadata_json == NULL));
	updatereq_fini(&again);
	free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_CHECK(sodium_init() >= 0);
	return 0;
}

static void fuzz_one(const uint8_t *data, size_t size)
{
	/* The first byte picks the format (bit 0) and the kind (bit 1), so every pair meets every input. */
	enum body_format format = size > 0 && (data[0] & 1) ? BODY_FORMAT_FORM : BODY_FORMAT_JSON;
	enum updatereq_kind kind = size > 0 && (data[0] & 2) ? UPDATEREQ_REFUND : UPDATEREQ_CHARGE;
	struct updatereq req;
	struct body_error err;
	int rc;

	if (size > 0) {
		data++;
		size--;
	}
	memset(&err, 0, sizeof(err));
	rc = updatereq_parse_as(&req, kind, fuzz_ids[kind], (const char *)data, size, format, &err);
	if (rc != PAY_OK) {
		fuzz_check_refusal(rc, &req, &err);
		updatereq_fini(&req);
		return;
	}
	fuzz_check_accepted(&req, kind);
	updatereq_fini(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_on_worker_stack(fuzz_one, data, size);
	return 0;
}

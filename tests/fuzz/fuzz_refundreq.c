/* fuzz_refundreq.c - libFuzzer target for POST /v1/refunds bodies (refundreq_parse). */
#include <jansson.h>
#include <sodium.h>

#include "canon.h"
#include "charge.h"
#include "err.h"
#include "fuzz_common.h"
#include "http.h"
#include "ids.h"
#include "refundreq.h"

static const char *const fuzz_fields[] = { "charge", "amount", "reason", "metadata", NULL };
static const char *const fuzz_reasons[] = { "duplicate", "fraudulent", "requested_by_customer", NULL };

static int fuzz_in(const char *const *list, const char *s)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++) {
		if (strcmp(list[i], s) == 0)
			return 1;
	}
	return 0;
}

/* A refusal names a 4xx error, leaves req empty and renders as a JSON error object. */
static void fuzz_check_refusal(int rc, const struct refundreq *req, const struct body_error *err)
{
	const struct err_info *info = err_info(rc);
	json_t *obj;

	FUZZ_CHECK(rc < 0);
	FUZZ_CHECK(err->err == rc);
	FUZZ_CHECK(info->status >= 400 && info->status < 500);
	FUZZ_CHECK(req->root == NULL && req->metadata_json == NULL && req->charge == NULL &&
		   req->reason == NULL && !req->has_amount);
	FUZZ_CHECK(err->param[0] == '\0' || fuzz_in(fuzz_fields, err->param) ||
		   rc == PAY_EPARAM_UNKNOWN);
	obj = http_error_object(rc, err->param, err->message);
	FUZZ_CHECK(obj != NULL);
	json_decref(obj);
}

static void fuzz_check_accepted(const struct refundreq *req)
{
	unsigned char fp[CANON_FINGERPRINT_BYTES];
	const char *key;
	json_t *v, *md;
	size_t i;

	json_object_foreach(req->root, key, v) {
		(void)v;
		FUZZ_CHECK(fuzz_in(fuzz_fields, key));
	}
	/* The charge is a well-formed id: "ch_" and 24 base62 characters. */
	FUZZ_CHECK(req->charge != NULL && strlen(req->charge) == 3 + IDS_RANDOM_CHARS);
	FUZZ_CHECK(strncmp(req->charge, "ch_", 3) == 0);
	for (i = 3; req->charge[i] != '\0'; i++)
		FUZZ_CHECK(fuzz_is_base62(req->charge[i]));
	FUZZ_CHECK(json_is_string(json_object_get(req->root, "charge")));
	v = json_object_get(req->root, "amount");
	FUZZ_CHECK(req->has_amount == (v != NULL && !json_is_null(v)));
	if (req->has_amount) {
		FUZZ_CHECK(json_is_integer(v) && json_integer_value(v) == req->amount);
		FUZZ_CHECK(req->amount >= CHARGE_AMOUNT_MIN && req->amount <= CHARGE_AMOUNT_MAX);
	}
	FUZZ_CHECK(req->reason == NULL || fuzz_in(fuzz_reasons, req->reason));
	md = json_loads(req->metadata_json, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(json_is_object(md) && json_object_size(md) <= CHARGE_METADATA_MAX_KEYS);
	json_object_foreach(md, key, v)
		FUZZ_CHECK(json_is_string(v));
	json_decref(md);
	FUZZ_CHECK(canon_fingerprint("POST", REFUNDREQ_ROUTE, req->root, fp) == PAY_OK);
	FUZZ_CHECK(memcmp(fp, req->fingerprint, sizeof(fp)) == 0);
}

/* The canonical spelling of an accepted request is accepted with the same fields and fingerprint. */
static void fuzz_check_canonical(const struct refundreq *req)
{
	struct refundreq again;
	struct body_error err;
	char *text = canon_dump(req->root);

	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(refundreq_parse(&again, text, strlen(text), &err) == PAY_OK);
	FUZZ_CHECK(memcmp(again.fingerprint, req->fingerprint, sizeof(again.fingerprint)) == 0);
	FUZZ_CHECK(strcmp(again.charge, req->charge) == 0);
	FUZZ_CHECK(again.has_amount == req->has_amount && again.amount == req->amount);
	FUZZ_CHECK((again.reason == NULL) == (req->reason == NULL));
	refundreq_fini(&again);
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
	struct refundreq req;
	struct body_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = refundreq_parse(&req, (const char *)data, size, &err);
	if (rc != PAY_OK) {
		fuzz_check_refusal(rc, &req, &err);
		refundreq_fini(&req);
		return;
	}
	fuzz_check_accepted(&req);
	fuzz_check_canonical(&req);
	refundreq_fini(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_on_worker_stack(fuzz_one, data, size);
	return 0;
}

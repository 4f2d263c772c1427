/* fuzz_capturereq.c - libFuzzer target for POST /v1/charges/{id}/capture bodies (capturereq_parse_as). */
#include <jansson.h>
#include <sodium.h>

#include "canon.h"
#include "capturereq.h"
#include "charge.h"
#include "err.h"
#include "fuzz_common.h"
#include "http.h"

#define FUZZ_CHARGE "ch_0123456789abcdefABCDEFgh"

/* A refusal names a 4xx error, leaves req empty and renders as a JSON error object. */
static void fuzz_check_refusal(int rc, const struct capturereq *req, const struct body_error *err)
{
	const struct err_info *info = err_info(rc);
	json_t *obj;

	FUZZ_CHECK(rc < 0);
	FUZZ_CHECK(err->err == rc);
	FUZZ_CHECK(info->status >= 400 && info->status < 500);
	FUZZ_CHECK(req->root == NULL && !req->has_amount);
	FUZZ_CHECK(err->param[0] == '\0' || strcmp(err->param, "amount") == 0 ||
		   rc == PAY_EPARAM_UNKNOWN || rc == PAY_EFORM);
	obj = http_error_object(rc, err->param, err->message);
	FUZZ_CHECK(obj != NULL);
	json_decref(obj);
}

/* An accepted body holds at most an amount in range; its canonical JSON parses the same. */
static void fuzz_check_accepted(const struct capturereq *req, enum body_format format)
{
	struct capturereq again;
	struct body_error err;
	const char *key;
	json_t *v;
	char *text;

	json_object_foreach(req->root, key, v) {
		(void)v;
		FUZZ_CHECK(strcmp(key, "amount") == 0);
	}
	v = json_object_get(req->root, "amount");
	FUZZ_CHECK(req->has_amount == (v != NULL && !json_is_null(v)));
	if (req->has_amount) {
		FUZZ_CHECK(json_is_integer(v) && json_integer_value(v) == req->amount);
		FUZZ_CHECK(req->amount >= CHARGE_AMOUNT_MIN && req->amount <= CHARGE_AMOUNT_MAX);
	}
	text = canon_dump(req->root);
	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(capturereq_parse_as(&again, FUZZ_CHARGE, text, strlen(text), BODY_FORMAT_JSON,
				       &err) == PAY_OK);
	/* A form and its JSON twin are one request: one fingerprint. */
	FUZZ_CHECK(memcmp(again.fingerprint, req->fingerprint, sizeof(again.fingerprint)) == 0);
	FUZZ_CHECK(again.has_amount == req->has_amount && again.amount == req->amount);
	capturereq_fini(&again);
	free(text);
	(void)format;
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
	/* The first byte picks the format, so both decoders meet every input. */
	enum body_format format = size > 0 && (data[0] & 1) ? BODY_FORMAT_FORM : BODY_FORMAT_JSON;
	struct capturereq req;
	struct body_error err;
	int rc;

	if (size > 0) {
		data++;
		size--;
	}
	memset(&err, 0, sizeof(err));
	rc = capturereq_parse_as(&req, FUZZ_CHARGE, (const char *)data, size, format, &err);
	if (rc != PAY_OK) {
		fuzz_check_refusal(rc, &req, &err);
		capturereq_fini(&req);
		return;
	}
	fuzz_check_accepted(&req, format);
	capturereq_fini(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_on_worker_stack(fuzz_one, data, size);
	return 0;
}

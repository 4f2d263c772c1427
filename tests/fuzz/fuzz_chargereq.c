/* fuzz_chargereq.c - libFuzzer target for POST /v1/charges bodies (chargereq_parse). */
#include <jansson.h>
#include <sodium.h>

#include "canon.h"
#include "charge.h"
#include "chargereq.h"
#include "err.h"
#include "fuzz_common.h"
#include "http.h"

static const char *const fuzz_fields[] = {
	"amount", "currency", "source", "description", "metadata", "capture", NULL,
};

static int fuzz_field_known(const char *key)
{
	size_t i;

	for (i = 0; fuzz_fields[i] != NULL; i++) {
		if (strcmp(fuzz_fields[i], key) == 0)
			return 1;
	}
	return 0;
}

/* A refusal must name a real error with a 4xx status, leave req empty, and render as JSON. */
static void fuzz_check_refusal(int rc, const struct chargereq *req, const struct body_error *err)
{
	const struct err_info *info = err_info(rc);
	json_t *obj;

	FUZZ_CHECK(rc < 0);
	FUZZ_CHECK(err->err == rc);
	FUZZ_CHECK(info->status >= 400 && info->status < 500);
	FUZZ_CHECK(req->root == NULL && req->metadata_json == NULL && req->currency == NULL &&
		   req->source == NULL && req->description == NULL);
	FUZZ_CHECK(memchr(err->param, '\0', sizeof(err->param)) != NULL);
	FUZZ_CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
	FUZZ_CHECK(err->param[0] == '\0' || fuzz_field_known(err->param) ||
		   rc == PAY_EPARAM_UNKNOWN);
	/* What the client sees: http_reply_error falls back to a 500 when this is NULL. */
	obj = http_error_object(rc, err->param, err->message);
	FUZZ_CHECK(obj != NULL);
	json_decref(obj);
}

/* Every field of an accepted request is within the rules of charge.h. */
static void fuzz_check_accepted(const struct chargereq *req)
{
	unsigned char fp[CANON_FINGERPRINT_BYTES];
	enum charge_outcome outcome;
	json_t *md, *want_md;
	const char *key;
	json_t *v;
	size_t i;
	int known = 0;

	FUZZ_CHECK(json_is_object(req->root));
	json_object_foreach(req->root, key, v) {
		(void)v;
		FUZZ_CHECK(fuzz_field_known(key));
	}
	FUZZ_CHECK(req->amount >= CHARGE_AMOUNT_MIN && req->amount <= CHARGE_AMOUNT_MAX);
	FUZZ_CHECK(json_is_integer(json_object_get(req->root, "amount")));
	FUZZ_CHECK(json_integer_value(json_object_get(req->root, "amount")) == req->amount);
	FUZZ_CHECK(req->currency != NULL && strlen(req->currency) == 3);
	for (i = 0; charge_currencies[i] != NULL; i++)
		known |= strcmp(charge_currencies[i], req->currency) == 0;
	FUZZ_CHECK(known);
	FUZZ_CHECK(req->source != NULL && strncmp(req->source, "tok_", 4) == 0);
	FUZZ_CHECK(charge_decide(req->source, &outcome) == PAY_OK && outcome == req->outcome);
	FUZZ_CHECK(req->description == NULL ||
		   charge_utf8_chars(req->description, strlen(req->description)) <=
			   CHARGE_DESCRIPTION_MAX);

	/* metadata_json is the client's metadata, compact, or {} when absent. */
	FUZZ_CHECK(req->metadata_json != NULL);
	md = json_loads(req->metadata_json, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(json_is_object(md));
	FUZZ_CHECK(json_object_size(md) <= CHARGE_METADATA_MAX_KEYS);
	json_object_foreach(md, key, v) {
		FUZZ_CHECK(key[0] != '\0');
		FUZZ_CHECK(charge_utf8_chars(key, strlen(key)) <= CHARGE_METADATA_KEY_MAX);
		FUZZ_CHECK(json_is_string(v));
		FUZZ_CHECK(charge_utf8_chars(json_string_value(v), json_string_length(v)) <=
			   CHARGE_METADATA_VALUE_MAX);
	}
	want_md = json_object_get(req->root, "metadata");
	if (want_md == NULL || json_is_null(want_md))
		FUZZ_CHECK(json_object_size(md) == 0);
	else
		FUZZ_CHECK(json_equal(md, want_md));
	json_decref(md);

	/* capture is a boolean, or absent or null (then true). */
	v = json_object_get(req->root, "capture");
	FUZZ_CHECK(v == NULL || json_is_null(v) || json_is_boolean(v));
	FUZZ_CHECK(req->capture == !(v != NULL && json_is_false(v)));

	FUZZ_CHECK(canon_fingerprint("POST", CHARGEREQ_ROUTE, req->root, fp) == PAY_OK);
	FUZZ_CHECK(memcmp(fp, req->fingerprint, sizeof(fp)) == 0);
}

/*
 * Re-sending the same request in another spelling (canonical, or indented
 * in the client's key order) must be accepted with the same fields and the
 * same fingerprint: that is what makes retries with one Idempotency-Key safe.
 */
static void fuzz_check_respelling(const struct chargereq *req, size_t flags)
{
	struct chargereq again;
	struct body_error err;
	json_t *a, *b;
	char *text = flags ? json_dumps(req->root, flags) : canon_dump(req->root);

	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(chargereq_parse(&again, text, strlen(text), &err) == PAY_OK);
	FUZZ_CHECK(memcmp(again.fingerprint, req->fingerprint, sizeof(again.fingerprint)) == 0);
	FUZZ_CHECK(again.amount == req->amount && again.outcome == req->outcome);
	FUZZ_CHECK(strcmp(again.currency, req->currency) == 0);
	FUZZ_CHECK(strcmp(again.source, req->source) == 0);
	FUZZ_CHECK((again.description == NULL) == (req->description == NULL));
	FUZZ_CHECK(again.description == NULL || strcmp(again.description, req->description) == 0);
	a = json_loads(again.metadata_json, 0, NULL);
	b = json_loads(req->metadata_json, 0, NULL);
	FUZZ_CHECK(a != NULL && b != NULL && json_equal(a, b));
	json_decref(a);
	json_decref(b);
	chargereq_fini(&again);
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
	struct chargereq req;
	struct body_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = chargereq_parse(&req, (const char *)data, size, &err);
	if (rc != PAY_OK) {
		fuzz_check_refusal(rc, &req, &err);
		chargereq_fini(&req);   /* harmless after a refusal */
		return;
	}
	fuzz_check_accepted(&req);
	fuzz_check_respelling(&req, 0);
	fuzz_check_respelling(&req, JSON_INDENT(3) | JSON_PRESERVE_ORDER);
	chargereq_fini(&req);
	FUZZ_CHECK(req.root == NULL && req.metadata_json == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_on_worker_stack(fuzz_one, data, size);
	return 0;
}

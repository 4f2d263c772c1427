/* chargereq.c - decoding and validating the body of POST /v1/charges. */
#include "chargereq.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

static const char *const chargereq_fields[] = {
	"amount", "currency", "source", "description", "metadata", "capture", NULL,
};

int chargereq_parse(struct chargereq *req, const char *buf, size_t len, struct body_error *err)
{
	return chargereq_parse_as(req, buf, len, BODY_FORMAT_JSON, err);
}

int chargereq_parse_as(struct chargereq *req, const char *buf, size_t len, enum body_format format,
		       struct body_error *err)
{
	bool present;
	int rc;

	memset(req, 0, sizeof(*req));
	rc = body_load_as(buf, len, format, &req->root, err);
	if (rc != PAY_OK)
		goto fail;
	rc = body_check_fields(req->root, chargereq_fields, err);
	if (rc != PAY_OK)
		goto fail;
	/* A form's amount is a string: from here on it is the integer a JSON body would have. */
	if (format == BODY_FORMAT_FORM && (rc = body_form_integer(req->root, "amount")) != PAY_OK) {
		body_fail(err, rc, NULL, NULL);
		goto fail;
	}

	rc = body_get_integer(req->root, "amount", true, &req->amount, &present, err);
	if (rc != PAY_OK)
		goto fail;
	rc = charge_check_amount(req->amount);
	if (rc != PAY_OK) {
		body_fail(err, rc, "amount", "Invalid amount: must be an integer from %lld to %lld.",
			  CHARGE_AMOUNT_MIN, CHARGE_AMOUNT_MAX);
		goto fail;
	}

	rc = body_get_string(req->root, "currency", true, 3, &req->currency, err);
	if (rc == PAY_ESTRING_TOO_LONG || (rc == PAY_OK && charge_check_currency(req->currency) != PAY_OK)) {
		rc = body_fail(err, PAY_ECURRENCY, "currency",
			       "Invalid currency: use a lowercase ISO 4217 code such as usd.");
		goto fail;
	}
	if (rc != PAY_OK)
		goto fail;

	rc = body_get_string(req->root, "source", true, CHARGE_SOURCE_MAX, &req->source, err);
	if (rc != PAY_OK)
		goto fail;
	rc = charge_decide(req->source, &req->outcome);
	if (rc != PAY_OK) {
		body_fail(err, rc, "source", "No such token: '%.64s'.", req->source);
		goto fail;
	}

	rc = body_get_string(req->root, "description", false, CHARGE_DESCRIPTION_MAX,
			     &req->description, err);
	if (rc != PAY_OK)
		goto fail;

	rc = body_get_metadata_as(req->root, format, &req->metadata_json, err);
	if (rc != PAY_OK)
		goto fail;

	/* A form's capture is "true" or "false": from here on the boolean JSON would have. */
	if (format == BODY_FORMAT_FORM && (rc = body_form_boolean(req->root, "capture")) != PAY_OK) {
		body_fail(err, rc, NULL, NULL);
		goto fail;
	}
	rc = body_get_boolean(req->root, "capture", true, &req->capture, err);
	if (rc != PAY_OK)
		goto fail;

	rc = canon_fingerprint("POST", CHARGEREQ_ROUTE, req->root, req->fingerprint);
	if (rc != PAY_OK) {
		body_fail(err, rc, NULL, NULL);
		goto fail;
	}
	return PAY_OK;
fail:
	chargereq_fini(req);
	return rc;
}

void chargereq_fini(struct chargereq *req)
{
	json_decref(req->root);
	free(req->metadata_json);
	memset(req, 0, sizeof(*req));
}

/* refundreq.c - decoding and validating the body of POST /v1/refunds. */
#include "refundreq.h"

#include <stdlib.h>
#include <string.h>

#include "charge.h"
#include "err.h"
#include "ids.h"

static const char *const refundreq_fields[] = { "charge", "amount", "reason", "metadata", NULL };

int refundreq_parse(struct refundreq *req, const char *buf, size_t len, struct body_error *err)
{
	return refundreq_parse_as(req, buf, len, BODY_FORMAT_JSON, err);
}

int refundreq_parse_as(struct refundreq *req, const char *buf, size_t len, enum body_format format,
		       struct body_error *err)
{
	int rc;

	memset(req, 0, sizeof(*req));
	rc = body_load_as(buf, len, format, &req->root, err);
	if (rc == PAY_OK)
		rc = body_check_fields(req->root, refundreq_fields, err);
	/* A form's amount is a string: from here on it is the integer a JSON body would have. */
	if (rc == PAY_OK && format == BODY_FORMAT_FORM &&
	    (rc = body_form_integer(req->root, "amount")) != PAY_OK)
		body_fail(err, rc, NULL, NULL);
	if (rc == PAY_OK)
		rc = body_get_string(req->root, "charge", true, 255, &req->charge, err);
	if (rc == PAY_OK && !ids_valid(req->charge, "ch_"))
		rc = body_fail(err, PAY_ENOT_FOUND, "charge", "No such charge: '%.40s'.", req->charge);
	if (rc == PAY_OK)
		rc = body_get_integer(req->root, "amount", false, &req->amount, &req->has_amount, err);
	if (rc == PAY_OK && req->has_amount && charge_check_amount(req->amount) != PAY_OK)
		rc = body_fail(err, charge_check_amount(req->amount), "amount",
			       "Invalid amount: must be an integer from %lld to %lld.",
			       CHARGE_AMOUNT_MIN, CHARGE_AMOUNT_MAX);
	if (rc == PAY_OK)
		rc = body_get_string(req->root, "reason", false, 64, &req->reason, err);
	if (rc == PAY_OK && req->reason != NULL && !charge_refund_reason_valid(req->reason))
		rc = body_fail(err, PAY_EPARAM_INVALID, "reason",
			       "reason must be duplicate, fraudulent or requested_by_customer.");
	if (rc == PAY_OK)
		rc = body_get_metadata_as(req->root, format, &req->metadata_json, err);
	if (rc == PAY_OK) {
		rc = canon_fingerprint("POST", REFUNDREQ_ROUTE, req->root, req->fingerprint);
		if (rc != PAY_OK)
			body_fail(err, rc, NULL, NULL);
	}
	if (rc != PAY_OK)
		refundreq_fini(req);
	return rc;
}

void refundreq_fini(struct refundreq *req)
{
	json_decref(req->root);
	free(req->metadata_json);
	memset(req, 0, sizeof(*req));
}

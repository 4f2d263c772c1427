/* capturereq.c - decoding and validating the body of POST /v1/charges/{id}/capture. */
#include "capturereq.h"

#include <stdio.h>
#include <string.h>

#include "charge.h"
#include "err.h"
#include "ids.h"

static const char *const capturereq_fields[] = { "amount", NULL };

int capturereq_parse_as(struct capturereq *req, const char *charge_id, const char *buf, size_t len,
			enum body_format format, struct body_error *err)
{
	char route[sizeof(CAPTUREREQ_ROUTE) + IDS_MAX];
	int rc;

	memset(req, 0, sizeof(*req));
	if (len == 0) {
		req->root = json_object();
		rc = req->root ? PAY_OK : body_fail(err, PAY_ENOMEM, NULL, NULL);
	} else {
		rc = body_load_as(buf, len, format, &req->root, err);
	}
	if (rc == PAY_OK)
		rc = body_check_fields(req->root, capturereq_fields, err);
	/* A form's amount is a string: from here on it is the integer a JSON body would have. */
	if (rc == PAY_OK && format == BODY_FORMAT_FORM &&
	    (rc = body_form_integer(req->root, "amount")) != PAY_OK)
		body_fail(err, rc, NULL, NULL);
	if (rc == PAY_OK)
		rc = body_get_integer(req->root, "amount", false, &req->amount, &req->has_amount, err);
	if (rc == PAY_OK && req->has_amount && charge_check_amount(req->amount) != PAY_OK)
		rc = body_fail(err, charge_check_amount(req->amount), "amount",
			       "Invalid amount: must be an integer from %lld to %lld.",
			       CHARGE_AMOUNT_MIN, CHARGE_AMOUNT_MAX);
	if (rc == PAY_OK) {
		snprintf(route, sizeof(route), "/v1/charges/%s/capture", charge_id);
		rc = canon_fingerprint("POST", route, req->root, req->fingerprint);
		if (rc != PAY_OK)
			body_fail(err, rc, NULL, NULL);
	}
	if (rc != PAY_OK)
		capturereq_fini(req);
	return rc;
}

void capturereq_fini(struct capturereq *req)
{
	json_decref(req->root);
	memset(req, 0, sizeof(*req));
}

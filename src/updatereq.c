/* updatereq.c - decoding and validating the body of POST /v1/charges/{id} and POST /v1/refunds/{id}. */
#include "updatereq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charge.h"
#include "err.h"
#include "ids.h"

/* What each kind may change, its route (before the id) and the sentence that says so. */
static const struct {
	const char *const *fields;
	const char *route;
	const char *fields_text;
} updatereq_kinds[] = {
	[UPDATEREQ_CHARGE] = { (const char *const[]){ "description", "metadata", NULL },
			       "/v1/charges/", "description and metadata" },
	[UPDATEREQ_REFUND] = { (const char *const[]){ "metadata", NULL }, "/v1/refunds/",
			       "metadata" },
};

/*
 * Reads obj["metadata"] of an update into *json_out: NULL when absent or
 * null, "\"\"" for the empty string (remove every key), else the object
 * validated and serialised as on create.
 */
static int updatereq_metadata(const json_t *obj, enum body_format format, char **json_out,
			      struct body_error *err)
{
	json_t *md = json_object_get(obj, "metadata");

	*json_out = NULL;
	if (md == NULL || json_is_null(md))
		return PAY_OK;
	if (json_is_string(md) && json_string_length(md) == 0) {
		*json_out = strdup("\"\"");
		return *json_out ? PAY_OK : body_fail(err, PAY_ENOMEM, NULL, NULL);
	}
	if (!json_is_object(md))
		return body_fail(err, PAY_EMETADATA, "metadata",
				 "Invalid metadata: must be an object, or \"\" to remove every key.");
	return body_get_metadata_as(obj, format, json_out, err);
}

int updatereq_parse_as(struct updatereq *req, enum updatereq_kind kind, const char *id,
		       const char *buf, size_t len, enum body_format format, struct body_error *err)
{
	char route[sizeof("/v1/charges/") + IDS_MAX], param[sizeof(err->param)];
	int rc;

	memset(req, 0, sizeof(*req));
	if (len == 0) {
		req->root = json_object();
		rc = req->root ? PAY_OK : body_fail(err, PAY_ENOMEM, NULL, NULL);
	} else {
		rc = body_load_as(buf, len, format, &req->root, err);
	}
	if (rc == PAY_OK) {
		rc = body_check_fields(req->root, updatereq_kinds[kind].fields, err);
		/* Stripe updates a few more fields; this service only these: say so. */
		if (rc == PAY_EPARAM_UNKNOWN) {
			memcpy(param, err->param, sizeof(param));
			body_fail(err, rc, param, "Received unknown parameter: %.100s. An update takes only %s.",
				  param, updatereq_kinds[kind].fields_text);
		}
	}
	if (rc == PAY_OK && kind == UPDATEREQ_CHARGE)
		rc = body_get_string(req->root, "description", false, CHARGE_DESCRIPTION_MAX,
				     &req->description, err);
	if (rc == PAY_OK)
		rc = updatereq_metadata(req->root, format, &req->metadata_json, err);
	if (rc == PAY_OK) {
		snprintf(route, sizeof(route), "%s%s", updatereq_kinds[kind].route, id);
		rc = canon_fingerprint("POST", route, req->root, req->fingerprint);
		if (rc != PAY_OK)
			body_fail(err, rc, NULL, NULL);
	}
	if (rc != PAY_OK)
		updatereq_fini(req);
	return rc;
}

void updatereq_fini(struct updatereq *req)
{
	json_decref(req->root);
	free(req->metadata_json);
	memset(req, 0, sizeof(*req));
}

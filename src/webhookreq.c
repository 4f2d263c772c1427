/* webhookreq.c - decoding and validating the body of POST /v1/webhook_endpoints. */
#include "webhookreq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "event.h"

static const char *const webhookreq_fields[] = { "url", "enabled_events", NULL };

/*
 * Validates enabled_events (a non-empty array of known types or "*") and
 * returns it as a compact JSON array in *json (caller frees). PAY_OK or the error.
 */
static int webhookreq_events(const json_t *root, enum body_format format, char **json,
			     struct body_error *err)
{
	const json_t *events = json_object_get(root, "enabled_events");
	const json_t *v;
	size_t i;

	*json = NULL;
	if (events == NULL || json_is_null(events))
		return body_fail(err, PAY_EPARAM_MISSING, "enabled_events",
				 "Missing required parameter: enabled_events.");
	if (!json_is_array(events) || json_array_size(events) == 0 ||
	    json_array_size(events) > WEBHOOKREQ_MAX_EVENTS)
		return body_fail(err, PAY_EPARAM_INVALID, "enabled_events",
				 "enabled_events must be a list of 1 to %d event types, or [\"*\"].",
				 WEBHOOKREQ_MAX_EVENTS);
	json_array_foreach(events, i, v) {
		char param[48];

		/* A form names the element as the client wrote it: enabled_events[1]. */
		if (format == BODY_FORMAT_FORM)
			snprintf(param, sizeof(param), "enabled_events[%zu]", i);
		else
			snprintf(param, sizeof(param), "enabled_events");
		if (!json_is_string(v) || !event_type_known(json_string_value(v), true))
			return body_fail(err, PAY_EPARAM_INVALID, param,
					 "Unknown event type in enabled_events at index %zu.", i);
	}
	*json = json_dumps(events, JSON_COMPACT);
	return *json != NULL ? PAY_OK : body_fail(err, PAY_ENOMEM, NULL, NULL);
}

int webhookreq_parse(struct webhookreq *req, const char *buf, size_t len, enum body_format format,
		     struct body_error *err)
{
	int rc;

	memset(req, 0, sizeof(*req));
	rc = body_load_as(buf, len, format, &req->root, err);
	if (rc == PAY_OK)
		rc = body_check_fields(req->root, webhookreq_fields, err);
	if (rc == PAY_OK)
		rc = body_get_string(req->root, "url", true, URLCHECK_MAX, &req->url, err);
	if (rc == PAY_OK && urlcheck_parse(req->url, req->host, sizeof(req->host)) != PAY_OK)
		rc = body_fail(err, PAY_EPARAM_INVALID, "url",
			       "url must be an absolute http:// or https:// URL.");
	if (rc == PAY_OK)
		rc = webhookreq_events(req->root, format, &req->events_json, err);
	if (rc != PAY_OK)
		webhookreq_fini(req);
	return rc;
}

void webhookreq_fini(struct webhookreq *req)
{
	json_decref(req->root);
	free(req->events_json);
	memset(req, 0, sizeof(*req));
}

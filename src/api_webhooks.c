/* api_webhooks.c - webhook endpoints and the dead-letter API of webhook deliveries. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "cfg.h"
#include "db.h"
#include "db_webhook.h"
#include "err.h"
#include "event.h"
#include "ids.h"
#include "urlcheck.h"
#include "whsign.h"

#include <sodium.h>

#define API_MAX_ENABLED_EVENTS 32

static const char *const api_webhook_fields[] = { "url", "enabled_events", NULL };

/*
 * Validates enabled_events (a non-empty array of known types or "*") and
 * returns it as a compact JSON array in *json (caller frees). PAY_OK or the error.
 */
static int api_enabled_events(const json_t *root, char **json, struct body_error *err)
{
	const json_t *events = json_object_get(root, "enabled_events");
	const json_t *v;
	size_t i;

	*json = NULL;
	if (events == NULL || json_is_null(events))
		return body_fail(err, PAY_EPARAM_MISSING, "enabled_events",
				 "Missing required parameter: enabled_events.");
	if (!json_is_array(events) || json_array_size(events) == 0 ||
	    json_array_size(events) > API_MAX_ENABLED_EVENTS)
		return body_fail(err, PAY_EPARAM_INVALID, "enabled_events",
				 "enabled_events must be a list of 1 to %d event types, or [\"*\"].",
				 API_MAX_ENABLED_EVENTS);
	json_array_foreach(events, i, v) {
		if (!json_is_string(v) || !event_type_known(json_string_value(v), true))
			return body_fail(err, PAY_EPARAM_INVALID, "enabled_events",
					 "Unknown event type in enabled_events at index %zu.", i);
	}
	*json = json_dumps(events, JSON_COMPACT);
	return *json ? PAY_OK : PAY_ENOMEM;
}

int api_webhooks_create(struct http_req *r)
{
	char host[URLCHECK_MAX + 1], id[IDS_MAX], secret[WHSIGN_SECRET_MAX] = { 0 };
	struct body_error err = { 0 };
	struct db_conn *conn = NULL;
	const char *url = NULL;
	char *events = NULL, *json = NULL;
	json_t *root = NULL;
	int rc;

	if (http_read_json_body_or_reply(r) != PAY_OK)
		goto out;
	rc = body_load(r->body, r->body_len, &root, &err);
	if (rc == PAY_OK)
		rc = body_check_fields(root, api_webhook_fields, &err);
	if (rc == PAY_OK)
		rc = body_get_string(root, "url", true, URLCHECK_MAX, &url, &err);
	if (rc == PAY_OK && urlcheck_parse(url, host, sizeof(host)) != PAY_OK)
		rc = body_fail(&err, PAY_EPARAM_INVALID, "url",
			       "url must be an absolute http:// or https:// URL.");
	/*
	 * Server-side request forgery: no webhooks into our own network unless
	 * allowed. Nothing is resolved here (a name server that never answers
	 * would hold this worker thread): address literals and names that are
	 * always local are refused now, and the relay checks every address it
	 * connects to.
	 */
	if (rc == PAY_OK && !r->app->cfg->webhook_allow_private && urlcheck_host_allowed(host) != PAY_OK)
		rc = body_fail(&err, PAY_EPARAM_INVALID, "url",
			       "url must be a public address or name (loopback, private and"
			       " link-local addresses, localhost and single-label names are refused).");
	if (rc == PAY_OK)
		rc = api_enabled_events(root, &events, &err);
	if (rc != PAY_OK) {
		http_reply_error(r, err.err, err.param, err.message);
		goto out;
	}
	ids_generate(id, sizeof(id), "we_");
	whsign_secret_generate(secret);
	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_webhook_create(conn, id, r->user_id, url, events, secret, &json);
		db_pool_release(r->app->pool, conn);
	}
	if (rc != PAY_OK)
		http_reply_error(r, rc, NULL, NULL);
	else   /* the secret is shown here, once */
		http_reply_with_member(r, 201, json, "secret", secret);
out:
	sodium_memzero(secret, sizeof(secret));
	free(events);
	free(json);
	json_decref(root);
	return r->status;
}

int api_webhooks_list(struct http_req *r)
{
	struct db_conn *conn = NULL;
	char *json = NULL;
	int rc;

	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_webhook_list(conn, r->user_id, &json);
		db_pool_release(r->app->pool, conn);
	}
	if (rc == PAY_OK)
		http_reply_list(r, "/v1/webhook_endpoints", json, false);
	else
		http_reply_error(r, rc, NULL, NULL);
	free(json);
	return r->status;
}

int api_webhooks_get(struct http_req *r)
{
	return api_reply_object(r, "we_", db_webhook_get, "webhook endpoint");
}

int api_webhooks_delete(struct http_req *r)
{
	static const char fmt[] = "{\"id\":\"%s\",\"object\":\"webhook_endpoint\",\"deleted\":true}";
	char body[sizeof(fmt) + IDS_MAX];
	struct db_conn *conn = NULL;
	int n, rc = PAY_ENOT_FOUND;

	if (ids_valid(r->path_id, "we_"))
		rc = db_pool_acquire(r->app->pool, &conn);
	if (conn != NULL) {
		rc = db_webhook_delete(conn, r->user_id, r->path_id);
		db_pool_release(r->app->pool, conn);
	}
	if (rc != PAY_OK)
		return http_reply_error(r, rc, rc == PAY_ENOT_FOUND ? "id" : NULL,
					rc == PAY_ENOT_FOUND ? "No such webhook endpoint." : NULL);
	n = snprintf(body, sizeof(body), fmt, r->path_id);
	return http_reply(r, 200, body, (size_t)n, NULL, 0);
}

/*
 * Reads an optional query parameter that must be an id with prefix (or, when
 * prefix is NULL, one of the allowed words). Returns PAY_OK (out "" when
 * absent) or replies 400 naming the parameter.
 */
static int api_query_filter_or_reply(struct http_req *r, const char *name, const char *prefix,
				     const char *const *allowed, char *out, size_t outlen)
{
	int n = http_query_param(r, name, out, outlen);
	bool ok = n == -1;
	size_t i;

	if (n == -1)
		out[0] = '\0';
	else if (n >= 0 && prefix != NULL)
		ok = ids_valid(out, prefix);
	for (i = 0; n >= 0 && prefix == NULL && allowed[i] != NULL; i++)
		ok = ok || strcmp(out, allowed[i]) == 0;
	if (!ok)
		http_reply_error(r, PAY_EPARAM_INVALID, name, "Invalid value for this filter.");
	return ok ? PAY_OK : PAY_EPARAM_INVALID;
}

int api_deliveries_list(struct http_req *r)
{
	static const char *const statuses[] = { "pending", "succeeded", "dead", NULL };
	char status[16], event[IDS_MAX], endpoint[IDS_MAX], limit[8];
	struct db_delivery_filter f = { NULL, NULL, NULL, 10 };
	struct db_conn *conn = NULL;
	char *json = NULL;
	int n, rc;

	if (api_query_filter_or_reply(r, "status", NULL, statuses, status, sizeof(status)) != PAY_OK ||
	    api_query_filter_or_reply(r, "event", "evt_", NULL, event, sizeof(event)) != PAY_OK ||
	    api_query_filter_or_reply(r, "webhook_endpoint", "we_", NULL, endpoint,
				      sizeof(endpoint)) != PAY_OK)
		goto out;
	n = http_query_param(r, "limit", limit, sizeof(limit));
	if (n != -1) {
		f.limit = n > 0 ? atoi(limit) : 0;
		if (n < 0 || f.limit < 1 || f.limit > 100 || strspn(limit, "0123456789") != (size_t)n) {
			http_reply_error(r, PAY_EPARAM_INVALID, "limit", "limit must be 1 to 100.");
			goto out;
		}
	}
	f.status = status[0] ? status : NULL;
	f.event_id = event[0] ? event : NULL;
	f.endpoint_id = endpoint[0] ? endpoint : NULL;
	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_delivery_list(conn, r->user_id, &f, &json);
		db_pool_release(r->app->pool, conn);
	}
	if (rc == PAY_OK)
		http_reply_list(r, "/v1/webhook_deliveries", json, false);
	else
		http_reply_error(r, rc, NULL, NULL);
out:
	free(json);
	return r->status;
}

int api_deliveries_retry(struct http_req *r)
{
	struct db_conn *conn = NULL;
	char *json = NULL;
	int rc = PAY_ENOT_FOUND;

	if (ids_valid(r->path_id, "wd_"))
		rc = db_pool_acquire(r->app->pool, &conn);
	if (conn != NULL) {
		rc = db_delivery_replay(conn, r->user_id, r->path_id, &json);
		db_pool_release(r->app->pool, conn);
	}
	if (rc == PAY_OK)
		http_reply(r, 200, json, strlen(json), NULL, 0);
	else if (rc == PAY_ESTATE)
		http_reply_error(r, rc, "id", "The webhook endpoint of this delivery was deleted.");
	else
		http_reply_error(r, rc, rc == PAY_ENOT_FOUND ? "id" : NULL,
				 rc == PAY_ENOT_FOUND ? "No such webhook delivery." : NULL);
	free(json);
	return r->status;
}

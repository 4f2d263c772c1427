/* api_webhooks.c - webhook endpoints and the dead-letter API of webhook deliveries. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "cfg.h"
#include "db.h"
#include "db_webhook.h"
#include "err.h"
#include "ids.h"
#include "urlcheck.h"
#include "webhookreq.h"
#include "whsign.h"

#include <sodium.h>

int api_webhooks_create(struct http_req *r)
{
	char id[IDS_MAX], secret[WHSIGN_SECRET_MAX] = { 0 };
	struct body_error err = { 0 };
	struct webhookreq req = { 0 };
	struct db_conn *conn = NULL;
	char *json = NULL;
	int rc;

	if (http_read_body_or_reply(r) != PAY_OK)
		goto out;
	rc = webhookreq_parse(&req, r->body, r->body_len, r->body_format, &err);
	/*
	 * Server-side request forgery: no webhooks into our own network unless
	 * allowed. Nothing is resolved here (a name server that never answers
	 * would hold this worker thread): address literals and names that are
	 * always local are refused now, and the relay checks every address it
	 * connects to.
	 */
	if (rc == PAY_OK && !r->app->cfg->webhook_allow_private && urlcheck_host_allowed(req.host) != PAY_OK)
		rc = body_fail(&err, PAY_EPARAM_INVALID, "url",
			       "url must be a public address or name (loopback, private and"
			       " link-local addresses, localhost and single-label names are refused).");
	if (rc != PAY_OK) {
		http_reply_error(r, err.err, err.param, err.message);
		goto out;
	}
	ids_generate(id, sizeof(id), "we_");
	whsign_secret_generate(secret);
	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_webhook_create(conn, id, r->user_id, req.url, req.events_json, secret,
				       r->app->cfg->webhook_endpoints_max, &json);
		db_pool_release(r->app->pool, conn);
	}
	if (rc == PAY_EWEBHOOK_ENDPOINTS_LIMIT) {
		char msg[160];

		snprintf(msg, sizeof(msg), "You have %d webhook endpoints, the most allowed. Delete one first.",
			 r->app->cfg->webhook_endpoints_max);
		http_reply_error(r, rc, NULL, msg);
	} else if (rc != PAY_OK) {
		http_reply_error(r, rc, NULL, NULL);
	} else {   /* the secret is shown here, once */
		http_reply_with_member(r, 201, json, "secret", secret);
	}
out:
	sodium_memzero(secret, sizeof(secret));
	free(json);
	webhookreq_fini(&req);
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
	char status[16], event[IDS_MAX], endpoint[IDS_MAX];
	struct db_delivery_filter f = { NULL, NULL, NULL, API_LIMIT_DEFAULT };
	struct db_conn *conn = NULL;
	char *json = NULL;
	int rc;

	if (api_query_filter_or_reply(r, "status", NULL, statuses, status, sizeof(status)) != PAY_OK ||
	    api_query_filter_or_reply(r, "event", "evt_", NULL, event, sizeof(event)) != PAY_OK ||
	    api_query_filter_or_reply(r, "webhook_endpoint", "we_", NULL, endpoint,
				      sizeof(endpoint)) != PAY_OK ||
	    api_query_limit_or_reply(r, &f.limit) != PAY_OK)
		goto out;
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

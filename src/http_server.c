/* http_server.c - civetweb setup, routing and the access log. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "api.h"
#include "cfg.h"
#include "err.h"
#include "log.h"

struct http_server {
	struct mg_context *ctx;
};

typedef int (*http_handler_fn)(struct http_req *r);

/*
 * The routing table. A pattern ending in "/{id}" matches one more path
 * segment, passed to the handler as r->path_id. Handlers with auth set run
 * only after authentication succeeded.
 */
struct http_route {
	const char *method;
	const char *pattern;
	bool auth;
	http_handler_fn handler;
};

static const struct http_route http_routes[] = {
	{ "POST", "/v1/charges", true, api_charges_create },
	{ "POST", "/charge", true, api_charges_create },  /* alias of POST /v1/charges */
	{ "GET", "/v1/charges", true, api_charges_list },
	{ "GET", "/v1/charges/{id}", true, api_charges_get },
	{ "POST", "/v1/refunds", true, api_refunds_create },
	{ "GET", "/v1/refunds", true, api_refunds_list },
	{ "GET", "/v1/refunds/{id}", true, api_refunds_get },
	{ "GET", "/v1/events", true, api_events_list },
	{ "GET", "/v1/events/{id}", true, api_events_get },
	{ "POST", "/v1/webhook_endpoints", true, api_webhooks_create },
	{ "GET", "/v1/webhook_endpoints", true, api_webhooks_list },
	{ "GET", "/v1/webhook_endpoints/{id}", true, api_webhooks_get },
	{ "DELETE", "/v1/webhook_endpoints/{id}", true, api_webhooks_delete },
	{ "GET", "/v1/webhook_deliveries", true, api_deliveries_list },
	{ "POST", "/v1/webhook_deliveries/{id}/retry", true, api_deliveries_retry },
	{ "GET", "/healthz", false, api_health_live },
	{ "GET", "/readyz", false, api_health_ready },
};

#define HTTP_NROUTES (sizeof(http_routes) / sizeof(http_routes[0]))

/*
 * Matches path against pattern. "{id}" stands for one non-empty path
 * segment, which *id then points at (its length in *id_len); the rest of
 * the pattern must follow it exactly.
 */
static bool http_route_matches(const char *pattern, const char *path, const char **id,
			       size_t *id_len)
{
	const char *brace = strstr(pattern, "{id}"), *end;
	size_t plen;

	*id = NULL;
	*id_len = 0;
	if (brace == NULL)
		return strcmp(pattern, path) == 0;
	plen = (size_t)(brace - pattern);
	if (strncmp(pattern, path, plen) != 0 || path[plen] == '\0' || path[plen] == '/')
		return false;
	end = strchr(path + plen, '/');
	if (end == NULL)
		end = path + strlen(path);
	if (strcmp(end, brace + 4) != 0)
		return false;
	*id = path + plen;
	*id_len = (size_t)(end - *id);
	return true;
}

static void http_access_log(struct http_req *r)
{
	struct timespec end;
	long long us;

	if (!log_enabled(LOG_INFO))
		return;
	clock_gettime(CLOCK_MONOTONIC, &end);
	us = (long long)(end.tv_sec - r->start.tv_sec) * 1000000 +
	     (end.tv_nsec - r->start.tv_nsec) / 1000;
	/* Never log headers: they hold the API key and the body may hold tokens. */
	log_write(LOG_INFO, "request",
		  json_pack("{s:s, s:s, s:s, s:s?, s:i, s:s?, s:b, s:I}",
			    "request_id", r->request_id,
			    "method", r->ri->request_method,
			    "path", r->ri->local_uri ? r->ri->local_uri : "",
			    "user", r->user_id[0] ? r->user_id : NULL,
			    "status", r->status,
			    "error", r->error_code,
			    "replayed", r->replayed,
			    "duration_us", (json_int_t)us));
}

static int http_dispatch(struct mg_connection *conn, void *cbdata)
{
	struct http_req r;
	const struct http_route *route = NULL;
	const char *path, *sent_id, *id = NULL;
	char id_buf[IDS_MAX + 8];
	bool path_known = false;
	size_t id_len = 0;
	size_t i;

	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_MONOTONIC, &r.start);
	r.conn = conn;
	r.ri = mg_get_request_info(conn);
	r.app = cbdata;
	sent_id = http_header(&r, "X-Request-Id");
	if (ids_request_id_sane(sent_id))
		snprintf(r.request_id, sizeof(r.request_id), "%s", sent_id);
	else
		ids_generate(r.request_id, sizeof(r.request_id), "req_");

	path = r.ri->local_uri ? r.ri->local_uri : "";
	for (i = 0; i < HTTP_NROUTES; i++) {
		if (!http_route_matches(http_routes[i].pattern, path, &id, &id_len))
			continue;
		path_known = true;
		if (strcmp(http_routes[i].method, r.ri->request_method) == 0) {
			route = &http_routes[i];
			/* An over-long id cannot exist; keep a truncated copy that will not match. */
			snprintf(id_buf, sizeof(id_buf), "%.*s", (int)id_len, id ? id : "");
			r.path_id = id ? id_buf : NULL;
			break;
		}
	}
	if (route == NULL) {
		http_reply_error(&r, path_known ? PAY_EMETHOD : PAY_EROUTE, NULL, NULL);
	} else if (!route->auth || api_authenticate_or_reply(&r) == PAY_OK) {
		route->handler(&r);
	}
	if (r.status == 0)   /* a handler that forgot to answer is a bug, not a hang */
		http_reply_error(&r, PAY_EINTERNAL, NULL, NULL);
	http_access_log(&r);
	free(r.body);
	return r.status;
}

static int http_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_write(LOG_WARN, "http server", json_pack("{s:s}", "detail", message));
	return 1;
}

struct http_server *http_server_start(struct http_app *app)
{
	const struct cfg *cfg = app->cfg;
	struct mg_callbacks callbacks;
	struct http_server *s = NULL;
	char threads[16], timeout[24];
	const char *options[] = {
		"listening_ports", cfg->listen,
		"num_threads", threads,
		"request_timeout_ms", timeout,
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "30000",
		"tcp_nodelay", "1",
		"max_request_size", "16384",
		NULL,
	};

	snprintf(threads, sizeof(threads), "%d", cfg->threads);
	snprintf(timeout, sizeof(timeout), "%lld", cfg->request_timeout_ms);
	memset(&callbacks, 0, sizeof(callbacks));
	callbacks.log_message = http_log_message;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	mg_init_library(0);
	s->ctx = mg_start(&callbacks, NULL, options);
	if (s->ctx == NULL) {
		log_printf(LOG_ERROR, "cannot listen on %s", cfg->listen);
		goto fail;
	}
	mg_set_request_handler(s->ctx, "/", http_dispatch, app);
	return s;
fail:
	free(s);
	return NULL;
}

void http_server_stop(struct http_server *s)
{
	if (s == NULL)
		return;
	mg_stop(s->ctx);
	mg_exit_library();
	free(s);
}

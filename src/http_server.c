/* http_server.c - civetweb setup, routing, rate limiting, metrics and the access log. */
#include "http.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/socket.h>

#include <civetweb.h>

#include "api.h"
#include "cfg.h"
#include "connlimit.h"
#include "err.h"
#include "http_deadline.h"
#include "log.h"
#include "metrics.h"
#include "timing.h"

struct http_server {
	struct mg_context *ctx;
	struct http_app *app;
	struct http_deadline *deadline;
	struct connlimit *conns;   /* open connections per client address */
	/*
	 * Draining: once set, new requests are answered 503 (the client retries
	 * elsewhere, with the same Idempotency-Key) and every response closes
	 * its connection, while requests already in flight finish normally.
	 */
	int draining;
	int in_flight;             /* requests being served now */
};

/* The server a civetweb callback runs for (the context's user data), or NULL. */
static struct http_server *http_server_of(const struct mg_connection *conn)
{
	const struct mg_context *ctx = conn != NULL ? mg_get_context(conn) : NULL;

	return ctx != NULL ? mg_get_user_data(ctx) : NULL;
}

typedef int (*http_handler_fn)(struct http_req *r);

/*
 * The routing table. A pattern's "{id}" matches one path segment, passed to
 * the handler as r->path_id. Handlers with auth set run only for an
 * authenticated user; every request is rate-limited first (per user, or per
 * client address when there is none).
 */
struct http_route {
	const char *name;       /* "METHOD pattern", also the metrics label */
	const char *method;
	const char *pattern;
	bool auth;
	http_handler_fn handler;
};

static const struct http_route http_routes[] = {
	{ "POST /v1/charges", "POST", "/v1/charges", true, api_charges_create },
	{ "POST /charge", "POST", "/charge", true, api_charges_create },  /* alias of POST /v1/charges */
	{ "GET /v1/charges", "GET", "/v1/charges", true, api_charges_list },
	{ "GET /v1/charges/{id}", "GET", "/v1/charges/{id}", true, api_charges_get },
	{ "POST /v1/charges/{id}", "POST", "/v1/charges/{id}", true, api_charges_update },
	{ "POST /v1/charges/{id}/capture", "POST", "/v1/charges/{id}/capture", true,
	  api_charges_capture },
	{ "POST /v1/refunds", "POST", "/v1/refunds", true, api_refunds_create },
	{ "GET /v1/refunds", "GET", "/v1/refunds", true, api_refunds_list },
	{ "GET /v1/refunds/{id}", "GET", "/v1/refunds/{id}", true, api_refunds_get },
	{ "POST /v1/refunds/{id}", "POST", "/v1/refunds/{id}", true, api_refunds_update },
	{ "GET /v1/events", "GET", "/v1/events", true, api_events_list },
	{ "GET /v1/events/{id}", "GET", "/v1/events/{id}", true, api_events_get },
	{ "POST /v1/webhook_endpoints", "POST", "/v1/webhook_endpoints", true, api_webhooks_create },
	{ "GET /v1/webhook_endpoints", "GET", "/v1/webhook_endpoints", true, api_webhooks_list },
	{ "GET /v1/webhook_endpoints/{id}", "GET", "/v1/webhook_endpoints/{id}", true, api_webhooks_get },
	{ "DELETE /v1/webhook_endpoints/{id}", "DELETE", "/v1/webhook_endpoints/{id}", true,
	  api_webhooks_delete },
	{ "GET /v1/webhook_deliveries", "GET", "/v1/webhook_deliveries", true, api_deliveries_list },
	{ "POST /v1/webhook_deliveries/{id}/retry", "POST", "/v1/webhook_deliveries/{id}/retry", true,
	  api_deliveries_retry },
	{ "GET /healthz", "GET", "/healthz", false, api_health_live },
	{ "GET /readyz", "GET", "/readyz", false, api_health_ready },
	{ "GET /v1/openapi.yaml", "GET", "/v1/openapi.yaml", false, api_openapi_get },
};

#define HTTP_NROUTES ((int)(sizeof(http_routes) / sizeof(http_routes[0])))

static const char *http_route_name_list[HTTP_NROUTES];

void http_route_names(const char *const **names, int *n)
{
	int i;

	for (i = 0; i < HTTP_NROUTES; i++)
		http_route_name_list[i] = http_routes[i].name;
	*names = http_route_name_list;
	*n = HTTP_NROUTES;
}

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

static void http_access_log(struct http_req *r, long long us)
{
	if (!log_enabled(LOG_INFO))
		return;
	/* Never log headers: they hold the API key, and the body may hold tokens. */
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

/*
 * Takes a token from the caller's bucket: the user's when authenticated,
 * else the client address's. Returns PAY_OK or PAY_ERATE_LIMITED; either
 * way the X-RateLimit-* headers of the reply are set.
 */
static int http_rate_limit(struct http_req *r)
{
	char key[96];
	struct timespec now;

	if (r->user_id[0] != '\0')
		snprintf(key, sizeof(key), "user:%s", r->user_id);
	else
		snprintf(key, sizeof(key), "addr:%s", r->client);
	clock_gettime(CLOCK_MONOTONIC, &now);
	r->limited = true;
	if (ratelimit_take(r->app->limiter, key, (double)now.tv_sec + now.tv_nsec / 1e9, &r->rl))
		return PAY_OK;
	metrics_rate_limited();
	return PAY_ERATE_LIMITED;
}

/*
 * The client's address: the peer's, or behind a proxy in
 * PAYMENTS_TRUSTED_PROXIES what its X-Forwarded-For says (every such
 * header, in order: a proxy may add a line of its own).
 */
static void http_find_client(struct http_req *r)
{
	char xff[512];
	size_t len = 0;
	bool any = false;
	int i, n;

	xff[0] = '\0';
	for (i = 0; i < r->ri->num_headers; i++) {
		const char *value = r->ri->http_headers[i].value ? r->ri->http_headers[i].value : "";

		if (strcasecmp(r->ri->http_headers[i].name, "X-Forwarded-For") != 0)
			continue;
		any = true;
		n = snprintf(xff + len, sizeof(xff) - len, "%s%s", len ? "," : "", value);
		/* Too long to hold: keep only the last line, the one our proxy wrote. */
		if (n < 0 || (size_t)n >= sizeof(xff) - len)
			n = snprintf(xff, sizeof(xff), "%s", value);
		else
			n += (int)len;
		len = n < 0 ? 0 : (size_t)n < sizeof(xff) ? (size_t)n : sizeof(xff) - 1;
	}
	clientaddr_find(r->ri->remote_addr, any ? xff : NULL, r->app->cfg->trusted_proxies, r->client);
}

/* Health probes are never rate-limited: a load balancer must see the truth. */
static bool http_route_limited(const struct http_route *route)
{
	return route == NULL || (route->handler != api_health_live && route->handler != api_health_ready);
}

/*
 * Refuses ambiguous message framing (RFC 9112 6.1, 6.3): Content-Length
 * together with Transfer-Encoding, several Content-Lengths, or one that is
 * not all digits. A proxy in front might frame such a request differently
 * and let part of its body through as a request of its own (smuggling).
 */
static bool http_framing_ok(const struct mg_request_info *ri)
{
	int i, lengths = 0;
	bool chunked = false;

	for (i = 0; i < ri->num_headers; i++) {
		const char *name = ri->http_headers[i].name, *value = ri->http_headers[i].value;

		if (strcasecmp(name, "Transfer-Encoding") == 0)
			chunked = true;
		if (strcasecmp(name, "Content-Length") == 0) {
			lengths++;
			if (value == NULL || value[0] == '\0' || strspn(value, "0123456789") != strlen(value))
				return false;
		}
	}
	return lengths <= 1 && !(chunked && lengths > 0);
}

/*
 * Where civetweb keeps a connection's request information inside the
 * connection, learned from the first request served: mg_get_request_info
 * answers NULL in init_connection, although civetweb has filled in the
 * peer's address and ports by then. Until a request has been served (the
 * first health check), no connection is capped.
 */
static ptrdiff_t http_ri_offset = -1;

static void http_learn_ri_offset(const struct mg_connection *conn, const struct mg_request_info *ri)
{
	if (__atomic_load_n(&http_ri_offset, __ATOMIC_RELAXED) < 0)
		__atomic_store_n(&http_ri_offset, (const char *)ri - (const char *)conn, __ATOMIC_RELAXED);
}

static int http_dispatch(struct mg_connection *conn, void *cbdata)
{
	struct http_req r;
	const struct http_route *route = NULL;
	const char *path, *sent_id, *id = NULL;
	char id_buf[IDS_MAX + 8], allow[64] = "";
	struct http_server *s;
	bool path_known = false;
	size_t id_len = 0;
	int i, rc = PAY_OK;

	/* A connection refused at once (over its client's cap) was answered 503 already. */
	if (http_deadline_conn_state(conn) != NULL && http_deadline_conn_state(conn)->refused)
		return 503;
	s = http_server_of(conn);
	__atomic_add_fetch(&s->in_flight, 1, __ATOMIC_SEQ_CST);
	memset(&r, 0, sizeof(r));
	r.route = -1;
	clock_gettime(CLOCK_MONOTONIC, &r.start);
	r.conn = conn;
	r.ri = mg_get_request_info(conn);
	r.app = cbdata;
	http_learn_ri_offset(conn, r.ri);
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
		if (strstr(allow, http_routes[i].method) == NULL)
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
				 allow[0] ? ", " : "", http_routes[i].method);
		if (strcmp(http_routes[i].method, r.ri->request_method) == 0) {
			route = &http_routes[i];
			r.route = i;
			/* An over-long id cannot exist; keep a truncated copy that will not match. */
			snprintf(id_buf, sizeof(id_buf), "%.*s", (int)id_len, id ? id : "");
			r.path_id = id ? id_buf : NULL;
			break;
		}
	}
	/*
	 * civetweb keeps at most MG_MAX_HEADERS headers and silently drops the
	 * rest, framing headers among them: a request that fills the table may
	 * have lost some, so it is refused, and its connection closed.
	 */
	if (r.ri->num_headers >= MG_MAX_HEADERS) {
		http_close_after(&r);
		http_reply_error(&r, PAY_EHEADERS, NULL, NULL);
		goto done;
	}
	if (!http_framing_ok(r.ri)) {
		http_close_after(&r);
		http_reply_error(&r, PAY_EREAD, NULL,
				 "Ambiguous message framing (Content-Length with Transfer-Encoding,"
				 " several Content-Lengths, or a malformed one).");
		goto done;
	}
	if (__atomic_load_n(&s->draining, __ATOMIC_SEQ_CST)) {
		http_close_after(&r);
		http_reply_error(&r, PAY_EUNAVAILABLE, NULL, "The server is shutting down. Retry.");
		goto done;
	}
	http_find_client(&r);
	/* Limits the client address's requests without a verified key before reading the key. */
	if (route != NULL && route->auth)
		rc = api_authenticate(&r);
	/* Rate limiting comes before any work of the handler, and 429 is never stored under a key. */
	if (rc == PAY_ERATE_LIMITED || (http_route_limited(route) && http_rate_limit(&r) != PAY_OK))
		http_reply_error(&r, PAY_ERATE_LIMITED, NULL, NULL);
	else if (route == NULL && path_known)
		http_reply_method_not_allowed(&r, allow);
	else if (route == NULL)
		http_reply_error(&r, PAY_EROUTE, NULL, NULL);
	else if (rc != PAY_OK)
		http_reply_error(&r, rc, NULL, NULL);
	else
		route->handler(&r);
	if (r.status == 0)   /* a handler that forgot to answer is a bug, not a hang */
		http_reply_error(&r, PAY_EINTERNAL, NULL, NULL);
done:
	http_deadline_conn_request_done(conn);
	http_access_log(&r, http_elapsed_us(&r));
	free(r.body);
	__atomic_sub_fetch(&s->in_flight, 1, __ATOMIC_SEQ_CST);
	return r.status;
}

/*
 * Writes a Stripe-shaped error for err with status on a connection that no
 * request of ours reads (civetweb's own refusals, a connection over its
 * client's cap), and closes it after. Written by hand: the request line may
 * be unreadable, and civetweb's header helpers would echo the client's
 * protocol text into the status line. request_id (IDS_MAX bytes) is filled
 * for the log.
 */
static void http_write_early_error(struct mg_connection *conn, int status, int err,
				   const char *message, char *request_id)
{
	static const char fallback[] =
		"{\"error\":{\"type\":\"api_error\",\"code\":\"internal_error\","
		"\"message\":\"An internal error occurred.\",\"param\":null}}";
	json_t *obj = http_error_object(err, NULL, message);
	char *body = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	const char *text = body ? body : fallback;
	bool retry = status == 503;

	ids_generate(request_id, IDS_MAX, "req_");
	/* Counted before the answer leaves, so a client that reads /metrics next sees it. */
	metrics_request(-1, status, 0);
	mg_printf(conn, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		  "X-Request-Id: %s\r\nRequest-Id: %s\r\nStripe-Version: %s\r\n"
		  "Stripe-Should-Retry: %s\r\n%sCache-Control: no-store\r\nConnection: close\r\n\r\n",
		  status, mg_get_response_code_text(NULL, status), strlen(text), request_id, request_id,
		  HTTP_STRIPE_VERSION, retry ? "true" : "false", retry ? "Retry-After: 1\r\n" : "");
	mg_write(conn, text, strlen(text));
	free(body);
	json_decref(obj);
}

/*
 * Every request reaches http_dispatch() through civetweb's begin_request,
 * which it calls before looking for a handler. A "/" handler registered
 * after mg_start() left a moment in which the listening server had none,
 * and civetweb answered 404 itself: a definitive answer, to a client
 * retrying into a serve that was just restarting (the chaos run found it).
 */
static int http_begin_request(struct mg_connection *conn)
{
	return http_dispatch(conn, http_server_of(conn)->app);
}

/*
 * civetweb's own refusals (headers too large, a malformed request line, ...)
 * still answer a Stripe-shaped JSON error with an X-Request-Id.
 */
static int http_on_error(struct mg_connection *conn, int status, const char *errmsg)
{
	int err = status == 413 || status == 431 ? PAY_EHEADERS :
		  status >= 500 ? PAY_EINTERNAL : PAY_EMALFORMED;
	char request_id[IDS_MAX];

	http_write_early_error(conn, status, err, errmsg, request_id);
	/* The access log sees these too, though no route or user was ever known. */
	log_write(LOG_INFO, "request",
		  json_pack("{s:s, s:s, s:i, s:s, s:s}", "request_id", request_id,
			    "path", "", "status", status, "error", err_info(err)->code,
			    "detail", errmsg ? errmsg : ""));
	return 0;
}

/*
 * Answers a connection over its client's cap with 503 at once and shuts
 * its socket, without reading a byte of it: the worker is free again in
 * microseconds, where an idle connection would have held it for
 * PAYMENTS_REQUEST_TIMEOUT.
 */
static void http_refuse_connection(struct mg_connection *conn, const struct mg_request_info *ri)
{
	char request_id[IDS_MAX];
	int fd = http_deadline_conn_fd(conn, ri);

	http_write_early_error(conn, err_info(PAY_EUNAVAILABLE)->status, PAY_EUNAVAILABLE,
			       "Too many connections from this address. Retry.", request_id);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	log_write(LOG_DEBUG, "connection refused",
		  json_pack("{s:s, s:s}", "request_id", request_id, "client", ri->remote_addr));
}

/*
 * civetweb's init_connection: each client address may hold
 * PAYMENTS_MAX_CONNECTIONS_PER_CLIENT connections (a worker thread each);
 * one more is answered 503 at once. Trusted proxies carry many clients'
 * connections and are not capped.
 */
static int http_conn_open(const struct mg_connection *conn, void **conn_data)
{
	struct http_server *s = http_server_of(conn);
	ptrdiff_t offset = __atomic_load_n(&http_ri_offset, __ATOMIC_RELAXED);
	const struct mg_request_info *ri;
	struct http_conn_state *c;

	http_deadline_conn_open(conn, conn_data);
	c = *conn_data;
	if (c == NULL || offset < 0)
		return 0;
	ri = (const struct mg_request_info *)(const void *)((const char *)conn + offset);
	if (clientaddr_trusted(s->app->cfg->trusted_proxies, ri->remote_addr))
		return 0;
	snprintf(c->client, sizeof(c->client), "%s", ri->remote_addr);
	c->counted = connlimit_enter(s->conns, c->client);
	if (!c->counted) {
		c->refused = true;
		/* civetweb hands callbacks a const connection it owns; writing on it is what it is for. */
		http_refuse_connection((struct mg_connection *)(uintptr_t)conn, ri);
	}
	return 0;
}

static void http_conn_close(const struct mg_connection *conn)
{
	struct http_server *s = http_server_of(conn);
	struct http_conn_state *c = http_deadline_conn_state(conn);

	if (c != NULL && c->counted)
		connlimit_leave(s->conns, c->client);
	http_deadline_conn_close(conn);
}

static int http_log_message(const struct mg_connection *conn, const char *message)
{
	struct http_server *s = http_server_of(conn);

	/* While draining, the shut-down listeners make civetweb's accept fail: not news. */
	if (s != NULL && __atomic_load_n(&s->draining, __ATOMIC_SEQ_CST))
		return 1;
	log_write(LOG_WARN, "http server", json_pack("{s:s}", "detail", message));
	return 1;
}

/*
 * civetweb wants the certificate and its key in one PEM file: writes both
 * into a new private temporary file, /tmp/payments-tls-XXXXXX, whose name
 * goes to path (pathlen bytes, at least 25). Returns PAY_OK or PAY_EIO.
 */
static int http_tls_bundle(const struct cfg *cfg, char *path, size_t pathlen)
{
	const char *parts[2] = { cfg->tls_cert, cfg->tls_key };
	char buf[8192];
	FILE *in = NULL, *out = NULL;
	size_t n;
	int fd, i, rc = PAY_EIO;

	snprintf(path, pathlen, "/tmp/payments-tls-XXXXXX");
	fd = mkstemp(path);   /* created 0600 */
	if (fd < 0 || (out = fdopen(fd, "w")) == NULL)
		goto out;
	for (i = 0; i < 2; i++) {
		in = fopen(parts[i], "r");
		if (in == NULL) {
			log_printf(LOG_ERROR, "cannot read TLS file %s", parts[i]);
			goto out;
		}
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, out);
		fputc('\n', out);
		fclose(in);
		in = NULL;
	}
	rc = fflush(out) == 0 ? PAY_OK : PAY_EIO;
out:
	if (in != NULL)
		fclose(in);
	if (out != NULL)
		fclose(out);
	else if (fd >= 0)
		close(fd);
	if (rc != PAY_OK && fd >= 0)
		unlink(path);
	return rc;
}

struct http_server *http_server_start(struct http_app *app)
{
	const struct cfg *cfg = app->cfg;
	struct mg_callbacks callbacks;
	struct http_server *s = NULL;
	char threads[16], timeout[24], keepalive[24], ports[300], bundle[64] = "";
	bool tls = cfg->tls_cert != NULL && cfg->tls_key != NULL;
	const char *options[] = {
		"listening_ports", ports,
		"num_threads", threads,
		"request_timeout_ms", timeout,
		"enable_keep_alive", cfg->keep_alive_timeout_ms > 0 ? "yes" : "no",
		"keep_alive_timeout_ms", keepalive,
		"tcp_nodelay", "1",
		"max_request_size", "16384",
		tls ? "ssl_certificate" : NULL, bundle,
		NULL,
	};

	if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL)) {
		log_printf(LOG_ERROR, "PAYMENTS_TLS_CERT and PAYMENTS_TLS_KEY go together");
		goto fail;
	}
	snprintf(ports, sizeof(ports), "%s%s", cfg->listen, tls ? "s" : "");
	snprintf(threads, sizeof(threads), "%d", cfg->threads);
	snprintf(timeout, sizeof(timeout), "%lld", cfg->request_timeout_ms);
	snprintf(keepalive, sizeof(keepalive), "%lld", cfg->keep_alive_timeout_ms);
	if (tls && http_tls_bundle(cfg, bundle, sizeof(bundle)) != PAY_OK)
		goto fail;
	memset(&callbacks, 0, sizeof(callbacks));
	callbacks.log_message = http_log_message;
	callbacks.begin_request = http_begin_request;
	callbacks.http_error = http_on_error;
	callbacks.init_connection = http_conn_open;
	callbacks.connection_close = http_conn_close;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	s->app = app;
	s->deadline = http_deadline_create(cfg->threads);
	s->conns = connlimit_create(cfg->max_connections_per_client);
	if (s->deadline == NULL || s->conns == NULL)
		goto fail;
	app->deadline = s->deadline;
	mg_init_library(tls ? MG_FEATURES_TLS : 0);
	s->ctx = mg_start(&callbacks, s, options);   /* s is the callbacks' user data */
	if (bundle[0] != '\0')
		unlink(bundle);   /* loaded into memory by mg_start: no copy of the key stays on disk */
	if (s->ctx == NULL) {
		log_printf(LOG_ERROR, "cannot listen on %s%s", cfg->listen, tls ? " with TLS" : "");
		goto fail;
	}
	return s;
fail:
	if (s != NULL) {
		app->deadline = NULL;
		http_deadline_destroy(s->deadline);
		connlimit_destroy(s->conns);
	}
	free(s);
	return NULL;
}

/*
 * Stops new connections at the socket: civetweb has no call to close its
 * listeners without stopping its workers (which cuts responses short), so
 * the listening sockets of this process are shut down for reading; pending
 * and new connections are refused by the kernel, and accepted ones finish.
 */
static void http_stop_listening(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	socklen_t len;
	int fd, listening;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		fd = atoi(e->d_name);
		len = sizeof(listening);
		listening = 0;
		if (fd > 2 && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
			shutdown(fd, SHUT_RD);
	}
	closedir(d);
}

bool http_server_drain(struct http_server *s, long long timeout_ms)
{
	struct timespec pause = { 0, 10 * 1000000L };
	long long deadline = timing_now_ms() + timeout_ms;

	__atomic_store_n(&s->draining, 1, __ATOMIC_SEQ_CST);
	http_stop_listening();
	/* The clock, not a count of naps: a loaded machine oversleeps each one. */
	while (__atomic_load_n(&s->in_flight, __ATOMIC_SEQ_CST) > 0 && timing_now_ms() < deadline)
		nanosleep(&pause, NULL);
	return __atomic_load_n(&s->in_flight, __ATOMIC_SEQ_CST) == 0;
}

void http_server_stop(struct http_server *s)
{
	if (s == NULL)
		return;
	mg_stop(s->ctx);   /* stops accepting, then waits for in-flight requests */
	mg_exit_library();
	s->app->deadline = NULL;
	http_deadline_destroy(s->deadline);   /* after the workers: none is reading any more */
	connlimit_destroy(s->conns);
	free(s);
}

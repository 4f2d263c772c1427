/* http_reply.c - reading request bodies and writing JSON replies (civetweb, jansson). */
#include "http.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <civetweb.h>

#include "body.h"
#include "cfg.h"
#include "err.h"
#include "http_deadline.h"
#include "metrics.h"

const char *http_header(const struct http_req *r, const char *name)
{
	return mg_get_header(r->conn, name);
}

bool http_speaks_stripe(const struct http_req *r)
{
	const char *version = http_header(r, "Stripe-Version");

	return version != NULL && version[0] != '\0';
}

int http_reply(struct http_req *r, int status, const char *body, size_t len,
	       const struct http_header *extra, size_t nextra)
{
	return http_reply_typed(r, status, "application/json", body, len, extra, nextra);
}

/*
 * Whether the connection stays open after this reply, as civetweb decides it
 * once the handler returns (should_keep_alive in civetweb.c): keep-alive is
 * on, nothing asked to close, and the client keeps the connection (HTTP/1.1
 * unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive").
 */
static bool http_keeps_alive(const struct http_req *r)
{
	const char *conn = mg_get_header(r->conn, "Connection");
	const char *version = r->ri->http_version;

	if (r->close || r->app->cfg->keep_alive_timeout_ms <= 0)
		return false;
	if (conn != NULL)
		return strcasestr(conn, "keep-alive") != NULL;
	return version != NULL && strcmp(version, "1.1") == 0;
}

/* Appends printf output to buf (size cap) at *len; false once it does not fit. */
static bool http_append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return false;
	*len += (size_t)n;
	return true;
}

long long http_elapsed_us(const struct http_req *r)
{
	struct timespec end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	return (long long)(end.tv_sec - r->start.tv_sec) * 1000000 +
	       (end.tv_nsec - r->start.tv_nsec) / 1000;
}

/*
 * The status line and headers go out with the body in one write: civetweb's
 * header helpers send each header line by itself, which with TCP_NODELAY is
 * a packet (and a wake-up of the client) per line, a dozen per reply.
 */
int http_reply_typed(struct http_req *r, int status, const char *content_type, const char *body,
		     size_t len, const struct http_header *extra, size_t nextra)
{
	char head[HTTP_HEAD_MAX], date[64];
	char *out = NULL;
	size_t hlen = 0, i;
	struct tm tm;
	time_t now = time(NULL);
	bool ok;

	r->status = status;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	ok = http_append(head, sizeof(head), &hlen,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "X-Request-Id: %s\r\nRequest-Id: %s\r\nStripe-Version: %s\r\n"
			 "Cache-Control: no-store\r\n",
			 status, mg_get_response_code_text(r->conn, status), content_type, len,
			 r->request_id, r->request_id, HTTP_STRIPE_VERSION);
	if (ok && r->limited)
		ok = http_append(head, sizeof(head), &hlen,
				 "X-RateLimit-Limit: %d\r\nX-RateLimit-Remaining: %d\r\n"
				 "X-RateLimit-Reset: %lld\r\n",
				 r->rl.limit, r->rl.remaining, r->rl.reset_s);
	for (i = 0; ok && i < nextra; i++)
		ok = http_append(head, sizeof(head), &hlen, "%s: %s\r\n", extra[i].name, extra[i].value);
	if (ok)
		ok = http_append(head, sizeof(head), &hlen, "Date: %s\r\nConnection: %s\r\n\r\n", date,
				 http_keeps_alive(r) ? "keep-alive" : "close");
	if (!ok) {
		/* Headers beyond HTTP_HEAD_MAX cannot be answered whole: a bug, said as a 500. */
		hlen = 0;
		len = 0;
		r->status = status = 500;
		http_append(head, sizeof(head), &hlen,
			    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
			    "X-Request-Id: %s\r\nConnection: close\r\n\r\n", r->request_id);
		http_close_after(r);
	}
	/*
	 * Counted before the reply leaves: a client that reads /metrics right
	 * after its answer must find its own request there.
	 */
	metrics_request(r->route, status, http_elapsed_us(r));
	if (len > 0)
		out = malloc(hlen + len);
	if (out != NULL) {
		memcpy(out, head, hlen);
		memcpy(out + hlen, body, len);
		mg_write(r->conn, out, hlen + len);
	} else {
		mg_write(r->conn, head, hlen);
		if (len > 0)
			mg_write(r->conn, body, len);
	}
	free(out);
	return status;
}

void http_close_after(struct http_req *r)
{
	r->close = true;
	mg_disable_connection_keep_alive(r->conn);
}

json_t *http_error_object(int err, const char *param, const char *message)
{
	const struct err_info *info = err_info(err);
	char buf[160];

	return json_pack("{s:{s:s, s:s, s:s, s:s?}}", "error",
			 "type", info->type,
			 "code", info->code,
			 "message", (message && *message) ? message : err_message(err, buf, sizeof(buf)),
			 "param", (param && *param) ? param : NULL);
}

int http_reply_error(struct http_req *r, int err, const char *param, const char *message)
{
	const struct err_info *info = err_info(err);
	struct http_header extra[2];
	char retry[24] = "1";
	size_t nextra = 0;
	bool transient = info->status == 503 || err == PAY_EIDEM_IN_USE || err == PAY_ECHARGE_BUSY ||
			 err == PAY_ERATE_LIMITED;
	json_t *obj = NULL;
	char *text = NULL;
	static const char fallback[] =
		"{\"error\":{\"type\":\"api_error\",\"code\":\"internal_error\","
		"\"message\":\"An internal error occurred.\",\"param\":null}}";

	if (err == PAY_ERATE_LIMITED)
		snprintf(retry, sizeof(retry), "%lld", r->rl.retry_after_s);
	if (transient)
		extra[nextra++] = (struct http_header){ "Retry-After", retry };
	/* The SDKs retry a 409 (and any 5xx) unless told not to: only transient answers say so. */
	extra[nextra++] = (struct http_header){ "Stripe-Should-Retry", transient ? "true" : "false" };
	r->error_code = info->code;
	obj = http_error_object(err, param, message);
	text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (text != NULL)
		http_reply(r, info->status, text, strlen(text), extra, nextra);
	else
		http_reply(r, 500, fallback, sizeof(fallback) - 1, NULL, 0);
	free(text);
	json_decref(obj);
	return r->status;
}

/* True for the media type want with optional parameters such as "; charset=utf-8". */
static bool http_is_media_type(const char *ct, const char *want)
{
	size_t len = strlen(want);

	if (ct == NULL || strncasecmp(ct, want, len) != 0)
		return false;
	ct += len;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

int http_read_body_or_reply(struct http_req *r)
{
	const char *ct = http_header(r, "Content-Type");
	long long clen = r->ri->content_length, start_ms;
	const char *msg = NULL;
	size_t cap, used = 0;
	char *buf = NULL;
	int n, fd, slot, rc = PAY_OK;

	if (http_is_media_type(ct, "application/json")) {
		r->body_format = BODY_FORMAT_JSON;
	} else if (http_is_media_type(ct, "application/x-www-form-urlencoded")) {
		r->body_format = BODY_FORMAT_FORM;
	} else {
		rc = PAY_EMEDIA_TYPE;
		goto fail;
	}
	if (clen > BODY_MAX_BYTES) {
		http_close_after(r);
		rc = PAY_EBODY_TOO_LARGE;
		goto fail;
	}
	/* Chunked bodies have no length: read up to one byte past the limit. */
	cap = clen >= 0 ? (size_t)clen : BODY_MAX_BYTES + 1;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		rc = PAY_ENOMEM;
		goto fail;
	}
	/*
	 * The whole request, headers included, has PAYMENTS_REQUEST_TIMEOUT:
	 * past it the watchdog cuts the read short, however steadily the body
	 * trickles in, and the connection is closed.
	 */
	fd = http_deadline_conn_socket(r->conn, (long long)r->start.tv_sec * 1000 +
				       r->start.tv_nsec / 1000000, &start_ms);
	slot = http_deadline_arm(r->app->deadline, fd, start_ms + r->app->cfg->request_timeout_ms);
	while (used < cap) {
		n = mg_read(r->conn, buf + used, cap - used);
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	if (http_deadline_disarm(r->app->deadline, slot)) {
		http_close_after(r);
		rc = PAY_EREAD;
		msg = "The request did not arrive within the request timeout.";
		goto fail;
	}
	if (used > BODY_MAX_BYTES) {
		http_close_after(r);
		rc = PAY_EBODY_TOO_LARGE;
		goto fail;
	}
	if (clen >= 0 && used != (size_t)clen) {
		rc = PAY_EREAD;
		goto fail;
	}
	buf[used] = '\0';
	r->body = buf;   /* freed by the dispatcher */
	r->body_len = used;
	return PAY_OK;
fail:
	free(buf);
	http_reply_error(r, rc, NULL, msg);
	return rc;
}

int http_reply_list(struct http_req *r, const char *url, const char *data_json, bool has_more)
{
	static const char fmt[] = "{\"object\":\"list\",\"url\":\"%s\",\"has_more\":%s,\"data\":%s}";
	size_t len = sizeof(fmt) + strlen(url) + strlen(data_json) + 8;
	char *body = malloc(len);
	int n;

	if (body == NULL)
		return http_reply_error(r, PAY_ENOMEM, NULL, NULL);
	n = snprintf(body, len, fmt, url, has_more ? "true" : "false", data_json);
	http_reply(r, 200, body, (size_t)n, NULL, 0);
	free(body);
	return r->status;
}

int http_query_param(const struct http_req *r, const char *name, char *buf, size_t buflen)
{
	const char *q = r->ri->query_string;
	int n;

	if (q == NULL)
		return -1;
	n = mg_get_var(q, strlen(q), name, buf, buflen);
	return n >= 0 ? n : (n == -1 ? -1 : -2);
}

int http_reply_with_member(struct http_req *r, int status, const char *json, const char *name,
			   const char *value)
{
	json_t *obj = json_loads(json, 0, NULL);
	char *text = NULL;

	if (obj == NULL || json_object_set_new(obj, name, json_string(value)) != 0 ||
	    (text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		http_reply_error(r, PAY_ENOMEM, NULL, NULL);
	else
		http_reply(r, status, text, strlen(text), NULL, 0);
	free(text);
	json_decref(obj);
	return r->status;
}

int http_reply_method_not_allowed(struct http_req *r, const char *allow)
{
	const struct err_info *info = err_info(PAY_EMETHOD);
	struct http_header extra[2] = { { "Allow", allow }, { "Stripe-Should-Retry", "false" } };
	json_t *obj = http_error_object(PAY_EMETHOD, NULL, NULL);
	char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	r->error_code = info->code;
	if (text == NULL)
		http_reply_error(r, PAY_ENOMEM, NULL, NULL);
	else
		http_reply(r, info->status, text, strlen(text), extra, 2);
	free(text);
	json_decref(obj);
	return r->status;
}

/* http_reply.c - reading request bodies and writing JSON replies (civetweb, jansson). */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <civetweb.h>

#include "body.h"
#include "err.h"

const char *http_header(const struct http_req *r, const char *name)
{
	return mg_get_header(r->conn, name);
}

int http_reply(struct http_req *r, int status, const char *body, size_t len,
	       const struct http_header *extra, size_t nextra)
{
	return http_reply_typed(r, status, "application/json", body, len, extra, nextra);
}

int http_reply_typed(struct http_req *r, int status, const char *content_type, const char *body,
		     size_t len, const struct http_header *extra, size_t nextra)
{
	char clen[24], limit[24], remaining[24], reset[24];
	size_t i;

	snprintf(clen, sizeof(clen), "%zu", len);
	r->status = status;
	mg_response_header_start(r->conn, status);
	mg_response_header_add(r->conn, "Content-Type", content_type, -1);
	mg_response_header_add(r->conn, "Content-Length", clen, -1);
	mg_response_header_add(r->conn, "X-Request-Id", r->request_id, -1);
	mg_response_header_add(r->conn, "Cache-Control", "no-store", -1);
	if (r->limited) {
		snprintf(limit, sizeof(limit), "%d", r->rl.limit);
		snprintf(remaining, sizeof(remaining), "%d", r->rl.remaining);
		snprintf(reset, sizeof(reset), "%lld", r->rl.reset_s);
		mg_response_header_add(r->conn, "X-RateLimit-Limit", limit, -1);
		mg_response_header_add(r->conn, "X-RateLimit-Remaining", remaining, -1);
		mg_response_header_add(r->conn, "X-RateLimit-Reset", reset, -1);
	}
	for (i = 0; i < nextra; i++)
		mg_response_header_add(r->conn, extra[i].name, extra[i].value, -1);
	mg_response_header_send(r->conn);
	if (len > 0)
		mg_write(r->conn, body, len);
	return status;
}

json_t *http_error_object(int err, const char *param, const char *message)
{
	const struct err_info *info = err_info(err);

	return json_pack("{s:{s:s, s:s, s:s, s:s?}}", "error",
			 "type", info->type,
			 "code", info->code,
			 "message", (message && *message) ? message : info->message,
			 "param", (param && *param) ? param : NULL);
}

int http_reply_error(struct http_req *r, int err, const char *param, const char *message)
{
	const struct err_info *info = err_info(err);
	struct http_header extra[2];
	char retry[24] = "1";
	size_t nextra = 0;
	json_t *obj = NULL;
	char *text = NULL;
	static const char fallback[] =
		"{\"error\":{\"type\":\"api_error\",\"code\":\"internal_error\","
		"\"message\":\"An internal error occurred.\",\"param\":null}}";

	if (err == PAY_ERATE_LIMITED)
		snprintf(retry, sizeof(retry), "%lld", r->rl.retry_after_s);
	if (info->status == 503 || err == PAY_EIDEM_IN_USE || err == PAY_ERATE_LIMITED)
		extra[nextra++] = (struct http_header){ "Retry-After", retry };
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

/* True for "application/json" with optional parameters such as "; charset=utf-8". */
static bool http_is_json(const char *ct)
{
	static const char want[] = "application/json";

	if (ct == NULL || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	ct += sizeof(want) - 1;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

int http_read_json_body_or_reply(struct http_req *r)
{
	long long clen = r->ri->content_length;
	size_t cap, used = 0;
	char *buf = NULL;
	int n, rc = PAY_OK;

	if (!http_is_json(http_header(r, "Content-Type"))) {
		rc = PAY_EMEDIA_TYPE;
		goto fail;
	}
	if (clen > BODY_MAX_BYTES) {
		mg_disable_connection_keep_alive(r->conn);
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
	while (used < cap) {
		n = mg_read(r->conn, buf + used, cap - used);
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	if (used > BODY_MAX_BYTES) {
		mg_disable_connection_keep_alive(r->conn);
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
	http_reply_error(r, rc, NULL, NULL);
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
	struct http_header extra = { "Allow", allow };
	json_t *obj = http_error_object(PAY_EMETHOD, NULL, NULL);
	char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	r->error_code = info->code;
	if (text == NULL)
		http_reply_error(r, PAY_ENOMEM, NULL, NULL);
	else
		http_reply(r, info->status, text, strlen(text), &extra, 1);
	free(text);
	json_decref(obj);
	return r->status;
}

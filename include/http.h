/* http.h - the HTTP front: server lifecycle, the request context and replies (civetweb). */
#ifndef PAYMENTS_HTTP_H
#define PAYMENTS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "apikey.h"
#include "body.h"
#include "clientaddr.h"
#include "ids.h"
#include "ratelimit.h"

struct mg_connection;
struct mg_request_info;
struct cfg;
struct db_pool;
struct http_deadline;
struct keycache;
struct replaycache;

/* What every handler shares: settings, the database pool and the rate limiter. */
struct http_app {
	const struct cfg *cfg;
	struct db_pool *pool;
	struct db_pool *read_pool;   /* PAYMENTS_READ_DATABASE_URL's (GETs), or NULL */
	struct ratelimit *limiter;
	struct ratelimit *auth_limiter;   /* per client address, for requests without a verified key */
	struct keycache *keys;     /* API keys verified within PAYMENTS_KEY_CACHE_TTL */
	struct replaycache *replays;   /* charges' stored responses read within PAYMENTS_REPLAY_CACHE_TTL */
	struct http_deadline *deadline;   /* the request deadline's watchdog (http_server_start's) */
};

/* One request in flight. Lives on the worker thread's stack. */
struct http_req {
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	struct http_app *app;
	char request_id[IDS_REQUEST_ID_MAX + 1];
	char user_id[APIKEY_USER_MAX + 1];    /* "" until authenticated */
	char client[CLIENTADDR_MAX];          /* the client's address (X-Forwarded-For of a trusted proxy) */
	int route;                            /* index in the routing table, -1 if none */
	const char *path_id;                  /* the {id} segment of the path, or NULL */
	char *body;                           /* owned; NUL-terminated */
	size_t body_len;
	enum body_format body_format;         /* JSON or a form, from Content-Type */
	int status;                           /* status sent, 0 until then */
	const char *error_code;               /* error code sent, for the access log */
	bool replayed;
	bool limited;                         /* rl holds this request's X-RateLimit-* state */
	bool close;                           /* the connection closes after the reply */
	struct ratelimit_state rl;
	struct timespec start;
};

/* A response header beyond the ones every reply carries. */
struct http_header {
	const char *name;
	const char *value;
};

struct http_server;

/*
 * Starts listening on cfg->listen with cfg->threads workers. Returns NULL
 * after logging why when the port cannot be bound.
 */
struct http_server *http_server_start(struct http_app *app);
/*
 * Begins a graceful stop: from now on new requests are answered 503 on a
 * closing connection, and this waits (at most timeout_ms) until the
 * requests in flight have finished. Returns true when none is left.
 */
bool http_server_drain(struct http_server *s, long long timeout_ms);

/* Stops listening and frees the server; in-flight requests should be drained first. */
void http_server_stop(struct http_server *s);

/* The names of the routes ("POST /v1/charges", ...), in the order metrics count them. */
void http_route_names(const char *const **names, int *n);

/* The value of request header name, or NULL. */
const char *http_header(const struct http_req *r, const char *name);

/*
 * Sends status with a JSON body and Content-Type, Content-Length,
 * X-Request-Id and Request-Id (the name Stripe's SDKs read), Stripe-Version,
 * plus nextra extra headers. Returns status.
 */
int http_reply(struct http_req *r, int status, const char *body, size_t len,
	       const struct http_header *extra, size_t nextra);

/* Room for a reply's status line and headers; a longer head is answered as a 500 (a bug). */
#define HTTP_HEAD_MAX 2048

/*
 * http_reply with another Content-Type (e.g. the metrics' text format). The
 * request is counted in the metrics before the reply is written.
 */
int http_reply_typed(struct http_req *r, int status, const char *content_type, const char *body,
		     size_t len, const struct http_header *extra, size_t nextra);

/* Microseconds since the request was read. */
long long http_elapsed_us(const struct http_req *r);

/* Marks the connection to close after the reply (Connection: close) and tells civetweb. */
void http_close_after(struct http_req *r);

/*
 * The Stripe-shaped error object {"error":{type, code, message, param}} for
 * err. param and message may be NULL (message then defaults). Returns a new
 * reference, or NULL when out of memory.
 */
json_t *http_error_object(int err, const char *param, const char *message);

/*
 * Sends the error for err (status from err_info) and returns the status.
 * 503, 429 and 409 idempotency_key_in_use carry Retry-After and
 * Stripe-Should-Retry: true (what the SDKs' automatic retries obey); every
 * other error is definitive and says Stripe-Should-Retry: false.
 */
int http_reply_error(struct http_req *r, int err, const char *param, const char *message);

/* Sends 405 method_not_allowed with an Allow header listing allow ("GET, POST"). Returns 405. */
int http_reply_method_not_allowed(struct http_req *r, const char *allow);

/*
 * Sends 200 with a Stripe list object {"object":"list","url":url,
 * "has_more":..,"data":data_json}; data_json is a JSON array. Returns 200.
 */
int http_reply_list(struct http_req *r, const char *url, const char *data_json, bool has_more);

/*
 * Copies the URL-decoded query parameter name into buf. Returns its length,
 * -1 when absent, or -2 when longer than buflen - 1.
 */
int http_query_param(const struct http_req *r, const char *name, char *buf, size_t buflen);

/* Replies with the JSON object text json plus one extra member name = value (a string). */
int http_reply_with_member(struct http_req *r, int status, const char *json, const char *name,
			   const char *value);

/*
 * The Stripe API version this service speaks, sent back as Stripe-Version.
 * A client's Stripe-Version header is accepted whatever it says: the service
 * has one shape (see http_speaks_stripe for the one status that differs).
 */
#define HTTP_STRIPE_VERSION "2024-06-20"

/*
 * True when the request carries a non-empty Stripe-Version header, as
 * stripe-node always does and stripe-python does once stripe.api_version is
 * set: the client speaks Stripe's dialect, and where this API's answer
 * departs from Stripe's it gets Stripe's. The one such answer is a key
 * reused with another request: 400 instead of 409 (PAY_EIDEM_REUSED_STRIPE).
 */
bool http_speaks_stripe(const struct http_req *r);

/*
 * Checks Content-Type (415 unless application/json or, as every Stripe SDK
 * sends, application/x-www-form-urlencoded) and size (413), then reads the
 * whole body into r->body and sets r->body_format. Returns PAY_OK, or the
 * error after replying with it.
 */
int http_read_body_or_reply(struct http_req *r) __attribute__((warn_unused_result));

#endif

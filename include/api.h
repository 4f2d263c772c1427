/* api.h - the API's handlers; each returns the HTTP status it sent. */
#ifndef PAYMENTS_API_H
#define PAYMENTS_API_H

#include <stdio.h>

#include "http.h"
#include "updatereq.h"

struct db_conn;
struct db_idem_result;

/*
 * Authenticates "Authorization: Bearer sk_test_..." and sets r->user_id.
 * Returns PAY_OK, PAY_EAUTH_MISSING, PAY_EAUTH_INVALID or PAY_EUNAVAILABLE;
 * replying is the caller's (it rate-limits first).
 */
int api_authenticate(struct http_req *r) __attribute__((warn_unused_result));

/* Checks the Idempotency-Key header. Returns PAY_OK with *key set, or the error after replying 400. */
int api_idempotency_key_or_reply(struct http_req *r, const char **key)
	__attribute__((warn_unused_result));

/*
 * Answers an idempotent create from the database's rc and result: the new
 * or stored status and body with Idempotent-Replayed, 409 on a fingerprint
 * mismatch (400, as Stripe answers it, when the request speaks Stripe's
 * dialect: http_speaks_stripe), or the error. Returns the status sent.
 */
int api_reply_idempotent(struct http_req *r, int rc, const struct db_idem_result *res);

/* A list's page size: the query parameter limit, when given, a whole number from 1 to API_LIMIT_MAX. */
#define API_LIMIT_DEFAULT 10
#define API_LIMIT_MAX 100

/*
 * Reads the optional query parameter limit. Returns PAY_OK with *limit set
 * (API_LIMIT_DEFAULT when absent), or PAY_EPARAM_INVALID after replying 400
 * naming limit.
 */
int api_query_limit_or_reply(struct http_req *r, int *limit) __attribute__((warn_unused_result));

/* Reads one object of the user's: the signature shared by db_charge_get, db_refund_get, ... */
typedef int (*api_fetch_fn)(struct db_conn *c, const char *user_id, const char *id, char **json);

/*
 * Answers GET .../{id}: 200 with the object when r->path_id has the prefix
 * and fetch finds it for this user, else 404 (a malformed id, a missing
 * object and another user's object look the same). Returns the status sent.
 */
int api_reply_object(struct http_req *r, const char *prefix, api_fetch_fn fetch, const char *what);

/* An idempotent update of one object: db_charge_update, db_refund_update. */
struct db_update;
typedef int (*api_update_fn)(struct db_conn *c, const struct db_update *in,
			     struct db_idem_result *out);

/*
 * Answers POST /v1/charges/{id} (kind UPDATEREQ_CHARGE) or POST
 * /v1/refunds/{id} (UPDATEREQ_REFUND) with update: the body parsed by
 * updatereq, the Idempotency-Key required and honoured as on every POST,
 * 200 with the object after the update, 404 for a malformed, missing or
 * another user's id. Returns the status sent.
 */
int api_reply_update(struct http_req *r, enum updatereq_kind kind, api_update_fn update);

/* POST /v1/charges and POST /charge. */
int api_charges_create(struct http_req *r);
/* POST /v1/charges/{id}/capture: captures an authorization, in full or in part. */
int api_charges_capture(struct http_req *r);
/* GET /v1/charges/{id}. */
int api_charges_get(struct http_req *r);
/* POST /v1/charges/{id}: updates description and metadata. */
int api_charges_update(struct http_req *r);

/* POST /v1/refunds, GET /v1/refunds/{id} and POST /v1/refunds/{id} (metadata). */
int api_refunds_create(struct http_req *r);
int api_refunds_get(struct http_req *r);
int api_refunds_update(struct http_req *r);

/* GET /v1/charges, /v1/refunds, /v1/events: keyset-paginated lists. */
int api_charges_list(struct http_req *r);
int api_refunds_list(struct http_req *r);
int api_events_list(struct http_req *r);
/* GET /v1/events/{id}. */
int api_events_get(struct http_req *r);

/* POST, GET (list), GET {id}, DELETE {id} on /v1/webhook_endpoints. */
int api_webhooks_create(struct http_req *r);
int api_webhooks_list(struct http_req *r);
int api_webhooks_get(struct http_req *r);
int api_webhooks_delete(struct http_req *r);
/* GET /v1/webhook_deliveries?status=&event=&webhook_endpoint=&limit= and POST .../{id}/retry. */
int api_deliveries_list(struct http_req *r);
int api_deliveries_retry(struct http_req *r);

/* GET /v1/openapi.yaml: the OpenAPI 3.1 document, built into the binary (api_openapi.c). */
int api_openapi_get(struct http_req *r);

/*
 * The API's metrics in the Prometheus text format, written to f; app is the
 * struct http_app. Served on PAYMENTS_METRICS_LISTEN (metrics_server.c),
 * never on the API's port. Returns 0, or -1 on failure.
 */
int api_metrics_render(FILE *f, void *app);

/* GET /healthz: the process is alive. GET /readyz: the database answers. */
int api_health_live(struct http_req *r);
int api_health_ready(struct http_req *r);

#endif

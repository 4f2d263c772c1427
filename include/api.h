/* api.h - the API's handlers; each returns the HTTP status it sent. */
#ifndef PAYMENTS_API_H
#define PAYMENTS_API_H

#include "http.h"

/*
 * Authenticates "Authorization: Bearer sk_test_..." and sets r->user_id.
 * Returns PAY_OK, or an error after replying with it (401, or 503 when the
 * database is down).
 */
int api_authenticate_or_reply(struct http_req *r) __attribute__((warn_unused_result));

/* POST /v1/charges and POST /charge. */
int api_charges_create(struct http_req *r);
/* GET /v1/charges/{id}. */
int api_charges_get(struct http_req *r);

/* POST, GET (list), GET {id}, DELETE {id} on /v1/webhook_endpoints. */
int api_webhooks_create(struct http_req *r);
int api_webhooks_list(struct http_req *r);
int api_webhooks_get(struct http_req *r);
int api_webhooks_delete(struct http_req *r);
/* GET /v1/webhook_deliveries?status=&event=&webhook_endpoint=&limit= and POST .../{id}/retry. */
int api_deliveries_list(struct http_req *r);
int api_deliveries_retry(struct http_req *r);

/* GET /healthz: the process is alive. GET /readyz: the database answers. */
int api_health_live(struct http_req *r);
int api_health_ready(struct http_req *r);

#endif

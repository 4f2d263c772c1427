/* webhookreq.h - decoding and validating the body of POST /v1/webhook_endpoints. */
#ifndef PAYMENTS_WEBHOOKREQ_H
#define PAYMENTS_WEBHOOKREQ_H

#include <stddef.h>

#include <jansson.h>

#include "body.h"
#include "urlcheck.h"

/* Most event types one endpoint may list in enabled_events. */
#define WEBHOOKREQ_MAX_EVENTS 32

/*
 * A validated webhook endpoint request. url is borrowed from root;
 * events_json is owned. Release with webhookreq_fini.
 */
struct webhookreq {
	json_t *root;
	const char *url;                  /* an absolute http:// or https:// URL */
	char host[URLCHECK_MAX + 1];      /* url's host, for the caller's address check */
	char *events_json;                /* enabled_events as a compact JSON array */
};

/*
 * Parses and validates len bytes of body: only url and enabled_events, url
 * as urlcheck_parse wants it, enabled_events a list of 1 to
 * WEBHOOKREQ_MAX_EVENTS known event types (or "*"). Whether the host is a
 * public address is not checked here (PAYMENTS_WEBHOOK_ALLOW_PRIVATE decides): that is the
 * caller's. On PAY_OK req is filled and must be released with
 * webhookreq_fini; on failure err says what and which param, and req holds
 * nothing (webhookreq_fini is still safe).
 */
int webhookreq_parse(struct webhookreq *req, const char *buf, size_t len, enum body_format format,
		     struct body_error *err)
	__attribute__((warn_unused_result));

void webhookreq_fini(struct webhookreq *req);

#endif

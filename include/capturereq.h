/* capturereq.h - decoding and validating the body of POST /v1/charges/{id}/capture. */
#ifndef PAYMENTS_CAPTUREREQ_H
#define PAYMENTS_CAPTUREREQ_H

#include <stdbool.h>

#include <jansson.h>

#include "body.h"
#include "canon.h"

/* The route a capture fingerprints as, before the charge id is put in. */
#define CAPTUREREQ_ROUTE "/v1/charges/{id}/capture"

/* A validated capture request. Release with capturereq_fini. */
struct capturereq {
	json_t *root;
	long long amount;
	bool has_amount;             /* false: capture the whole authorized amount */
	unsigned char fingerprint[CANON_FINGERPRINT_BYTES];
};

/*
 * Parses and validates len bytes of body, of either format, for a capture of
 * charge_id (a valid "ch_" id). An empty body is an empty object: a capture
 * needs no parameters. The fingerprint covers the charge id, so one
 * Idempotency-Key sent to capture two charges is a mismatch, not a replay.
 * Returns PAY_OK with req filled, or an error with err filled and req empty.
 */
int capturereq_parse_as(struct capturereq *req, const char *charge_id, const char *buf, size_t len,
			enum body_format format, struct body_error *err)
	__attribute__((warn_unused_result));
void capturereq_fini(struct capturereq *req);

#endif

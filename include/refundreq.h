/* refundreq.h - decoding and validating the body of POST /v1/refunds. */
#ifndef PAYMENTS_REFUNDREQ_H
#define PAYMENTS_REFUNDREQ_H

#include <stdbool.h>

#include <jansson.h>

#include "body.h"
#include "canon.h"

#define REFUNDREQ_ROUTE "/v1/refunds"

/* A validated refund request; strings borrowed from root, metadata_json owned. */
struct refundreq {
	json_t *root;
	const char *charge;
	long long amount;
	bool has_amount;             /* false: refund what is left */
	const char *reason;          /* NULL when absent */
	char *metadata_json;
	unsigned char fingerprint[CANON_FINGERPRINT_BYTES];
};

/* As chargereq_parse: PAY_OK with req filled (release with refundreq_fini), or err filled. */
int refundreq_parse(struct refundreq *req, const char *buf, size_t len, struct body_error *err)
	__attribute__((warn_unused_result));
/* As chargereq_parse_as: either format, one fingerprint for both. */
int refundreq_parse_as(struct refundreq *req, const char *buf, size_t len, enum body_format format,
		       struct body_error *err) __attribute__((warn_unused_result));
void refundreq_fini(struct refundreq *req);

#endif

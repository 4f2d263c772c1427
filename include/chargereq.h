/* chargereq.h - decoding and validating the body of POST /v1/charges. */
#ifndef PAYMENTS_CHARGEREQ_H
#define PAYMENTS_CHARGEREQ_H

#include <jansson.h>

#include "body.h"
#include "canon.h"
#include "charge.h"

/* The canonical route every alias of charge creation fingerprints as. */
#define CHARGEREQ_ROUTE "/v1/charges"

/*
 * A validated charge request. String fields are borrowed from root and live
 * as long as the struct; metadata_json is owned. Release with chargereq_fini.
 */
struct chargereq {
	json_t *root;
	long long amount;
	const char *currency;
	const char *source;
	const char *description;     /* NULL when absent */
	char *metadata_json;         /* compact JSON object, "{}" when absent */
	bool capture;                /* false: authorize only (default true) */
	enum charge_outcome outcome;
	unsigned char fingerprint[CANON_FINGERPRINT_BYTES];
};

/*
 * Parses and validates len bytes of body. On PAY_OK req is filled and must be
 * released with chargereq_fini; on failure err says what and which param,
 * and req holds nothing (chargereq_fini is still safe).
 */
int chargereq_parse(struct chargereq *req, const char *buf, size_t len, struct body_error *err)
	__attribute__((warn_unused_result));

/*
 * chargereq_parse for a body of either format. A form is decoded into the
 * object the same request in JSON gives (its amount a number), so both are
 * validated alike and share one fingerprint: a request sent as JSON and
 * retried as a form replays.
 */
int chargereq_parse_as(struct chargereq *req, const char *buf, size_t len, enum body_format format,
		       struct body_error *err) __attribute__((warn_unused_result));

void chargereq_fini(struct chargereq *req);

#endif

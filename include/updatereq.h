/* updatereq.h - decoding and validating the body of POST /v1/charges/{id} and POST /v1/refunds/{id}. */
#ifndef PAYMENTS_UPDATEREQ_H
#define PAYMENTS_UPDATEREQ_H

#include <jansson.h>

#include "body.h"
#include "canon.h"

/* What is updated: a charge (description and metadata) or a refund (metadata only). */
enum updatereq_kind {
	UPDATEREQ_CHARGE = 0,
	UPDATEREQ_REFUND = 1,
};

/*
 * A validated update. Only what the request names changes: a field left out
 * (or null) stays as it is. description is borrowed from root; metadata_json
 * is owned. Release with updatereq_fini.
 */
struct updatereq {
	json_t *root;
	const char *description;     /* NULL: unchanged; "": unset (null), as Stripe does */
	/*
	 * NULL: unchanged. Otherwise the request's metadata as compact JSON:
	 * an object whose keys are set, a key given "" being removed (the
	 * charge's other keys stay), or the string "" (JSON "\"\""): remove
	 * every key. Limits as on create (body_get_metadata).
	 */
	char *metadata_json;
	unsigned char fingerprint[CANON_FINGERPRINT_BYTES];
};

/*
 * Parses and validates len bytes of body, of either format, for an update
 * of kind of the object id (a valid "ch_" or "re_" id). An empty body is an
 * empty object: an update of nothing, which answers the object as it is.
 * Any other field than the kind's (description and metadata for a charge,
 * metadata for a refund) is PAY_EPARAM_UNKNOWN naming it. The fingerprint
 * covers the object's route with its id, so one Idempotency-Key sent to
 * update two objects is a mismatch. Returns PAY_OK with req filled, or an
 * error with err filled and req empty.
 */
int updatereq_parse_as(struct updatereq *req, enum updatereq_kind kind, const char *id,
		       const char *buf, size_t len, enum body_format format, struct body_error *err)
	__attribute__((warn_unused_result));
void updatereq_fini(struct updatereq *req);

#endif

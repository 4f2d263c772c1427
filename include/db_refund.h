/* db_refund.h - refund queries: the one-round-trip create and update, and the scoped read. */
#ifndef PAYMENTS_DB_REFUND_H
#define PAYMENTS_DB_REFUND_H

#include <stdbool.h>

#include "db.h"
#include "db_idem.h"

/* Everything create_refund() needs; strings borrowed. */
struct db_refund_new {
	const char *user_id;
	const char *idempotency_key;
	const unsigned char *fingerprint;   /* 32 bytes */
	long long ttl_ms;
	long long wait_ms;
	const char *refund_id;
	const char *charge_id;
	long long amount;
	bool has_amount;
	const char *reason;
	const char *metadata_json;
	const char *request_id;
	const char *refund_event_id;
	const char *charge_event_id;
};

/*
 * Runs create_refund() in one round trip. Returns PAY_OK with *out filled,
 * PAY_ENOT_FOUND (no such charge of this user), PAY_EAMOUNT_TOO_LARGE,
 * PAY_EALREADY_REFUNDED, PAY_ENOT_REFUNDABLE, PAY_EEXPIRED_FOR_CAPTURE (an
 * authorization that expired), PAY_EPARAM_INVALID (part of an uncaptured
 * charge: a refund of one releases all of it), PAY_EIDEM_IN_USE, or a db error.
 */
int db_refund_create(struct db_conn *c, const struct db_refund_new *in, struct db_idem_result *out)
	__attribute__((warn_unused_result));

/*
 * Runs update_refund() in one round trip: in->id's metadata changes as
 * in->metadata_json says (in->description must be NULL), with a
 * refund.updated event when anything changed. Returns PAY_OK with *out
 * filled (200 and the refund object, or a replay or mismatch),
 * PAY_ENOT_FOUND (no such refund of this user), PAY_EMETADATA (more than
 * in->metadata_max keys after the merge), PAY_ECHARGE_BUSY (another update
 * held the refund past wait_ms), PAY_EIDEM_IN_USE, or a db error.
 */
int db_refund_update(struct db_conn *c, const struct db_update *in, struct db_idem_result *out)
	__attribute__((warn_unused_result));

/* The refund object JSON of id if it is user_id's (PAY_ENOT_FOUND otherwise); caller frees *json. */
int db_refund_get(struct db_conn *c, const char *user_id, const char *id, char **json)
	__attribute__((warn_unused_result));

#endif

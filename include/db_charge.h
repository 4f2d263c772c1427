/* db_charge.h - charge queries: the one-round-trip create, capture and update, and the scoped read. */
#ifndef PAYMENTS_DB_CHARGE_H
#define PAYMENTS_DB_CHARGE_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "db_idem.h"

/* Everything create_charge() needs; all strings borrowed from the caller. */
struct db_charge_new {
	const char *user_id;
	const char *idempotency_key;
	const unsigned char *fingerprint;   /* 32 bytes */
	long long ttl_ms;
	long long wait_ms;
	const char *charge_id;
	const char *event_id;
	long long amount;
	const char *currency;
	const char *source;
	const char *description;     /* may be NULL */
	const char *metadata_json;
	const char *failure_code;    /* NULL when the charge succeeds */
	const char *decline_code;
	const char *error_body;      /* the 402 body when declined */
	const char *request_id;
	bool capture;                /* false: authorize only */
};

/*
 * Runs create_charge() in one round trip. Returns PAY_OK with *out filled,
 * PAY_EIDEM_IN_USE when a concurrent request with the same key held it past
 * wait_ms, PAY_EUNAVAILABLE or PAY_EINTERNAL.
 */
int db_charge_create(struct db_conn *c, const struct db_charge_new *in, struct db_idem_result *out)
	__attribute__((warn_unused_result));

/* Everything capture_charge() needs; strings borrowed from the caller. */
struct db_charge_capture {
	const char *user_id;
	const char *idempotency_key;
	const unsigned char *fingerprint;   /* 32 bytes */
	long long ttl_ms;
	long long wait_ms;
	const char *charge_id;
	long long amount;
	bool has_amount;             /* false: the whole authorized amount */
	const char *event_id;
	const char *request_id;
};

/*
 * Runs capture_charge() in one round trip. Returns PAY_OK with *out filled
 * (status 200 and the charge object, or a replay or mismatch),
 * PAY_ENOT_FOUND (no such charge of this user), PAY_EALREADY_CAPTURED,
 * PAY_EEXPIRED_FOR_CAPTURE, PAY_ENOT_CAPTURABLE, PAY_EAMOUNT_TOO_LARGE,
 * PAY_EIDEM_IN_USE, or a db error.
 */
int db_charge_capture(struct db_conn *c, const struct db_charge_capture *in,
		      struct db_idem_result *out) __attribute__((warn_unused_result));

/*
 * Runs update_charge() in one round trip: in->id's description and metadata
 * change as in->description and in->metadata_json say, with a charge.updated
 * event when anything changed. Returns PAY_OK with *out filled (status 200
 * and the charge object, or a replay or mismatch), PAY_ENOT_FOUND (no such
 * charge of this user), PAY_EMETADATA (more than in->metadata_max keys after
 * the merge), PAY_ECHARGE_BUSY (a refund or capture held the charge past
 * wait_ms), PAY_EIDEM_IN_USE, or a db error.
 */
int db_charge_update(struct db_conn *c, const struct db_update *in, struct db_idem_result *out)
	__attribute__((warn_unused_result));

/*
 * Releases up to batch authorizations older than ttl_ms (expire_authorizations(),
 * one transaction, each with its charge.expired event). Returns PAY_OK with
 * *expired set, or a db error.
 */
int db_charge_expire(struct db_conn *c, long long ttl_ms, int batch, long long *expired)
	__attribute__((warn_unused_result));

/*
 * Reads the charge object JSON of id if it belongs to user_id. Returns
 * PAY_OK with *json (caller frees with free()), PAY_ENOT_FOUND, or a db error.
 */
int db_charge_get(struct db_conn *c, const char *user_id, const char *id, char **json)
	__attribute__((warn_unused_result));

#endif

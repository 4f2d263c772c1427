/* db_idem.h - idempotency rows: running an idempotent create and reading its answer, and the batched purge. */
#ifndef PAYMENTS_DB_IDEM_H
#define PAYMENTS_DB_IDEM_H

#include <stddef.h>

#include "db.h"

/* What an idempotent create answered: a new object, a replay, or a fingerprint mismatch. */
enum db_idem_outcome { DB_IDEM_CREATED, DB_IDEM_REPLAYED, DB_IDEM_MISMATCH };

/* The stored (or new) response under a key; body is owned (db_idem_result_fini). */
struct db_idem_result {
	enum db_idem_outcome outcome;
	int status;
	char *body;
	size_t body_len;
	/* How long the stored key has left (created, replayed; create_charge only), else -1. */
	long long expires_in_ms;
};

void db_idem_result_fini(struct db_idem_result *r);

/*
 * An idempotent update of one object's description and metadata
 * (update_charge, update_refund; see updatereq.h for what the fields mean).
 * All strings borrowed from the caller.
 */
struct db_update {
	const char *user_id;
	const char *idempotency_key;
	const unsigned char *fingerprint;   /* 32 bytes */
	long long ttl_ms;
	long long wait_ms;
	const char *id;                     /* the charge's or the refund's */
	const char *description;            /* NULL: unchanged; "": unset (charges only) */
	const char *metadata_json;          /* NULL: unchanged; an object to merge; "\"\"": clear */
	int metadata_max;                   /* the most keys the merged metadata may have */
	const char *event_id;               /* of the .updated event, written when anything changed */
	const char *request_id;
};

/*
 * Deletes at most batch expired keys in one short transaction, skipping
 * locked rows. Returns PAY_OK with *deleted set, or a db error.
 */
int db_idem_purge(struct db_conn *c, int batch, long long *deleted)
	__attribute__((warn_unused_result));

#endif

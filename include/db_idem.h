/* db_idem.h - retention of idempotency keys: the batched purge. */
#ifndef PAYMENTS_DB_IDEM_H
#define PAYMENTS_DB_IDEM_H

#include "db.h"

/*
 * Deletes at most batch expired keys in one short transaction, skipping
 * locked rows. Returns PAY_OK with *deleted set, or a db error.
 */
int db_idem_purge(struct db_conn *c, int batch, long long *deleted)
	__attribute__((warn_unused_result));

#endif

/*
 * purge.h - serve's housekeeping thread: deletes expired idempotency keys and
 * releases expired authorizations, in small batches.
 */
#ifndef PAYMENTS_PURGE_H
#define PAYMENTS_PURGE_H

struct db_pool;
struct purge;

/*
 * Starts a thread that every interval_ms deletes expired keys, then releases
 * authorizations older than authorization_ttl_ms (charge.expired), batch rows
 * per transaction, until none are left. Returns NULL when the thread cannot
 * start.
 */
struct purge *purge_start(struct db_pool *pool, long long interval_ms, int batch,
			  long long authorization_ttl_ms);

/* Stops the thread (waking it if asleep) and frees it. */
void purge_stop(struct purge *p);

#endif

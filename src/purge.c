/*
 * purge.c - serve's housekeeping thread: deletes expired idempotency keys and
 * releases expired authorizations, in small batches.
 */
#include "purge.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "db.h"
#include "db_charge.h"
#include "db_idem.h"
#include "err.h"
#include "log.h"
#include "timing.h"

struct purge {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	struct db_pool *pool;
	long long interval_ms;
	int batch;
	long long authorization_ttl_ms;
};

/* One sweep: batches until a short one shows nothing expired is left. */
static void purge_sweep(struct purge *p)
{
	struct db_conn *conn = NULL;
	long long deleted = 0, total = 0;
	int rc;

	do {
		/* Take a connection per batch so request traffic never waits long behind us. */
		rc = db_pool_acquire(p->pool, &conn);
		if (rc != PAY_OK)
			break;
		rc = db_idem_purge(conn, p->batch, &deleted);
		db_pool_release(p->pool, conn);
		total += deleted;
	} while (rc == PAY_OK && deleted == p->batch && !p->stopping);
	if (total > 0)
		log_write(LOG_INFO, "purged expired idempotency keys",
			  json_pack("{s:I}", "deleted", (json_int_t)total));
}

/* One sweep of authorizations past their TTL: batches until a short one. */
static void purge_expire_authorizations(struct purge *p)
{
	struct db_conn *conn = NULL;
	long long expired = 0, total = 0;
	int rc;

	do {
		rc = db_pool_acquire(p->pool, &conn);
		if (rc != PAY_OK)
			break;
		rc = db_charge_expire(conn, p->authorization_ttl_ms, p->batch, &expired);
		db_pool_release(p->pool, conn);
		total += expired;
	} while (rc == PAY_OK && expired == p->batch && !p->stopping);
	if (total > 0)
		log_write(LOG_INFO, "released expired authorizations",
			  json_pack("{s:I}", "expired", (json_int_t)total));
}

static void *purge_main(void *arg)
{
	struct purge *p = arg;
	struct timespec at;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		pthread_mutex_unlock(&p->lock);
		purge_sweep(p);
		purge_expire_authorizations(p);
		pthread_mutex_lock(&p->lock);
		timing_deadline(&at, p->interval_ms);
		while (!p->stopping && pthread_cond_timedwait(&p->wake, &p->lock, &at) == 0) {
			/* woken early: loop re-checks stopping; spurious wakes sleep again */
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct purge *purge_start(struct db_pool *pool, long long interval_ms, int batch,
			  long long authorization_ttl_ms)
{
	struct purge *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->pool = pool;
	p->interval_ms = interval_ms;
	p->batch = batch;
	p->authorization_ttl_ms = authorization_ttl_ms;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (pthread_create(&p->thread, NULL, purge_main, p) != 0) {
		pthread_cond_destroy(&p->wake);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	return p;
}

void purge_stop(struct purge *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

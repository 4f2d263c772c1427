/* api_read.c - GETs on the read pool (PAYMENTS_READ_DATABASE_URL), with the primary as fallback. */
#include "api_read.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "db.h"
#include "err.h"
#include "http.h"
#include "timing.h"

/*
 * After the read pool could not answer (its server down or unreachable, no
 * connection free), reads skip it this long and go to the primary: a
 * standby that does not answer then costs one connection attempt a second,
 * not one (up to PAYMENTS_DB_CONNECT_TIMEOUT) per GET.
 */
#define API_READ_SKIP_MS 1000

/* timing_now_ms() before which reads skip the read pool (one read pool per process). */
static atomic_llong api_read_skip_until_ms;

/* Whether to ask the read pool now. */
static bool api_read_pool_open(const struct http_app *app)
{
	return app->read_pool != NULL && timing_now_ms() >= atomic_load(&api_read_skip_until_ms);
}

/* Notes the read pool's answer rc: unavailable closes it for API_READ_SKIP_MS. */
static void api_read_pool_answered(int rc)
{
	if (rc == PAY_EUNAVAILABLE)
		atomic_store(&api_read_skip_until_ms, timing_now_ms() + API_READ_SKIP_MS);
}

/* fetch on one pool: PAY_OK with *json, or the pool's or fetch's error (and *json NULL). */
static int api_read_object_on(struct db_pool *pool, api_fetch_fn fetch, const char *user_id,
			      const char *id, char **json)
{
	struct db_conn *conn = NULL;
	int rc;

	*json = NULL;
	rc = db_pool_acquire(pool, &conn);
	if (rc == PAY_OK) {
		rc = fetch(conn, user_id, id, json);
		db_pool_release(pool, conn);
	}
	if (rc != PAY_OK) {
		free(*json);
		*json = NULL;
	}
	return rc;
}

int api_read_object(struct http_app *app, api_fetch_fn fetch, const char *user_id, const char *id,
		    char **json)
{
	int rc = PAY_EUNAVAILABLE;

	if (api_read_pool_open(app)) {
		rc = api_read_object_on(app->read_pool, fetch, user_id, id, json);
		api_read_pool_answered(rc);
	}
	if (rc != PAY_OK)
		rc = api_read_object_on(app->pool, fetch, user_id, id, json);
	return rc;
}

/* db_list_page on one pool; *data is NULL unless it answers PAY_OK. */
static int api_read_list_on(struct db_pool *pool, const char *user_id,
			    const struct db_list_query *q, char **data, bool *has_more,
			    const char **bad_param)
{
	struct db_conn *conn = NULL;
	int rc;

	*data = NULL;
	*has_more = false;
	*bad_param = NULL;
	rc = db_pool_acquire(pool, &conn);
	if (rc == PAY_OK) {
		rc = db_list_page(conn, user_id, q, data, has_more, bad_param);
		db_pool_release(pool, conn);
	}
	if (rc != PAY_OK) {
		free(*data);
		*data = NULL;
	}
	return rc;
}

int api_read_list(struct http_app *app, const char *user_id, const struct db_list_query *q,
		  char **data, bool *has_more, const char **bad_param)
{
	int rc = PAY_EUNAVAILABLE;

	if (api_read_pool_open(app)) {
		rc = api_read_list_on(app->read_pool, user_id, q, data, has_more, bad_param);
		api_read_pool_answered(rc);
	}
	if (rc != PAY_OK)
		rc = api_read_list_on(app->pool, user_id, q, data, has_more, bad_param);
	return rc;
}

/* api_read.c - GETs on the read pool (PAYMENTS_READ_DATABASE_URL), with the primary as fallback. */
#include "api_read.h"

#include <stdlib.h>

#include "db.h"
#include "err.h"
#include "http.h"

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

	if (app->read_pool != NULL)
		rc = api_read_object_on(app->read_pool, fetch, user_id, id, json);
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

	if (app->read_pool != NULL)
		rc = api_read_list_on(app->read_pool, user_id, q, data, has_more, bad_param);
	if (rc != PAY_OK)
		rc = api_read_list_on(app->pool, user_id, q, data, has_more, bad_param);
	return rc;
}

/* api_common.c - the shapes every resource shares: single objects and keyset lists. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "err.h"
#include "ids.h"

int api_reply_object(struct http_req *r, const char *prefix, api_fetch_fn fetch, const char *what)
{
	struct db_conn *conn = NULL;
	char msg[64], *json = NULL;
	int rc = PAY_ENOT_FOUND;

	/* A malformed id cannot exist: answer 404 without asking the database. */
	if (ids_valid(r->path_id, prefix))
		rc = db_pool_acquire(r->app->pool, &conn);
	if (conn != NULL) {
		rc = fetch(conn, r->user_id, r->path_id, &json);
		db_pool_release(r->app->pool, conn);
	}
	snprintf(msg, sizeof(msg), "No such %s.", what);
	if (rc == PAY_OK)
		http_reply(r, 200, json, strlen(json), NULL, 0);
	else if (rc == PAY_ENOT_FOUND)
		http_reply_error(r, rc, "id", msg);
	else
		http_reply_error(r, rc, NULL, NULL);
	free(json);
	return r->status;
}

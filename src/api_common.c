/* api_common.c - what every resource shares: single objects and the page size of lists. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "err.h"
#include "ids.h"

int api_query_limit_or_reply(struct http_req *r, int *limit)
{
	char buf[8];
	int n = http_query_param(r, "limit", buf, sizeof(buf));
	bool ok = true;

	*limit = API_LIMIT_DEFAULT;
	if (n != -1) {
		ok = n > 0 && strspn(buf, "0123456789") == (size_t)n;
		*limit = ok ? atoi(buf) : 0;
		ok = ok && *limit >= 1 && *limit <= API_LIMIT_MAX;
	}
	if (!ok)
		http_reply_error(r, PAY_EPARAM_INVALID, "limit", "limit must be a whole number from 1 to 100.");
	return ok ? PAY_OK : PAY_EPARAM_INVALID;
}

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

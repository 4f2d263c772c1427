/* api_health.c - liveness and readiness probes for load balancers. */
#include "api.h"

#include <string.h>

#include "db.h"
#include "err.h"

int api_health_live(struct http_req *r)
{
	static const char body[] = "{\"status\":\"ok\"}";

	return http_reply(r, 200, body, sizeof(body) - 1, NULL, 0);
}

int api_health_ready(struct http_req *r)
{
	static const char body[] = "{\"status\":\"ready\"}";
	struct db_conn *conn = NULL;
	struct db_result *res = NULL;
	int rc;

	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_exec(conn, DB_STMT_PING, NULL, false, &res);
		db_result_free(res);
		db_pool_release(r->app->pool, conn);
	}
	if (rc != PAY_OK)
		return http_reply_error(r, PAY_EUNAVAILABLE, NULL, "The database is not reachable.");
	return http_reply(r, 200, body, sizeof(body) - 1, NULL, 0);
}

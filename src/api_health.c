/* api_health.c - liveness and readiness probes for load balancers, and the metrics scrape. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "err.h"
#include "metrics.h"

int api_health_live(struct http_req *r)
{
	static const char body[] = "{\"status\":\"ok\"}";

	return http_reply(r, 200, body, sizeof(body) - 1, NULL, 0);
}

int api_health_ready(struct http_req *r)
{
	static const char body[] = "{\"status\":\"ready\"}";
	struct db_conn *conn = NULL;
	int rc;

	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_ping(conn);
		db_pool_release(r->app->pool, conn);
	}
	if (rc != PAY_OK)
		return http_reply_error(r, PAY_EUNAVAILABLE, NULL, "The database is not reachable.");
	return http_reply(r, 200, body, sizeof(body) - 1, NULL, 0);
}

int api_metrics_render(FILE *f, void *app)
{
	const struct http_app *a = app;
	struct metrics_api_gauges g;
	const char *const *names;
	int n;

	http_route_names(&names, &n);
	db_pool_stats(a->pool, &g.pool_in_use, &g.pool_size, &g.pool_waits);
	return metrics_render_api(f, names, n, &g) == 0 ? 0 : -1;
}

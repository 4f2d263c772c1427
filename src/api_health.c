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

int api_metrics(struct http_req *r)
{
	struct metrics_api_gauges g;
	const char *const *names;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int n;

	http_route_names(&names, &n);
	db_pool_stats(r->app->pool, &g.pool_in_use, &g.pool_size, &g.pool_waits);
	f = open_memstream(&text, &len);
	if (f == NULL || metrics_render_api(f, names, n, &g) != 0) {
		if (f != NULL)
			fclose(f);
		free(text);
		return http_reply_error(r, PAY_ENOMEM, NULL, NULL);
	}
	fclose(f);
	http_reply_typed(r, 200, "text/plain; version=0.0.4", text, len, NULL, 0);
	free(text);
	return r->status;
}

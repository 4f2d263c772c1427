/* metrics.h - Prometheus counters and histograms of the API and the relay (text format 0.0.4). */
#ifndef PAYMENTS_METRICS_H
#define PAYMENTS_METRICS_H

#include <stdbool.h>
#include <stdio.h>

#define METRICS_MAX_ROUTES 32

/* Updates are lock-free atomic increments, safe from any thread. */

/* One finished request: route is the index in the routing table (-1: no route matched). */
void metrics_request(int route, int status, long long duration_us);
void metrics_replay(void);
void metrics_conflict(bool in_use);   /* idempotency_key_in_use, else idempotency_key_reused (409 or 400) */
void metrics_rate_limited(void);

/* One delivery attempt of the relay, and an event's commit-to-delivery lag. */
void metrics_delivery(bool ok, bool dead);
void metrics_delivery_lag(double seconds);

/* The API's gauges, read at render time. */
struct metrics_api_gauges {
	int pool_in_use;
	int pool_size;
	unsigned long long pool_waits;
};

/* The relay's gauges, read at render time. */
struct metrics_relay_gauges {
	long long unpublished;
	double oldest_unpublished_s;
	long long pending_deliveries;
	long long dead_deliveries;
};

/*
 * Writes the API's metrics to f; route_names[i] names route i (e.g.
 * "POST /v1/charges"). Returns 0, or -1 when writing failed.
 */
int metrics_render_api(FILE *f, const char *const *route_names, int nroutes,
		       const struct metrics_api_gauges *g);
int metrics_render_relay(FILE *f, const struct metrics_relay_gauges *g);

#endif

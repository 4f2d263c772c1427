/* metrics.c - Prometheus counters and histograms of the API and the relay (text format 0.0.4). */
#include "metrics.h"

#include <stdint.h>

#define METRICS_MAX_STATUS 600
#define METRICS_NBUCKETS 14

static const double metrics_buckets[METRICS_NBUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* Index METRICS_MAX_ROUTES holds requests that matched no route. */
static uint64_t metrics_requests[METRICS_MAX_ROUTES + 1][METRICS_MAX_STATUS];
static uint64_t metrics_hist[METRICS_MAX_ROUTES + 1][METRICS_NBUCKETS];
static uint64_t metrics_hist_count[METRICS_MAX_ROUTES + 1];
static uint64_t metrics_hist_sum_us[METRICS_MAX_ROUTES + 1];
static uint64_t metrics_replays, metrics_reused, metrics_in_use, metrics_limited;
static uint64_t metrics_deliveries_ok, metrics_deliveries_failed, metrics_deliveries_dead;
static uint64_t metrics_lag_hist[METRICS_NBUCKETS], metrics_lag_count, metrics_lag_sum_us;

static void metrics_add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static uint64_t metrics_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Counts v (seconds) into the first bucket it fits; rendering makes them cumulative. */
static void metrics_observe(uint64_t *hist, uint64_t *count, uint64_t *sum_us, double v)
{
	int i;

	for (i = 0; i < METRICS_NBUCKETS && v > metrics_buckets[i]; i++)
		;
	if (i < METRICS_NBUCKETS)
		metrics_add(&hist[i], 1);
	metrics_add(count, 1);
	metrics_add(sum_us, (uint64_t)(v * 1e6));
}

void metrics_request(int route, int status, long long duration_us)
{
	int r = (route >= 0 && route < METRICS_MAX_ROUTES) ? route : METRICS_MAX_ROUTES;

	if (status > 0 && status < METRICS_MAX_STATUS)
		metrics_add(&metrics_requests[r][status], 1);
	metrics_observe(metrics_hist[r], &metrics_hist_count[r], &metrics_hist_sum_us[r],
			(double)duration_us / 1e6);
}

void metrics_replay(void)
{
	metrics_add(&metrics_replays, 1);
}

void metrics_conflict(bool in_use)
{
	metrics_add(in_use ? &metrics_in_use : &metrics_reused, 1);
}

void metrics_rate_limited(void)
{
	metrics_add(&metrics_limited, 1);
}

void metrics_delivery(bool ok, bool dead)
{
	metrics_add(ok ? &metrics_deliveries_ok : dead ? &metrics_deliveries_dead :
		    &metrics_deliveries_failed, 1);
}

void metrics_delivery_lag(double seconds)
{
	metrics_observe(metrics_lag_hist, &metrics_lag_count, &metrics_lag_sum_us, seconds);
}

static void metrics_render_hist(FILE *f, const char *name, const char *labels,
				const uint64_t *hist, const uint64_t *count, const uint64_t *sum_us)
{
	uint64_t cum = 0;
	int i;

	for (i = 0; i < METRICS_NBUCKETS; i++) {
		cum += metrics_get(&hist[i]);
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "",
			metrics_buckets[i], (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
		(unsigned long long)metrics_get(count));
	fprintf(f, "%s_sum%s%s%s %.6f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
		(double)metrics_get(sum_us) / 1e6);
	fprintf(f, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
		(unsigned long long)metrics_get(count));
}

int metrics_render_api(FILE *f, const char *const *route_names, int nroutes,
		       const struct metrics_api_gauges *g)
{
	char labels[128];
	int r, s;

	fprintf(f, "# HELP payments_http_requests_total HTTP requests by route and status.\n"
		   "# TYPE payments_http_requests_total counter\n");
	for (r = 0; r <= METRICS_MAX_ROUTES; r++) {
		const char *name = r < nroutes ? route_names[r] : r == METRICS_MAX_ROUTES ? "unmatched" : NULL;

		for (s = 0; name != NULL && s < METRICS_MAX_STATUS; s++) {
			uint64_t n = metrics_get(&metrics_requests[r][s]);

			if (n > 0)
				fprintf(f, "payments_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
					name, s, (unsigned long long)n);
		}
	}
	fprintf(f, "# HELP payments_http_request_duration_seconds Time from request to response.\n"
		   "# TYPE payments_http_request_duration_seconds histogram\n");
	for (r = 0; r <= METRICS_MAX_ROUTES; r++) {
		const char *name = r < nroutes ? route_names[r] : r == METRICS_MAX_ROUTES ? "unmatched" : NULL;

		if (name == NULL || metrics_get(&metrics_hist_count[r]) == 0)
			continue;
		snprintf(labels, sizeof(labels), "route=\"%s\"", name);
		metrics_render_hist(f, "payments_http_request_duration_seconds", labels,
				    metrics_hist[r], &metrics_hist_count[r], &metrics_hist_sum_us[r]);
	}
	fprintf(f, "# HELP payments_idempotent_replays_total Retries answered from a stored response.\n"
		   "# TYPE payments_idempotent_replays_total counter\n"
		   "payments_idempotent_replays_total %llu\n"
		   "# HELP payments_idempotency_conflicts_total Idempotency-Key refusals by code (409; reused is 400 with Stripe-Version).\n"
		   "# TYPE payments_idempotency_conflicts_total counter\n"
		   "payments_idempotency_conflicts_total{code=\"idempotency_key_reused\"} %llu\n"
		   "payments_idempotency_conflicts_total{code=\"idempotency_key_in_use\"} %llu\n"
		   "# HELP payments_rate_limited_total Requests refused with 429.\n"
		   "# TYPE payments_rate_limited_total counter\n"
		   "payments_rate_limited_total %llu\n"
		   "# HELP payments_db_pool_connections_in_use Database connections lent out now.\n"
		   "# TYPE payments_db_pool_connections_in_use gauge\n"
		   "payments_db_pool_connections_in_use %d\n"
		   "# HELP payments_db_pool_size Database connections in the pool.\n"
		   "# TYPE payments_db_pool_size gauge\n"
		   "payments_db_pool_size %d\n"
		   "# HELP payments_db_pool_waits_total Acquisitions that had to wait for a free connection.\n"
		   "# TYPE payments_db_pool_waits_total counter\n"
		   "payments_db_pool_waits_total %llu\n",
		(unsigned long long)metrics_get(&metrics_replays),
		(unsigned long long)metrics_get(&metrics_reused),
		(unsigned long long)metrics_get(&metrics_in_use),
		(unsigned long long)metrics_get(&metrics_limited),
		g->pool_in_use, g->pool_size, g->pool_waits);
	return ferror(f) ? -1 : 0;
}

int metrics_render_relay(FILE *f, const struct metrics_relay_gauges *g)
{
	fprintf(f, "# HELP payments_relay_backlog_events Committed events not yet fanned out.\n"
		   "# TYPE payments_relay_backlog_events gauge\n"
		   "payments_relay_backlog_events %lld\n"
		   "# HELP payments_relay_oldest_unpublished_seconds Age of the oldest unpublished event.\n"
		   "# TYPE payments_relay_oldest_unpublished_seconds gauge\n"
		   "payments_relay_oldest_unpublished_seconds %.3f\n"
		   "# HELP payments_relay_pending_deliveries Deliveries waiting for a (re)try.\n"
		   "# TYPE payments_relay_pending_deliveries gauge\n"
		   "payments_relay_pending_deliveries %lld\n"
		   "# HELP payments_relay_dead_deliveries Deliveries that used every attempt.\n"
		   "# TYPE payments_relay_dead_deliveries gauge\n"
		   "payments_relay_dead_deliveries %lld\n"
		   "# HELP payments_relay_deliveries_total Delivery attempts by result.\n"
		   "# TYPE payments_relay_deliveries_total counter\n"
		   "payments_relay_deliveries_total{result=\"ok\"} %llu\n"
		   "payments_relay_deliveries_total{result=\"failed\"} %llu\n"
		   "payments_relay_deliveries_total{result=\"dead\"} %llu\n"
		   "# HELP payments_relay_delivery_lag_seconds From the event's commit to its delivery.\n"
		   "# TYPE payments_relay_delivery_lag_seconds histogram\n",
		g->unpublished, g->oldest_unpublished_s, g->pending_deliveries, g->dead_deliveries,
		(unsigned long long)metrics_get(&metrics_deliveries_ok),
		(unsigned long long)metrics_get(&metrics_deliveries_failed),
		(unsigned long long)metrics_get(&metrics_deliveries_dead));
	metrics_render_hist(f, "payments_relay_delivery_lag_seconds", "", metrics_lag_hist,
			    &metrics_lag_count, &metrics_lag_sum_us);
	return ferror(f) ? -1 : 0;
}

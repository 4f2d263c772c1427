/* processor_metrics.c - the processor worker's GET /metrics (PAYMENTS_PROCESSOR_METRICS_LISTEN). */
#include "processor_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "err.h"
#include "metrics_server.h"

/* Upper bounds (seconds) of the latency histogram's buckets. */
static const double processor_buckets[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define PROCESSOR_NBUCKETS (sizeof(processor_buckets) / sizeof(processor_buckets[0]))

static struct {
	pthread_mutex_t lock;
	unsigned long long buckets[PROCESSOR_NBUCKETS + 1];   /* the last is +Inf */
	unsigned long long calls;
	double sum;
	unsigned long long outcomes[3];                       /* by enum processor_outcome */
	unsigned long long lookups[3];                        /* by enum processor_lookup_result */
	unsigned long long flagged;
	struct db_processor_status status;
	struct metrics_server *server;
} processor_m = { .lock = PTHREAD_MUTEX_INITIALIZER };

int processor_metrics_start(const char *listen)
{
	if (listen == NULL || listen[0] == '\0')
		return PAY_OK;
	processor_m.server = metrics_server_start(listen, processor_metrics_render, NULL);
	return processor_m.server != NULL ? PAY_OK : PAY_EIO;
}

void processor_metrics_stop(void)
{
	metrics_server_stop(processor_m.server);
	processor_m.server = NULL;
}

void processor_metrics_call(const struct processor_result *r)
{
	size_t i;

	pthread_mutex_lock(&processor_m.lock);
	for (i = 0; i < PROCESSOR_NBUCKETS && r->latency_s > processor_buckets[i]; i++)
		;
	processor_m.buckets[i]++;
	processor_m.calls++;
	processor_m.sum += r->latency_s;
	processor_m.outcomes[r->outcome]++;
	pthread_mutex_unlock(&processor_m.lock);
}

void processor_metrics_lookup(enum processor_lookup_result found)
{
	pthread_mutex_lock(&processor_m.lock);
	processor_m.lookups[found]++;
	pthread_mutex_unlock(&processor_m.lock);
}

void processor_metrics_flagged(void)
{
	pthread_mutex_lock(&processor_m.lock);
	processor_m.flagged++;
	pthread_mutex_unlock(&processor_m.lock);
}

void processor_metrics_set_status(const struct db_processor_status *st)
{
	pthread_mutex_lock(&processor_m.lock);
	processor_m.status = *st;
	pthread_mutex_unlock(&processor_m.lock);
}

int processor_metrics_render(FILE *f, void *arg)
{
	static const char *const names[] = { "succeeded", "failed", "unknown" };
	static const char *const found[] = { "found", "not_found", "failed" };
	unsigned long long cum = 0;
	size_t i;
	int rc = 0;

	(void)arg;
	pthread_mutex_lock(&processor_m.lock);
	fprintf(f, "# HELP payments_processor_call_seconds Latency of calls to the processor.\n"
		   "# TYPE payments_processor_call_seconds histogram\n");
	for (i = 0; i < PROCESSOR_NBUCKETS; i++) {
		cum += processor_m.buckets[i];
		fprintf(f, "payments_processor_call_seconds_bucket{le=\"%g\"} %llu\n",
			processor_buckets[i], cum);
	}
	cum += processor_m.buckets[PROCESSOR_NBUCKETS];
	fprintf(f, "payments_processor_call_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	fprintf(f, "payments_processor_call_seconds_sum %.6f\n", processor_m.sum);
	fprintf(f, "payments_processor_call_seconds_count %llu\n", processor_m.calls);
	fprintf(f, "# HELP payments_processor_calls_total Processor calls by outcome (unknown: retried"
		   " with the same key).\n# TYPE payments_processor_calls_total counter\n");
	for (i = 0; i < 3; i++)
		fprintf(f, "payments_processor_calls_total{outcome=\"%s\"} %llu\n", names[i],
			processor_m.outcomes[i]);
	fprintf(f, "# HELP payments_processor_lookups_total Lookups by our reference before a retry,"
		   " by result (found: recorded without calling again).\n"
		   "# TYPE payments_processor_lookups_total counter\n");
	for (i = 0; i < 3; i++)
		fprintf(f, "payments_processor_lookups_total{result=\"%s\"} %llu\n", found[i],
			processor_m.lookups[i]);
	fprintf(f, "# HELP payments_processor_review_flagged_total Charges this worker flagged for"
		   " review.\n# TYPE payments_processor_review_flagged_total counter\n"
		   "payments_processor_review_flagged_total %llu\n", processor_m.flagged);
	fprintf(f, "# HELP payments_processor_pending Charges pending at the processor.\n"
		   "# TYPE payments_processor_pending gauge\npayments_processor_pending %lld\n",
		processor_m.status.pending);
	fprintf(f, "# HELP payments_processor_pending_oldest_seconds Age of the oldest pending charge.\n"
		   "# TYPE payments_processor_pending_oldest_seconds gauge\n"
		   "payments_processor_pending_oldest_seconds %.3f\n", processor_m.status.oldest_pending_s);
	fprintf(f, "# HELP payments_processor_review_required Pending charges flagged for review.\n"
		   "# TYPE payments_processor_review_required gauge\n"
		   "payments_processor_review_required %lld\n", processor_m.status.flagged);
	if (ferror(f))
		rc = -1;
	pthread_mutex_unlock(&processor_m.lock);
	return rc;
}

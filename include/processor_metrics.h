/* processor_metrics.h - the processor worker's GET /metrics (PAYMENTS_PROCESSOR_METRICS_LISTEN). */
#ifndef PAYMENTS_PROCESSOR_METRICS_H
#define PAYMENTS_PROCESSOR_METRICS_H

#include <stdio.h>

#include "db_processor.h"
#include "processor.h"

/* Serves GET /metrics on listen (NULL or "": none). Returns PAY_OK, or PAY_EIO after logging. */
int processor_metrics_start(const char *listen);
void processor_metrics_stop(void);

/* Counts one processor call: its latency and outcome. */
void processor_metrics_call(const struct processor_result *r);
/* Counts one lookup of a charge by our reference, by what it found. */
void processor_metrics_lookup(enum processor_lookup_result found);
/* Counts a charge flagged for review. */
void processor_metrics_flagged(void);
/* Publishes the latest pending gauges (read by the worker loop). */
void processor_metrics_set_status(const struct db_processor_status *st);

/* Writes the Prometheus text of the counters and gauges to f. Returns 0 or -1. */
int processor_metrics_render(FILE *f, void *arg);

#endif

/* relay_metrics.h - the relay's own GET /metrics endpoint (civetweb), on PAYMENTS_RELAY_METRICS_LISTEN. */
#ifndef PAYMENTS_RELAY_METRICS_H
#define PAYMENTS_RELAY_METRICS_H

#include "metrics.h"

struct relay_metrics;

/* Serves GET /metrics on listen. Returns NULL (after logging) when the port cannot be bound. */
struct relay_metrics *relay_metrics_start(const char *listen);
void relay_metrics_stop(struct relay_metrics *m);

/* Publishes the latest backlog gauges (read from the database by the relay loop). */
void relay_metrics_set_gauges(const struct metrics_relay_gauges *g);

#endif

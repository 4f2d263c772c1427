/* relay_nats.h - the relay's NATS JetStream publisher: a thread of its own beside the webhooks. */
#ifndef PAYMENTS_RELAY_NATS_H
#define PAYMENTS_RELAY_NATS_H

#include <stdbool.h>

struct cfg;
struct relay_nats;

/* True when PAYMENTS_NATS_URL is set. */
bool relay_nats_enabled(const struct cfg *cfg);

/* Refuses NATS settings that cannot work, before anything starts. Returns PAY_OK or PAY_ECONFIG. */
int relay_nats_check(const struct cfg *cfg);

/*
 * Starts the publisher thread: with its own database connection it claims
 * events (leased, in order per charge), publishes them to JetStream with
 * Nats-Msg-Id = the event id, and marks those acknowledged; failures are
 * retried with backoff and never touch the webhook path. Returns NULL when
 * the thread cannot start.
 */
struct relay_nats *relay_nats_start(const struct cfg *cfg);

/* Stops the thread after its current round and frees it (NULL is fine). */
void relay_nats_stop(struct relay_nats *rn);

#endif

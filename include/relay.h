/* relay.h - the outbox relay: publishes committed events as signed webhooks. */
#ifndef PAYMENTS_RELAY_H
#define PAYMENTS_RELAY_H

#include <signal.h>

struct cfg;

/*
 * Runs the relay loop until *stop becomes non-zero: fan out new events,
 * deliver due deliveries concurrently, record every attempt, purge old
 * events. Reconnects to the database by itself. Returns the exit code.
 */
int relay_run(const struct cfg *cfg, volatile sig_atomic_t *stop);

#endif

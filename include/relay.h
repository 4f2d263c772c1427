/* relay.h - the outbox relay: publishes committed events as signed webhooks. */
#ifndef PAYMENTS_RELAY_H
#define PAYMENTS_RELAY_H

#include <stdatomic.h>

struct cfg;

/*
 * Runs the relay loop until *stop becomes non-zero: fan out new events,
 * deliver due deliveries concurrently, record every attempt, purge old
 * events. Reconnects to the database by itself. Returns the exit code.
 * Every worker thread reads *stop; a signal handler may set it (a lock-free
 * atomic_int is safe there, unlike a plain int shared between threads).
 */
int relay_run(const struct cfg *cfg, atomic_int *stop);

#endif

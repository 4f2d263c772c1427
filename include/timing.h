/* timing.h - the monotonic clock in milliseconds, deadlines for timed waits, and sleeps a stop flag cuts short. */
#ifndef PAYMENTS_TIMING_H
#define PAYMENTS_TIMING_H

#include <stdatomic.h>
#include <time.h>

/* Longest single nap of timing_sleep: how late a stop may be noticed. */
#define TIMING_SLEEP_SLICE_MS 50

/* Milliseconds on CLOCK_MONOTONIC: for intervals and deadlines, never for dates. */
long long timing_now_ms(void);

/*
 * Sets *at to ms milliseconds from now on CLOCK_REALTIME, the clock that
 * pthread_cond_timedwait measures its absolute deadline against.
 */
void timing_deadline(struct timespec *at, long long ms);

/*
 * Sleeps ms milliseconds, or less when *stop becomes non-zero: it looks at
 * the flag every TIMING_SLEEP_SLICE_MS, because a stop signal interrupts only
 * the thread it is delivered to. stop may be NULL (the whole ms). A lock-free
 * atomic_int may be set from a signal handler.
 */
void timing_sleep(long long ms, const atomic_int *stop);

#endif

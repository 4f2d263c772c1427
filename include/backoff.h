/* backoff.h - webhook retry schedule: parsing, jittered delays and Retry-After (pure). */
#ifndef PAYMENTS_BACKOFF_H
#define PAYMENTS_BACKOFF_H

#include <stdint.h>

#define BACKOFF_MAX_STEPS 32
#define BACKOFF_DEFAULT "0,5s,5m,30m,2h,5h,10h,10h"
#define BACKOFF_JITTER_PCT 20   /* a delay d becomes a value in [d - 20%, d + 20%] */

struct backoff {
	long long delays_ms[BACKOFF_MAX_STEPS];   /* delay before attempt i+1 */
	int steps;
	int max_attempts;                          /* attempts before a delivery is dead */
	long long retry_after_max_ms;              /* cap on a receiver's Retry-After */
};

/*
 * Parses a comma-separated list of durations ("0,5s,5m,...") into b. The
 * first is the delay before the first attempt (normally 0). max_attempts 0
 * means one attempt per step. Returns PAY_OK or PAY_ECONFIG.
 */
int backoff_parse(struct backoff *b, const char *schedule, int max_attempts,
		  long long retry_after_max_ms);

/* True when a delivery that has made `attempts` attempts may not be tried again. */
int backoff_exhausted(const struct backoff *b, int attempts);

/*
 * The delay before the next attempt after `attempts` failed attempts
 * (attempts >= 1): the schedule's step (the last step repeats) with
 * +-BACKOFF_JITTER_PCT jitter drawn from rnd, and at least the receiver's
 * Retry-After (retry_after_ms, -1 when absent) capped at retry_after_max_ms.
 */
long long backoff_next_delay(const struct backoff *b, int attempts, long long retry_after_ms,
			     uint32_t rnd);

#endif

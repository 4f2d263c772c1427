/* backoff.c - webhook retry schedule: parsing, jittered delays and Retry-After (pure). */
#include "backoff.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "err.h"

int backoff_parse(struct backoff *b, const char *schedule, int max_attempts,
		  long long retry_after_max_ms)
{
	char buf[512], *tok, *save = NULL;
	int rc = PAY_OK;

	memset(b, 0, sizeof(*b));
	if (schedule == NULL || strlen(schedule) >= sizeof(buf))
		return PAY_ECONFIG;
	strcpy(buf, schedule);
	for (tok = strtok_r(buf, ",", &save); tok != NULL && rc == PAY_OK;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (b->steps == BACKOFF_MAX_STEPS)
			return PAY_ECONFIG;
		rc = duration_parse(tok, &b->delays_ms[b->steps++]);
	}
	if (rc != PAY_OK || b->steps == 0 || max_attempts < 0)
		return PAY_ECONFIG;
	b->max_attempts = max_attempts > 0 ? max_attempts : b->steps;
	b->retry_after_max_ms = retry_after_max_ms;
	return PAY_OK;
}

int backoff_exhausted(const struct backoff *b, int attempts)
{
	return attempts >= b->max_attempts;
}

long long backoff_next_delay(const struct backoff *b, int attempts, long long retry_after_ms,
			     uint32_t rnd)
{
	int step = attempts < b->steps ? attempts : b->steps - 1;
	long long d = b->delays_ms[step < 0 ? 0 : step];
	/* d * 20 / 100 without the multiplication overflowing for huge steps. */
	long long span = d / 100 * BACKOFF_JITTER_PCT + d % 100 * BACKOFF_JITTER_PCT / 100;

	/* Uniform in [d - span, d + span]: spreads retries of many failures apart. */
	if (span > 0) {
		/* Uniform offset in [0, 2 * span]; adding past LLONG_MAX saturates. */
		long long off = (long long)((uint64_t)rnd % (uint64_t)(2 * span + 1));

		if (off <= span)
			d -= span - off;
		else
			d = d > LLONG_MAX - (off - span) ? LLONG_MAX : d + (off - span);
	}
	if (retry_after_ms >= 0) {
		if (retry_after_ms > b->retry_after_max_ms)
			retry_after_ms = b->retry_after_max_ms;
		if (retry_after_ms > d)
			d = retry_after_ms;
	}
	return d;
}

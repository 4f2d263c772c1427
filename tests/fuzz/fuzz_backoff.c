/* fuzz_backoff.c - libFuzzer target for the webhook retry schedule (backoff_parse, backoff_next_delay). */
#include <limits.h>

#include "backoff.h"
#include "duration.h"
#include "err.h"
#include "fuzz_common.h"

struct fuzz_head {
	int32_t max_attempts;
	int64_t retry_after_max_ms;
	int64_t retry_after_ms;
	uint32_t rnd;
};

/* The steps the schedule names: non-empty comma-separated tokens, leading spaces dropped. */
static int fuzz_reference_steps(const char *schedule, long long *ms, int max)
{
	const char *p = schedule;
	char tok[512];
	int n = 0;

	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		const char *t = p;

		if (len > 0) {
			while (*t == ' ' && t < p + len)
				t++;
			if (n == max)
				return -1;
			memcpy(tok, t, (size_t)(p + len - t));
			tok[p + len - t] = '\0';
			if (duration_parse(tok, &ms[n++]) != PAY_OK)
				return -1;
		}
		p += len + (p[len] == ',');
	}
	return n;
}

/* The delay rules in wide arithmetic: jitter of +-20% around the step, at least the capped Retry-After. */
static void fuzz_check_delay(const struct backoff *b, int attempts, long long retry_after, uint32_t rnd)
{
	int step = attempts < b->steps ? attempts : b->steps - 1;
	__int128 d = b->delays_ms[step], span = d * BACKOFF_JITTER_PCT / 100, lo = d - span,
		 hi = d + span, cap;
	long long got = backoff_next_delay(b, attempts, retry_after, rnd);

	if (retry_after >= 0) {
		cap = retry_after > b->retry_after_max_ms ? b->retry_after_max_ms : retry_after;
		if (cap > lo)
			lo = cap;
		if (cap > hi)
			hi = cap;
	}
	FUZZ_CHECK((__int128)got >= lo && (__int128)got <= hi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_head h;
	struct backoff b;
	long long want[BACKOFF_MAX_STEPS];
	char *schedule;
	int rc, n, i;

	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	schedule = fuzz_cstr(data + sizeof(h), size - sizeof(h));
	rc = backoff_parse(&b, schedule, h.max_attempts, h.retry_after_max_ms);
	n = strlen(schedule) < 512 ? fuzz_reference_steps(schedule, want, BACKOFF_MAX_STEPS) : -1;
	FUZZ_CHECK(rc == PAY_OK || rc == PAY_ECONFIG);
	FUZZ_CHECK((rc == PAY_OK) == (n > 0 && h.max_attempts >= 0));
	if (rc != PAY_OK) {
		free(schedule);
		return 0;
	}
	FUZZ_CHECK(b.steps == n);
	for (i = 0; i < n; i++)
		FUZZ_CHECK(b.delays_ms[i] == want[i] && b.delays_ms[i] >= 0);
	FUZZ_CHECK(b.max_attempts == (h.max_attempts > 0 ? h.max_attempts : n));
	FUZZ_CHECK(b.retry_after_max_ms == h.retry_after_max_ms);
	for (i = 1; i <= n + 1; i++) {
		FUZZ_CHECK(backoff_exhausted(&b, i) == (i >= b.max_attempts));
		fuzz_check_delay(&b, i, -1, h.rnd);
		fuzz_check_delay(&b, i, h.retry_after_ms < 0 ? -1 : h.retry_after_ms, h.rnd ^ (uint32_t)i);
	}
	free(schedule);
	return 0;
}

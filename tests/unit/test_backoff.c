/* test_backoff.c - unit tests of the webhook retry schedule, jitter and Retry-After (backoff.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "backoff.h"
#include "err.h"

#define HOUR_MS (3600LL * 1000)
#define RANDOM_DRAWS 20000

static void test_backoff_parse_reads_default_schedule(void **state)
{
	static const long long want[] = {
		0, 5000, 5 * 60000, 30 * 60000, 2 * HOUR_MS, 5 * HOUR_MS, 10 * HOUR_MS, 10 * HOUR_MS,
	};
	struct backoff b;
	int i;

	(void)state;
	assert_int_equal(backoff_parse(&b, BACKOFF_DEFAULT, 0, HOUR_MS), PAY_OK);
	assert_int_equal(b.steps, 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(b.delays_ms[i], want[i]);
	/* max_attempts 0: one attempt per step. */
	assert_int_equal(b.max_attempts, 8);
	assert_int_equal(b.retry_after_max_ms, HOUR_MS);
}

static void test_backoff_parse_reads_millisecond_schedule_with_spaces(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0, 50ms,100ms,  200ms", 4, 1000), PAY_OK);
	assert_int_equal(b.steps, 4);
	assert_int_equal(b.delays_ms[0], 0);
	assert_int_equal(b.delays_ms[1], 50);
	assert_int_equal(b.delays_ms[2], 100);
	assert_int_equal(b.delays_ms[3], 200);
	assert_int_equal(b.max_attempts, 4);
}

static void test_backoff_parse_keeps_explicit_max_attempts(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,1s", 10, 0), PAY_OK);
	assert_int_equal(b.steps, 2);
	assert_int_equal(b.max_attempts, 10);
	assert_int_equal(backoff_parse(&b, "0,1s,2s,3s", 1, 0), PAY_OK);
	assert_int_equal(b.max_attempts, 1);
}

static void test_backoff_parse_accepts_32_steps_and_refuses_33(void **state)
{
	char buf[256] = "";
	struct backoff b;
	int i;

	(void)state;
	for (i = 0; i < BACKOFF_MAX_STEPS; i++)
		strcat(buf, i == 0 ? "1ms" : ",1ms");
	assert_int_equal(backoff_parse(&b, buf, 0, 0), PAY_OK);
	assert_int_equal(b.steps, BACKOFF_MAX_STEPS);
	strcat(buf, ",1ms");
	assert_int_equal(backoff_parse(&b, buf, 0, 0), PAY_ECONFIG);
}

static void test_backoff_parse_refuses_bad_schedules(void **state)
{
	static const char *const bad[] = {
		"", "5x", "abc", "-1s", "0,-5s", "1s,two", " ", "5 s", "0;5s", "1.5s", "5S",
	};
	char longest[600];
	struct backoff b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (backoff_parse(&b, bad[i], 0, 0) != PAY_ECONFIG)
			fail_msg("schedule '%s' was accepted", bad[i]);
	}
	assert_int_equal(backoff_parse(&b, NULL, 0, 0), PAY_ECONFIG);
	memset(longest, '1', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	assert_int_equal(backoff_parse(&b, longest, 0, 0), PAY_ECONFIG);
}

static void test_backoff_parse_refuses_negative_max_attempts(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,1s", -1, 0), PAY_ECONFIG);
}

static void test_backoff_exhausted_after_max_attempts(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,50ms,100ms", 3, 0), PAY_OK);
	assert_false(backoff_exhausted(&b, 0));
	assert_false(backoff_exhausted(&b, 1));
	assert_false(backoff_exhausted(&b, 2));
	assert_true(backoff_exhausted(&b, 3));
	assert_true(backoff_exhausted(&b, 4));
}

static void test_backoff_exhausted_after_every_step_by_default(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, BACKOFF_DEFAULT, 0, 0), PAY_OK);
	assert_false(backoff_exhausted(&b, 7));
	assert_true(backoff_exhausted(&b, 8));
}

static void test_backoff_next_delay_stays_within_20_percent(void **state)
{
	struct backoff b;
	long long d, lo = 1000000, hi = 0, sum = 0;
	int i, attempts;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,1000ms,10s", 0, HOUR_MS), PAY_OK);
	for (i = 0; i < RANDOM_DRAWS; i++) {
		d = backoff_next_delay(&b, 1, -1, randombytes_random());
		if (d < 800 || d > 1200)
			fail_msg("delay %lld is outside [800, 1200]", d);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += d;
	}
	/* The jitter really spreads retries: both ends of the range are reached
	 * and the mean stays close to the step. */
	assert_true(lo < 820);
	assert_true(hi > 1180);
	assert_true(sum / RANDOM_DRAWS > 980 && sum / RANDOM_DRAWS < 1020);
	for (attempts = 2; attempts < 5; attempts++) {
		for (i = 0; i < RANDOM_DRAWS / 10; i++) {
			d = backoff_next_delay(&b, attempts, -1, randombytes_random());
			if (d < 8000 || d > 12000)
				fail_msg("delay %lld after %d attempts is outside [8000, 12000]", d, attempts);
		}
	}
}

static void test_backoff_next_delay_reaches_both_bounds(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,5s", 0, 0), PAY_OK);
	/* span = 1000 ms: rnd modulo 2001 picks the offset from 4000 ms. */
	assert_int_equal(backoff_next_delay(&b, 1, -1, 0), 4000);
	assert_int_equal(backoff_next_delay(&b, 1, -1, 1000), 5000);
	assert_int_equal(backoff_next_delay(&b, 1, -1, 2000), 6000);
	assert_int_equal(backoff_next_delay(&b, 1, -1, 2001), 4000);
	assert_in_range(backoff_next_delay(&b, 1, -1, UINT32_MAX), 4000, 6000);
}

static void test_backoff_next_delay_jitters_long_steps_within_bounds(void **state)
{
	struct backoff b;
	long long d;
	int i;

	(void)state;
	assert_int_equal(backoff_parse(&b, BACKOFF_DEFAULT, 0, HOUR_MS), PAY_OK);
	for (i = 0; i < RANDOM_DRAWS; i++) {
		d = backoff_next_delay(&b, 7, -1, randombytes_random());
		if (d < 8 * HOUR_MS || d > 12 * HOUR_MS)
			fail_msg("delay %lld is outside [8h, 12h]", d);
	}
}

static void test_backoff_next_delay_zero_step_has_no_jitter(void **state)
{
	struct backoff b;
	int i;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,0,0", 0, 0), PAY_OK);
	for (i = 0; i < 100; i++)
		assert_int_equal(backoff_next_delay(&b, 1, -1, randombytes_random()), 0);
}

static void test_backoff_next_delay_repeats_last_step(void **state)
{
	struct backoff b;
	long long d;
	int attempts, i;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,50ms,100ms,200ms", 100, 0), PAY_OK);
	for (attempts = 3; attempts <= 100; attempts++) {
		for (i = 0; i < 50; i++) {
			d = backoff_next_delay(&b, attempts, -1, randombytes_random());
			if (d < 160 || d > 240)
				fail_msg("delay %lld after %d attempts is not the last step's", d, attempts);
		}
	}
	/* The middle of the jitter range is the step itself. */
	assert_int_equal(backoff_next_delay(&b, 1000, -1, 40), 200);
}

static void test_backoff_next_delay_follows_schedule_by_attempt(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,10s,20s,30s", 0, 0), PAY_OK);
	/* rnd == span selects the unjittered step, so each attempt's step shows. */
	assert_int_equal(backoff_next_delay(&b, 1, -1, 2000), 10000);
	assert_int_equal(backoff_next_delay(&b, 2, -1, 4000), 20000);
	assert_int_equal(backoff_next_delay(&b, 3, -1, 6000), 30000);
}

static void test_backoff_next_delay_honours_longer_retry_after(void **state)
{
	struct backoff b;
	int i;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,50ms,100ms", 0, HOUR_MS), PAY_OK);
	for (i = 0; i < 100; i++)
		assert_int_equal(backoff_next_delay(&b, 1, 30000, randombytes_random()), 30000);
}

static void test_backoff_next_delay_keeps_schedule_over_shorter_retry_after(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,10s", 0, HOUR_MS), PAY_OK);
	assert_int_equal(backoff_next_delay(&b, 1, 1000, 2000), 10000);
	assert_int_equal(backoff_next_delay(&b, 1, 0, 0), 8000);
}

static void test_backoff_next_delay_caps_retry_after(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,50ms", 0, 5000), PAY_OK);
	assert_int_equal(backoff_next_delay(&b, 1, 24 * HOUR_MS, 10), 5000);
	assert_int_equal(backoff_next_delay(&b, 1, 5001, 10), 5000);
	assert_int_equal(backoff_next_delay(&b, 1, 4999, 10), 4999);
	/* A cap of 0 ignores Retry-After altogether. */
	assert_int_equal(backoff_parse(&b, "0,50ms", 0, 0), PAY_OK);
	assert_int_equal(backoff_next_delay(&b, 1, HOUR_MS, 10), 50);
}

static void test_backoff_next_delay_ignores_absent_retry_after(void **state)
{
	struct backoff b;

	(void)state;
	assert_int_equal(backoff_parse(&b, "0,50ms", 0, HOUR_MS), PAY_OK);
	assert_int_equal(backoff_next_delay(&b, 1, -1, 10), 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_parse_reads_default_schedule),
		cmocka_unit_test(test_backoff_parse_reads_millisecond_schedule_with_spaces),
		cmocka_unit_test(test_backoff_parse_keeps_explicit_max_attempts),
		cmocka_unit_test(test_backoff_parse_accepts_32_steps_and_refuses_33),
		cmocka_unit_test(test_backoff_parse_refuses_bad_schedules),
		cmocka_unit_test(test_backoff_parse_refuses_negative_max_attempts),
		cmocka_unit_test(test_backoff_exhausted_after_max_attempts),
		cmocka_unit_test(test_backoff_exhausted_after_every_step_by_default),
		cmocka_unit_test(test_backoff_next_delay_stays_within_20_percent),
		cmocka_unit_test(test_backoff_next_delay_reaches_both_bounds),
		cmocka_unit_test(test_backoff_next_delay_jitters_long_steps_within_bounds),
		cmocka_unit_test(test_backoff_next_delay_zero_step_has_no_jitter),
		cmocka_unit_test(test_backoff_next_delay_repeats_last_step),
		cmocka_unit_test(test_backoff_next_delay_follows_schedule_by_attempt),
		cmocka_unit_test(test_backoff_next_delay_honours_longer_retry_after),
		cmocka_unit_test(test_backoff_next_delay_keeps_schedule_over_shorter_retry_after),
		cmocka_unit_test(test_backoff_next_delay_caps_retry_after),
		cmocka_unit_test(test_backoff_next_delay_ignores_absent_retry_after),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}

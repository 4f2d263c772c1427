/* test_backoff_regress.c - regression tests for a bug the fuzzers found in backoff.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "backoff.h"
#include "err.h"

/*
 * The longest step duration_parse accepts, 106751991167d (about
 * 9.2e18 ms), overflows d * BACKOFF_JITTER_PCT in backoff_next_delay. That
 * is undefined behaviour: UBSan stops the sanitized build there, while gcc
 * happens to fold d * 20 / 100 into d / 5, so the plain build gets the
 * right value by luck. Every step above LLONG_MAX / 20 ms (about 14.6
 * million years) overflows the same way.
 * The fuzzer's input is tests/fuzz/corpus/backoff/regress-longest-step.
 */
static void test_next_delay_jitters_the_longest_step_without_overflow(void **state)
{
	struct backoff b;
	long long d, span;

	(void)state;
	assert_int_equal(backoff_parse(&b, "106751991167d", 0, 1000), PAY_OK);
	d = b.delays_ms[0];
	assert_true(d == 106751991167LL * 86400000LL);
	span = d / 100 * BACKOFF_JITTER_PCT + d % 100 * BACKOFF_JITTER_PCT / 100;
	/* rnd 0 draws the low end of [d - 20%, d + 20%]. */
	assert_true(backoff_next_delay(&b, 1, -1, 0) == d - span);
}

static void test_next_delay_jitters_a_step_just_above_the_overflow_bound(void **state)
{
	struct backoff b;
	long long got;

	(void)state;
	/* 461168601842739 s = LLONG_MAX / 20 ms, rounded up to whole seconds. */
	assert_int_equal(backoff_parse(&b, "461168601842739s", 0, 1000), PAY_OK);
	got = backoff_next_delay(&b, 1, -1, 0);
	assert_true(got >= b.delays_ms[0] - b.delays_ms[0] / 5);
	assert_true(got < b.delays_ms[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_delay_jitters_the_longest_step_without_overflow),
		cmocka_unit_test(test_next_delay_jitters_a_step_just_above_the_overflow_bound),
	};

	return cmocka_run_group_tests_name("backoff_regress", tests, NULL, NULL);
}

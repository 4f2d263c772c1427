/* test_ratelimit.c - unit tests of the token buckets (ratelimit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

static void test_ratelimit_take_refuses_past_the_burst_until_refilled(void **state)
{
	struct ratelimit *rl = ratelimit_create(1, 3);
	struct ratelimit_state st;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_true(ratelimit_take(rl, "addr:a", 100.0, &st));
	assert_false(ratelimit_take(rl, "addr:a", 100.0, &st));
	assert_int_equal(st.retry_after_s, 1);
	assert_true(ratelimit_take(rl, "addr:b", 100.0, &st));
	assert_true(ratelimit_take(rl, "addr:a", 101.0, &st));
	ratelimit_destroy(rl);
}

static void test_ratelimit_peek_looks_without_taking(void **state)
{
	struct ratelimit *rl = ratelimit_create(1, 2);
	struct ratelimit_state st;
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		assert_true(ratelimit_peek(rl, "addr:a", 100.0, &st));
	assert_int_equal(st.remaining, 2);
	assert_true(ratelimit_take(rl, "addr:a", 100.0, &st));
	assert_true(ratelimit_take(rl, "addr:a", 100.0, &st));
	assert_false(ratelimit_peek(rl, "addr:a", 100.0, &st));
	assert_int_equal(st.remaining, 0);
	assert_int_equal(st.retry_after_s, 1);
	assert_true(ratelimit_peek(rl, "addr:a", 101.0, &st));
	ratelimit_destroy(rl);
}

static void test_ratelimit_zero_rate_allows_everything(void **state)
{
	struct ratelimit *rl = ratelimit_create(0, 1);
	struct ratelimit_state st;
	int i;

	(void)state;
	for (i = 0; i < 10; i++) {
		assert_true(ratelimit_take(rl, "addr:a", 100.0, &st));
		assert_true(ratelimit_peek(rl, "addr:a", 100.0, &st));
	}
	ratelimit_destroy(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ratelimit_take_refuses_past_the_burst_until_refilled),
		cmocka_unit_test(test_ratelimit_peek_looks_without_taking),
		cmocka_unit_test(test_ratelimit_zero_rate_allows_everything),
	};

	return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}

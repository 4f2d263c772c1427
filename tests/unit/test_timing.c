/* test_timing.c - unit tests of the millisecond clock, timed-wait deadlines and stoppable sleeps (timing.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "timing.h"

static void test_now_ms_never_goes_back(void **state)
{
	long long a, b;

	(void)state;
	a = timing_now_ms();
	b = timing_now_ms();
	assert_true(b >= a);
}

static void test_deadline_carries_nanoseconds_into_seconds(void **state)
{
	struct timespec now, at;
	long long diff_ms;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &now);
	timing_deadline(&at, 1999);
	assert_true(at.tv_nsec >= 0 && at.tv_nsec < 1000000000L);
	diff_ms = (long long)(at.tv_sec - now.tv_sec) * 1000 + (at.tv_nsec - now.tv_nsec) / 1000000;
	assert_true(diff_ms >= 1999 && diff_ms < 2099);
}

static void test_deadline_of_zero_is_now(void **state)
{
	struct timespec now, at;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &now);
	timing_deadline(&at, 0);
	assert_true(at.tv_sec - now.tv_sec <= 1);
	assert_true(at.tv_nsec >= 0 && at.tv_nsec < 1000000000L);
}

static void test_sleep_without_a_flag_sleeps_the_whole_time(void **state)
{
	long long start;

	(void)state;
	start = timing_now_ms();
	timing_sleep(120, NULL);
	assert_true(timing_now_ms() - start >= 120);
}

static void test_sleep_returns_at_once_when_the_flag_is_set(void **state)
{
	atomic_int stop = 1;
	long long start;

	(void)state;
	start = timing_now_ms();
	timing_sleep(5000, &stop);
	assert_true(timing_now_ms() - start < 1000);
}

static void test_sleep_of_a_negative_time_returns_at_once(void **state)
{
	atomic_int stop = 0;
	long long start;

	(void)state;
	start = timing_now_ms();
	timing_sleep(-5, &stop);
	assert_true(timing_now_ms() - start < 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_ms_never_goes_back),
		cmocka_unit_test(test_deadline_carries_nanoseconds_into_seconds),
		cmocka_unit_test(test_deadline_of_zero_is_now),
		cmocka_unit_test(test_sleep_without_a_flag_sleeps_the_whole_time),
		cmocka_unit_test(test_sleep_returns_at_once_when_the_flag_is_set),
		cmocka_unit_test(test_sleep_of_a_negative_time_returns_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_bounded.c - unit tests of running a function with a bounded wait (bounded.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bounded.h"

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) != 0)
		;
}

static void count_up(void *arg)
{
	(*(int *)arg)++;
}

static void slow_count_up(void *arg)
{
	sleep_ms(300);
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static void test_bounded_run_waits_for_a_quick_function(void **state)
{
	int n = 0;

	(void)state;
	assert_true(bounded_run(count_up, &n, 1000));
	assert_int_equal(n, 1);
}

/*
 * Fills a stack frame where bounded_run's frame was, waits until the late
 * thread has finished, and says whether the frame stayed as written. Not
 * inlined, so it is a frame of its own at the caller's depth.
 */
static __attribute__((noinline)) bool stack_stays_intact(const int *finished)
{
	volatile unsigned char frame[16384];
	size_t i;
	int waited = 0;

	for (i = 0; i < sizeof(frame); i++)
		frame[i] = 0xA5;
	while (__atomic_load_n(finished, __ATOMIC_SEQ_CST) == 0 && waited < 5000) {
		sleep_ms(10);
		waited += 10;
	}
	sleep_ms(50);   /* past the function: the thread's last steps */
	for (i = 0; i < sizeof(frame); i++) {
		if (frame[i] != 0xA5)
			return false;
	}
	return true;
}

/* The drain of 'payments serve' used to keep this state on the waiter's stack (a use after return). */
static void test_bounded_run_timed_out_thread_touches_no_memory_of_the_caller(void **state)
{
	int finished = 0;

	(void)state;
	assert_false(bounded_run(slow_count_up, &finished, 50));
	assert_int_equal(__atomic_load_n(&finished, __ATOMIC_SEQ_CST), 0);
	assert_true(stack_stays_intact(&finished));
	assert_int_equal(finished, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounded_run_waits_for_a_quick_function),
		cmocka_unit_test(test_bounded_run_timed_out_thread_touches_no_memory_of_the_caller),
	};

	return cmocka_run_group_tests_name("bounded", tests, NULL, NULL);
}

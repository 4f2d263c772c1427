/* test_http_deadline.c - unit tests of the request deadline's watchdog (http_deadline.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_deadline.h"

/*
 * The watchdog shuts a socket down for reading when its deadline passes, so
 * a blocked read on the other end of a socketpair returns 0 then. These
 * tests wait for that with generous bounds (seconds for deadlines of
 * tenths): they fail when a deadline fires far too late or too early, not on
 * a slow machine.
 */

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) != 0)
		;
}

/* Milliseconds until fd reads end-of-file (the watchdog fired), or -1 after limit_ms. */
static long long eof_after_ms(int fd, long long limit_ms)
{
	long long start = http_deadline_now_ms();
	struct timeval tv = { 0, 20 * 1000 };
	char c;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (http_deadline_now_ms() - start < limit_ms) {
		if (recv(fd, &c, 1, 0) == 0)
			return http_deadline_now_ms() - start;
	}
	return -1;
}

static void test_an_earlier_deadline_armed_after_a_later_one_fires_on_time(void **state)
{
	struct http_deadline *d = http_deadline_create(4);
	int late[2], early[2];
	int s_late, s_early;
	long long took;

	(void)state;
	assert_non_null(d);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, late), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, early), 0);
	/* The watchdog goes to sleep until the later deadline, a minute away ... */
	s_late = http_deadline_arm(d, late[0], http_deadline_now_ms() + 60000);
	assert_true(s_late >= 0);
	sleep_ms(200);
	/* ... and must be woken for one that comes first. */
	s_early = http_deadline_arm(d, early[0], http_deadline_now_ms() + 200);
	assert_true(s_early >= 0);
	took = eof_after_ms(early[0], 5000);
	assert_true(took >= 0);
	assert_true(http_deadline_disarm(d, s_early));
	assert_false(http_deadline_disarm(d, s_late));
	http_deadline_destroy(d);
	close(late[0]);
	close(late[1]);
	close(early[0]);
	close(early[1]);
}

static void test_a_later_deadline_armed_after_an_earlier_one_fires_after_it(void **state)
{
	struct http_deadline *d = http_deadline_create(4);
	int first[2], second[2];
	int s_first, s_second;
	long long armed, took;

	(void)state;
	assert_non_null(d);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, first), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, second), 0);
	armed = http_deadline_now_ms();
	s_first = http_deadline_arm(d, first[0], armed + 200);
	/* Armed without waking the watchdog: it finds this one when its wait for the first ends. */
	s_second = http_deadline_arm(d, second[0], armed + 600);
	assert_true(s_first >= 0 && s_second >= 0);
	assert_true(eof_after_ms(first[0], 5000) >= 0);
	took = eof_after_ms(second[0], 5000);
	assert_true(took >= 0);
	assert_true(http_deadline_now_ms() - armed >= 600);
	assert_true(http_deadline_disarm(d, s_first));
	assert_true(http_deadline_disarm(d, s_second));
	http_deadline_destroy(d);
	close(first[0]);
	close(first[1]);
	close(second[0]);
	close(second[1]);
}

static void test_a_disarmed_read_is_left_alone(void **state)
{
	struct http_deadline *d = http_deadline_create(2);
	int sv[2];
	int slot;

	(void)state;
	assert_non_null(d);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	slot = http_deadline_arm(d, sv[0], http_deadline_now_ms() + 100);
	assert_false(http_deadline_disarm(d, slot));
	assert_int_equal(eof_after_ms(sv[0], 400), -1);
	http_deadline_destroy(d);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_earlier_deadline_armed_after_a_later_one_fires_on_time),
		cmocka_unit_test(test_a_later_deadline_armed_after_an_earlier_one_fires_after_it),
		cmocka_unit_test(test_a_disarmed_read_is_left_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

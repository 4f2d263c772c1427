/* test_connlimit.c - unit tests of the per-address connection cap (connlimit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connlimit.h"

static void test_connlimit_refuses_past_the_cap_per_address(void **state)
{
	struct connlimit *cl = connlimit_create(3);
	int i;

	(void)state;
	assert_non_null(cl);
	for (i = 0; i < 3; i++)
		assert_true(connlimit_enter(cl, "203.0.113.5"));
	assert_false(connlimit_enter(cl, "203.0.113.5"));
	assert_false(connlimit_enter(cl, "203.0.113.5"));
	assert_int_equal(connlimit_count(cl, "203.0.113.5"), 3);
	/* Another address has a cap of its own. */
	assert_true(connlimit_enter(cl, "198.51.100.7"));
	/* A closed connection makes room again. */
	connlimit_leave(cl, "203.0.113.5");
	assert_true(connlimit_enter(cl, "203.0.113.5"));
	for (i = 0; i < 3; i++)
		connlimit_leave(cl, "203.0.113.5");
	assert_int_equal(connlimit_count(cl, "203.0.113.5"), 0);
	connlimit_leave(cl, "203.0.113.5");   /* one too many: harmless */
	assert_int_equal(connlimit_count(cl, "203.0.113.5"), 0);
	connlimit_destroy(cl);
}

static void test_connlimit_zero_counts_nothing(void **state)
{
	struct connlimit *cl = connlimit_create(0);
	int i;

	(void)state;
	for (i = 0; i < 1000; i++)
		assert_true(connlimit_enter(cl, "127.0.0.1"));
	assert_int_equal(connlimit_count(cl, "127.0.0.1"), 0);
	connlimit_leave(cl, "127.0.0.1");
	connlimit_destroy(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connlimit_refuses_past_the_cap_per_address),
		cmocka_unit_test(test_connlimit_zero_counts_nothing),
	};

	return cmocka_run_group_tests_name("connlimit", tests, NULL, NULL);
}

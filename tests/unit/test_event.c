/* test_event.c - unit tests of the event types the service emits (event.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"

static void test_event_types_lists_exactly_the_eight_types(void **state)
{
	static const char *const want[] = {
		"charge.succeeded", "charge.failed", "charge.refunded", "refund.created",
		"charge.captured", "charge.expired", "charge.pending", "charge.review_required",
		"charge.updated", "refund.updated",
	};
	size_t i, n;

	(void)state;
	for (n = 0; event_types[n] != NULL; n++)
		;
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < n; i++)
		assert_string_equal(event_types[i], want[i]);
}

static void test_event_types_are_distinct_and_match_outbox_check(void **state)
{
	size_t i, j;
	const char *dot;

	(void)state;
	/* outbox_events.type must match ^[a-z_]+\.[a-z_.]+$: an object, a dot, an action. */
	for (i = 0; event_types[i] != NULL; i++) {
		dot = strchr(event_types[i], '.');
		assert_non_null(dot);
		assert_true(dot > event_types[i]);
		assert_true(strspn(event_types[i], "abcdefghijklmnopqrstuvwxyz_") ==
			    (size_t)(dot - event_types[i]));
		assert_true(dot[1] != '\0');
		assert_true(strspn(dot + 1, "abcdefghijklmnopqrstuvwxyz_.") == strlen(dot + 1));
		for (j = i + 1; event_types[j] != NULL; j++)
			assert_string_not_equal(event_types[i], event_types[j]);
	}
}

static void test_event_type_known_accepts_every_listed_type(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; event_types[i] != NULL; i++) {
		assert_true(event_type_known(event_types[i], false));
		assert_true(event_type_known(event_types[i], true));
	}
}

static void test_event_type_known_accepts_wildcard_only_when_allowed(void **state)
{
	(void)state;
	assert_true(event_type_known("*", true));
	assert_false(event_type_known("*", false));
	assert_false(event_type_known("**", true));
	assert_false(event_type_known("charge.*", true));
	assert_false(event_type_known(" *", true));
}

static void test_event_type_known_refuses_unknown_types(void **state)
{
	static const char *const bad[] = {
		"", "charge", "charge.", "charge.created", "charge.succeeded ", " charge.succeeded",
		"CHARGE.SUCCEEDED", "Charge.succeeded", "charge.succeededx", "charge.succeede",
		"refund.deleted", "payment_intent.succeeded", "charge_succeeded",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (event_type_known(bad[i], true))
			fail_msg("event type '%s' was accepted", bad[i]);
	}
}

static void test_event_type_known_refuses_null(void **state)
{
	(void)state;
	assert_false(event_type_known(NULL, false));
	assert_false(event_type_known(NULL, true));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_types_lists_exactly_the_eight_types),
		cmocka_unit_test(test_event_types_are_distinct_and_match_outbox_check),
		cmocka_unit_test(test_event_type_known_accepts_every_listed_type),
		cmocka_unit_test(test_event_type_known_accepts_wildcard_only_when_allowed),
		cmocka_unit_test(test_event_type_known_refuses_unknown_types),
		cmocka_unit_test(test_event_type_known_refuses_null),
	};

	return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}

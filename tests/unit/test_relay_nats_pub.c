/* test_relay_nats_pub.c - unit tests of relay_nats_pub.c's pure parts: names, subjects, the republish bound, retries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "relay_nats_pub.h"

static void test_relay_nats_pub_stream_accepts_plain_names(void **state)
{
	(void)state;
	assert_true(relay_nats_pub_valid_stream("PAYMENTS"));
	assert_true(relay_nats_pub_valid_stream("payments-events_2"));
	assert_true(relay_nats_pub_valid_stream("X"));
}

static void test_relay_nats_pub_stream_refuses_empty_long_and_special_names(void **state)
{
	char long_name[RELAY_NATS_PUB_STREAM_MAX + 2];

	(void)state;
	assert_false(relay_nats_pub_valid_stream(NULL));
	assert_false(relay_nats_pub_valid_stream(""));
	assert_false(relay_nats_pub_valid_stream("pay.ments"));
	assert_false(relay_nats_pub_valid_stream("pay*"));
	assert_false(relay_nats_pub_valid_stream("pay>"));
	assert_false(relay_nats_pub_valid_stream("a/b"));
	assert_false(relay_nats_pub_valid_stream("a\\b"));
	assert_false(relay_nats_pub_valid_stream("a b"));
	assert_false(relay_nats_pub_valid_stream("a\tb"));
	assert_false(relay_nats_pub_valid_stream("caf\xc3\xa9"));
	memset(long_name, 'S', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(relay_nats_pub_valid_stream(long_name));
	long_name[RELAY_NATS_PUB_STREAM_MAX] = '\0';
	assert_true(relay_nats_pub_valid_stream(long_name));
}

static void test_relay_nats_pub_prefix_accepts_dotted_tokens(void **state)
{
	(void)state;
	assert_true(relay_nats_pub_valid_prefix("payments.events"));
	assert_true(relay_nats_pub_valid_prefix("payments"));
	assert_true(relay_nats_pub_valid_prefix("acme-prod.pay_v1.events"));
}

static void test_relay_nats_pub_prefix_refuses_empty_tokens_and_wildcards(void **state)
{
	char long_prefix[RELAY_NATS_PUB_PREFIX_MAX + 2];

	(void)state;
	assert_false(relay_nats_pub_valid_prefix(NULL));
	assert_false(relay_nats_pub_valid_prefix(""));
	assert_false(relay_nats_pub_valid_prefix("."));
	assert_false(relay_nats_pub_valid_prefix(".payments"));
	assert_false(relay_nats_pub_valid_prefix("payments."));
	assert_false(relay_nats_pub_valid_prefix("payments..events"));
	assert_false(relay_nats_pub_valid_prefix("payments.*"));
	assert_false(relay_nats_pub_valid_prefix("payments.>"));
	assert_false(relay_nats_pub_valid_prefix("pay ments"));
	memset(long_prefix, 'p', sizeof(long_prefix) - 1);
	long_prefix[sizeof(long_prefix) - 1] = '\0';
	assert_false(relay_nats_pub_valid_prefix(long_prefix));
}

static void test_relay_nats_pub_subject_joins_prefix_and_type(void **state)
{
	char buf[RELAY_NATS_PUB_SUBJECT_MAX];

	(void)state;
	assert_int_equal(relay_nats_pub_subject("payments.events", "charge.succeeded", buf, sizeof(buf)), PAY_OK);
	assert_string_equal(buf, "payments.events.charge.succeeded");
	assert_int_equal(relay_nats_pub_subject("p", "refund.created", buf, sizeof(buf)), PAY_OK);
	assert_string_equal(buf, "p.refund.created");
}

static void test_relay_nats_pub_subject_refuses_bad_types_and_small_buffers(void **state)
{
	char buf[RELAY_NATS_PUB_SUBJECT_MAX], small[16];

	(void)state;
	assert_int_equal(relay_nats_pub_subject("payments.events", "", buf, sizeof(buf)), PAY_EPARAM_INVALID);
	assert_int_equal(relay_nats_pub_subject("payments.events", "charge..x", buf, sizeof(buf)),
			 PAY_EPARAM_INVALID);
	assert_int_equal(relay_nats_pub_subject("payments.events", "charge.*", buf, sizeof(buf)),
			 PAY_EPARAM_INVALID);
	assert_int_equal(relay_nats_pub_subject("payments.events", NULL, buf, sizeof(buf)), PAY_EPARAM_INVALID);
	assert_int_equal(relay_nats_pub_subject("bad..prefix", "charge.succeeded", buf, sizeof(buf)),
			 PAY_EPARAM_INVALID);
	/* "payments.events.charge.succeeded" does not fit in 16 bytes. */
	assert_int_equal(relay_nats_pub_subject("payments.events", "charge.succeeded", small, sizeof(small)),
			 PAY_EPARAM_INVALID);
	assert_int_equal(relay_nats_pub_subject("p", "charge.failed", small, sizeof(small)), PAY_OK);
	assert_string_equal(small, "p.charge.failed");
}

static void test_relay_nats_pub_republish_bound_is_lease_plus_retry_cap(void **state)
{
	(void)state;
	assert_int_equal(relay_nats_pub_republish_bound_ms(60000), 60000 + RELAY_NATS_PUB_RETRY_MAX_MS);
	assert_int_equal(relay_nats_pub_republish_bound_ms(3000), RELAY_NATS_PUB_ACK_WAIT_MS + RELAY_NATS_PUB_RETRY_MAX_MS);
	/* The default window (2h) covers the default lease (60s) many times over. */
	assert_true(relay_nats_pub_republish_bound_ms(60000) < 2 * 3600 * 1000LL);
}

static void test_relay_nats_pub_retry_delay_doubles_up_to_the_cap(void **state)
{
	(void)state;
	/* rnd % 1001 == 0: no jitter. */
	assert_int_equal(relay_nats_pub_retry_delay_ms(1, 0), RELAY_NATS_PUB_RETRY_MIN_MS);
	assert_int_equal(relay_nats_pub_retry_delay_ms(2, 0), 2 * RELAY_NATS_PUB_RETRY_MIN_MS);
	assert_int_equal(relay_nats_pub_retry_delay_ms(3, 0), 4 * RELAY_NATS_PUB_RETRY_MIN_MS);
	assert_int_equal(relay_nats_pub_retry_delay_ms(7, 0), RELAY_NATS_PUB_RETRY_MAX_MS);
	assert_int_equal(relay_nats_pub_retry_delay_ms(1000, 0), RELAY_NATS_PUB_RETRY_MAX_MS);
}

static void test_relay_nats_pub_retry_delay_jitters_down_by_at_most_20_percent(void **state)
{
	uint32_t rnd;
	long long d;

	(void)state;
	assert_int_equal(relay_nats_pub_retry_delay_ms(1000, 1000), RELAY_NATS_PUB_RETRY_MAX_MS * 4 / 5);
	for (rnd = 0; rnd < 5000; rnd += 7) {
		d = relay_nats_pub_retry_delay_ms(1000, rnd);
		assert_true(d <= RELAY_NATS_PUB_RETRY_MAX_MS);
		assert_true(d >= RELAY_NATS_PUB_RETRY_MAX_MS * 4 / 5);
		d = relay_nats_pub_retry_delay_ms(1, rnd);
		assert_true(d <= RELAY_NATS_PUB_RETRY_MIN_MS);
		assert_true(d >= RELAY_NATS_PUB_RETRY_MIN_MS * 4 / 5);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_nats_pub_stream_accepts_plain_names),
		cmocka_unit_test(test_relay_nats_pub_stream_refuses_empty_long_and_special_names),
		cmocka_unit_test(test_relay_nats_pub_prefix_accepts_dotted_tokens),
		cmocka_unit_test(test_relay_nats_pub_prefix_refuses_empty_tokens_and_wildcards),
		cmocka_unit_test(test_relay_nats_pub_subject_joins_prefix_and_type),
		cmocka_unit_test(test_relay_nats_pub_subject_refuses_bad_types_and_small_buffers),
		cmocka_unit_test(test_relay_nats_pub_republish_bound_is_lease_plus_retry_cap),
		cmocka_unit_test(test_relay_nats_pub_retry_delay_doubles_up_to_the_cap),
		cmocka_unit_test(test_relay_nats_pub_retry_delay_jitters_down_by_at_most_20_percent),
	};

	return cmocka_run_group_tests_name("relay_nats_pub", tests, NULL, NULL);
}

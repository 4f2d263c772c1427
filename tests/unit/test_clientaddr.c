/* test_clientaddr.c - unit tests of the client address behind trusted proxies (clientaddr.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clientaddr.h"

static void assert_client(const char *peer, const char *xff, const char *trusted, const char *want)
{
	char out[CLIENTADDR_MAX];

	clientaddr_find(peer, xff, trusted, out);
	if (strcmp(out, want) != 0)
		fail_msg("peer %s, X-Forwarded-For '%s', trusted '%s': got %s, not %s", peer,
			 xff ? xff : "(none)", trusted ? trusted : "(none)", out, want);
}

static void test_clientaddr_ignores_forwarded_for_from_an_untrusted_peer(void **state)
{
	(void)state;
	assert_client("198.51.100.9", "203.0.113.5", NULL, "198.51.100.9");
	assert_client("198.51.100.9", "203.0.113.5", "", "198.51.100.9");
	assert_client("198.51.100.9", "203.0.113.5", "10.0.0.1", "198.51.100.9");
	assert_client("198.51.100.9", NULL, "198.51.100.9", "198.51.100.9");
}

static void test_clientaddr_believes_a_trusted_proxy(void **state)
{
	(void)state;
	assert_client("10.0.0.1", "203.0.113.5", "10.0.0.1", "203.0.113.5");
	assert_client("10.0.0.1", " 203.0.113.5 ", "10.0.0.2, 10.0.0.1", "203.0.113.5");
	assert_client("::1", "2001:db8::7", "0:0::1", "2001:db8::7");
	assert_client("10.0.0.1", "2001:DB8:0::7", "10.0.0.1", "2001:db8::7");
}

static void test_clientaddr_takes_the_rightmost_untrusted_hop(void **state)
{
	(void)state;
	/* The client's own header comes first: it cannot pick the address that is limited. */
	assert_client("10.0.0.1", "1.2.3.4, 203.0.113.5", "10.0.0.1", "203.0.113.5");
	/* Two proxies of ours: the hop before them. */
	assert_client("10.0.0.1", "1.2.3.4, 203.0.113.5, 10.0.0.2", "10.0.0.1,10.0.0.2", "203.0.113.5");
	/* Every hop trusted: the leftmost. */
	assert_client("10.0.0.1", "10.0.0.2", "10.0.0.1,10.0.0.2", "10.0.0.2");
}

static void test_clientaddr_stops_at_what_is_no_address(void **state)
{
	(void)state;
	assert_client("10.0.0.1", "unknown", "10.0.0.1", "10.0.0.1");
	assert_client("10.0.0.1", "", "10.0.0.1", "10.0.0.1");
	assert_client("10.0.0.1", "203.0.113.5, garbage", "10.0.0.1", "10.0.0.1");
	assert_client("10.0.0.1", "garbage, 203.0.113.5", "10.0.0.1", "203.0.113.5");
	assert_client("10.0.0.1", "203.0.113.5:4711", "10.0.0.1", "10.0.0.1");
	assert_client("10.0.0.1", ",,,", "10.0.0.1", "10.0.0.1");
}

static void test_clientaddr_trusted_compares_addresses(void **state)
{
	(void)state;
	assert_true(clientaddr_trusted("127.0.0.1", "127.0.0.1"));
	assert_true(clientaddr_trusted(" 10.1.1.1 , ::1", "0::1"));
	assert_false(clientaddr_trusted("127.0.0.1", "127.0.0.2"));
	assert_false(clientaddr_trusted("127.0.0.1/8", "127.0.0.1"));
	assert_false(clientaddr_trusted("localhost", "127.0.0.1"));
	assert_false(clientaddr_trusted("127.0.0.1", "not an address"));
	assert_false(clientaddr_trusted(NULL, "127.0.0.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clientaddr_ignores_forwarded_for_from_an_untrusted_peer),
		cmocka_unit_test(test_clientaddr_believes_a_trusted_proxy),
		cmocka_unit_test(test_clientaddr_takes_the_rightmost_untrusted_hop),
		cmocka_unit_test(test_clientaddr_stops_at_what_is_no_address),
		cmocka_unit_test(test_clientaddr_trusted_compares_addresses),
	};

	return cmocka_run_group_tests_name("clientaddr", tests, NULL, NULL);
}

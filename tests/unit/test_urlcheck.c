/* test_urlcheck.c - unit tests of webhook URL rules and the private-address guard (urlcheck.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "urlcheck.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Parses url into a host buffer big enough for any URL; returns the result code. */
static int parse(const char *url, char *host)
{
	return urlcheck_parse(url, host, URLCHECK_MAX + 1);
}

static void assert_host(const char *url, const char *want)
{
	char host[URLCHECK_MAX + 1];

	if (parse(url, host) != PAY_OK)
		fail_msg("url '%s' was refused", url);
	if (strcmp(host, want) != 0)
		fail_msg("url '%s' gave host '%s', not '%s'", url, host, want);
}

static void assert_all_private(const char *const *ips, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!urlcheck_ip_private(ips[i]))
			fail_msg("%s was taken for a public address", ips[i]);
	}
}

static void assert_all_public(const char *const *ips, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (urlcheck_ip_private(ips[i]))
			fail_msg("%s was taken for a private address", ips[i]);
	}
}

static void test_urlcheck_parse_accepts_http_and_https(void **state)
{
	(void)state;
	assert_host("https://shop.example/hooks", "shop.example");
	assert_host("http://shop.example/hooks", "shop.example");
	assert_host("https://shop.example", "shop.example");
	assert_host("https://Shop.Example/Hooks", "Shop.Example");
	assert_host("https://shop.example:8443/hooks?x=1&y=2#frag", "shop.example");
	assert_host("http://127.0.0.1:9000/hook", "127.0.0.1");
	assert_host("https://user:pass@shop.example/hooks", "shop.example");
}

static void test_urlcheck_parse_refuses_other_schemes(void **state)
{
	static const char *const bad[] = {
		"ftp://shop.example/hooks", "file:///etc/passwd", "gopher://shop.example/",
		"ws://shop.example/hooks", "wss://shop.example/hooks", "javascript:alert(1)",
		"HTTPS://shop.example/hooks", "http://0%7f.1/",
		"dict://127.0.0.1:11211/", "ldap://shop.example/", "httpx://shop.example/",
		"mailto:ops@shop.example",
	};
	char host[URLCHECK_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < NELEMS(bad); i++) {
		if (parse(bad[i], host) != PAY_EPARAM_INVALID)
			fail_msg("url '%s' was accepted", bad[i]);
	}
}

static void test_urlcheck_parse_requires_absolute_url_with_host(void **state)
{
	static const char *const bad[] = {
		"", "shop.example/hooks", "//shop.example/hooks", "/hooks", "http://", "https://",
		"https://:443/hooks", "http:shop.example", "not a url",
		"http://shop example/hooks",
	};
	char host[URLCHECK_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < NELEMS(bad); i++) {
		if (parse(bad[i], host) != PAY_EPARAM_INVALID)
			fail_msg("url '%s' was accepted", bad[i]);
	}
	assert_int_equal(parse(NULL, host), PAY_EPARAM_INVALID);
}

static void test_urlcheck_parse_strips_ipv6_brackets(void **state)
{
	(void)state;
	assert_host("http://[::1]:8080/hook", "::1");
	assert_host("https://[2001:db8::1]/hook", "2001:db8::1");
	assert_host("https://[::ffff:10.0.0.1]/hook", "::ffff:10.0.0.1");
}

static void test_urlcheck_parse_refuses_malformed_ipv6_literal(void **state)
{
	char host[URLCHECK_MAX + 1];

	(void)state;
	assert_int_equal(parse("http://[::1/hook", host), PAY_EPARAM_INVALID);
	assert_int_equal(parse("http://[]/hook", host), PAY_EPARAM_INVALID);
	assert_int_equal(parse("http://[zz::1]/hook", host), PAY_EPARAM_INVALID);
}

static void test_urlcheck_parse_limits_length(void **state)
{
	static char url[URLCHECK_MAX + 2];
	char host[URLCHECK_MAX + 1];
	size_t head;

	(void)state;
	strcpy(url, "https://shop.example/");
	head = strlen(url);
	memset(url + head, 'a', URLCHECK_MAX - head);
	url[URLCHECK_MAX] = '\0';
	assert_int_equal(parse(url, host), PAY_OK);
	url[URLCHECK_MAX] = 'a';
	url[URLCHECK_MAX + 1] = '\0';
	assert_int_equal(parse(url, host), PAY_EPARAM_INVALID);
}

static void test_urlcheck_parse_refuses_host_longer_than_buffer(void **state)
{
	char host[12];

	(void)state;
	assert_int_equal(urlcheck_parse("https://abcdefghijk/", host, sizeof(host)), PAY_OK);
	assert_string_equal(host, "abcdefghijk");
	assert_int_equal(urlcheck_parse("https://abcdefghijkl/", host, sizeof(host)),
			 PAY_EPARAM_INVALID);
	/* A bracketed literal is measured with its brackets, which are then stripped. */
	assert_int_equal(urlcheck_parse("http://[1:2:3::5]/", host, sizeof(host)), PAY_OK);
	assert_string_equal(host, "1:2:3::5");
	assert_int_equal(urlcheck_parse("http://[1:2:3:4::5]/", host, sizeof(host)),
			 PAY_EPARAM_INVALID);
}

static void test_urlcheck_ip_private_refuses_private_ipv4_ranges(void **state)
{
	static const char *const ips[] = {
		"0.0.0.0", "0.1.2.3", "0.255.255.255",                    /* 0.0.0.0/8 this network */
		"10.0.0.0", "10.1.2.3", "10.255.255.255",                 /* 10/8 */
		"127.0.0.1", "127.0.0.0", "127.1.2.3", "127.255.255.255", /* loopback */
		"100.64.0.0", "100.64.0.1", "100.100.100.100", "100.127.255.255", /* CGNAT 100.64/10 */
		"169.254.0.0", "169.254.169.254", "169.254.255.255",      /* link-local */
		"172.16.0.0", "172.16.0.1", "172.20.10.1", "172.31.255.255", /* 172.16/12 */
		"192.168.0.0", "192.168.1.1", "192.168.255.255",          /* 192.168/16 */
		"192.0.0.0", "192.0.0.8", "192.0.0.255",                  /* IETF protocol assignments */
		"198.18.0.0", "198.18.0.1", "198.19.255.255",             /* benchmarking 198.18/15 */
		"224.0.0.0", "224.0.0.1", "239.255.255.250", "239.255.255.255", /* multicast */
		"240.0.0.0", "250.1.2.3", "255.255.255.254", "255.255.255.255", /* reserved, broadcast */
	};

	(void)state;
	assert_all_private(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_accepts_public_ipv4(void **state)
{
	static const char *const ips[] = {
		"1.1.1.1", "8.8.8.8", "93.184.216.34", "1.0.0.0", "9.255.255.255", "11.0.0.0",
		"126.255.255.255", "128.0.0.0",
		"100.63.255.255", "100.128.0.0",    /* just outside 100.64.0.0/10 */
		"169.253.255.255", "169.255.0.0",   /* just outside 169.254.0.0/16 */
		"172.15.255.255", "172.32.0.0",     /* just outside 172.16.0.0/12 */
		"192.167.255.255", "192.169.0.0",   /* just outside 192.168.0.0/16 */
		"192.0.1.0", "191.255.255.255",     /* just outside 192.0.0.0/24 */
		"198.17.255.255", "198.20.0.0",     /* just outside 198.18.0.0/15 */
		"223.255.255.255",                  /* just below multicast */
	};

	(void)state;
	assert_all_public(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_refuses_private_ipv6_ranges(void **state)
{
	static const char *const ips[] = {
		"::", "::1", "0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0000",
		"fc00::", "fc00::1", "fd12:3456:789a::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"fe80::", "fe80::1", "fe80::1ff:fe23:4567:890a", "febf:ffff::1", /* fe80::/10 */
		"ff00::", "ff02::1", "ff05::1:3", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"FE80::1", "FD00::1",
	};

	(void)state;
	assert_all_private(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_accepts_public_ipv6(void **state)
{
	static const char *const ips[] = {
		"2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e",
		"2620:fe::fe", "2001:67c:2e8:22::c100:68b",
		"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",   /* just below fc00::/7 */
		"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",   /* just below fe80::/10 */
		"::808:808",                                 /* IPv4-compatible 8.8.8.8 */
		"64:ff9b::808:808",                          /* NAT64 of 8.8.8.8 */
		"2002:808:808::1",                           /* 6to4 of 8.8.8.8 */
	};

	(void)state;
	assert_all_public(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_refuses_ipv6_forms_of_private_ipv4(void **state)
{
	static const char *const ips[] = {
		"::2",                   /* IPv4-compatible 0.0.0.2 */
		"::a00:1",               /* IPv4-compatible 10.0.0.1 */
		"64:ff9b::7f00:1",       /* NAT64 of 127.0.0.1 */
		"64:ff9b::a9fe:a9fe",    /* NAT64 of 169.254.169.254, the cloud metadata address */
		"2002:c0a8:101::1",      /* 6to4 of 192.168.1.1 */
		"fec0::1",               /* site-local */
	};

	(void)state;
	assert_all_private(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_refuses_ipv4_mapped_private(void **state)
{
	static const char *const ips[] = {
		"::ffff:127.0.0.1", "::ffff:7f00:1", "::FFFF:127.0.0.1", "::ffff:10.0.0.1",
		"::ffff:169.254.169.254", "::ffff:172.16.0.1", "::ffff:192.168.1.1",
		"::ffff:100.64.0.1", "::ffff:0.0.0.0", "::ffff:224.0.0.1", "::ffff:255.255.255.255",
		"0:0:0:0:0:ffff:c0a8:101",
	};

	(void)state;
	assert_all_private(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_accepts_ipv4_mapped_public(void **state)
{
	static const char *const ips[] = {
		"::ffff:8.8.8.8", "::ffff:93.184.216.34", "::ffff:808:808",
	};

	(void)state;
	assert_all_public(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_treats_unparseable_as_private(void **state)
{
	static const char *const ips[] = {
		"", "localhost", "not-an-ip", "256.1.1.1", "1.2.3", "1.2.3.4.5", "::g", ":::1",
		"[::1]", "127.0.0.1 ", " 8.8.8.8", "fe80::1%eth0",
	};

	(void)state;
	assert_all_private(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_refuses_translated_ipv6_forms(void **state)
{
	static const char *const ips[] = {
		"::ffff:0:7f00:1",        /* SIIT ::ffff:0:127.0.0.1 */
		"::ffff:0:127.0.0.1",
		"::ffff:0:a00:1",         /* SIIT 10.0.0.1 */
		"::ffff:0:a9fe:a9fe",     /* SIIT 169.254.169.254 */
		"64:ff9b:1::7f00:1",      /* local-use NAT64 (RFC 8215) */
		"64:ff9b:1::808:808",     /* local-use NAT64: whatever it embeds, the gateway is ours */
		"64:ff9b:1:ffff::1",
		"2001::1",                /* Teredo */
		"2001:0:4136:e378:8000:63bf:3fff:fdd2",
		"2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
	};

	(void)state;
	assert_all_private(ips, NELEMS(ips));
}

static void test_urlcheck_ip_private_accepts_public_neighbours_of_translated_forms(void **state)
{
	static const char *const ips[] = {
		"::ffff:0:808:808",       /* SIIT 8.8.8.8 */
		"64:ff9b:2::1",           /* just past 64:ff9b:1::/48 */
		"2001:1::1",              /* just past 2001::/32 */
		"2001:4860:4860::8888",
	};

	(void)state;
	assert_all_public(ips, NELEMS(ips));
}

static void test_urlcheck_host_allowed_accepts_public_literals(void **state)
{
	(void)state;
	assert_int_equal(urlcheck_host_allowed("8.8.8.8"), PAY_OK);
	assert_int_equal(urlcheck_host_allowed("93.184.216.34"), PAY_OK);
	assert_int_equal(urlcheck_host_allowed("2001:4860:4860::8888"), PAY_OK);
}

static void test_urlcheck_host_allowed_refuses_private_literals(void **state)
{
	static const char *const hosts[] = {
		"127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.0.10", "100.64.1.1", "::1",
		"fe80::1", "fd00::1", "::ffff:127.0.0.1", "0.0.0.0", "::ffff:0:7f00:1", "2001::1",
		/* Other spellings of loopback that the resolver accepts. */
		"127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1",
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEMS(hosts); i++) {
		if (urlcheck_host_allowed(hosts[i]) != PAY_EPARAM_INVALID)
			fail_msg("host '%s' was taken for a public one", hosts[i]);
	}
}

static void test_urlcheck_host_allowed_refuses_names_that_are_always_local(void **state)
{
	static const char *const hosts[] = {
		"", "localhost", "LOCALHOST", "localhost.", "api.localhost", "a.b.localhost.",
		"no-such-host.invalid", "x.INVALID", "metadata", "intranet.", "db",
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEMS(hosts); i++) {
		if (urlcheck_host_allowed(hosts[i]) != PAY_EPARAM_INVALID)
			fail_msg("host '%s' was accepted", hosts[i]);
	}
}

/*
 * A name is never looked up when an endpoint is created: the relay judges
 * the addresses it connects to. Names under .example and .test resolve
 * nowhere, so a look-up would refuse them.
 */
static void test_urlcheck_host_allowed_accepts_names_without_resolving(void **state)
{
	static const char *const hosts[] = {
		"hooks.example.com", "no-such-host.example", "a.b.c.test", "shop.example.", "xn--bcher-kva.example",
		"localhost.example.com", "invalid.example.com",
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEMS(hosts); i++) {
		if (urlcheck_host_allowed(hosts[i]) != PAY_OK)
			fail_msg("host '%s' was refused", hosts[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urlcheck_parse_accepts_http_and_https),
		cmocka_unit_test(test_urlcheck_parse_refuses_other_schemes),
		cmocka_unit_test(test_urlcheck_parse_requires_absolute_url_with_host),
		cmocka_unit_test(test_urlcheck_parse_strips_ipv6_brackets),
		cmocka_unit_test(test_urlcheck_parse_refuses_malformed_ipv6_literal),
		cmocka_unit_test(test_urlcheck_parse_limits_length),
		cmocka_unit_test(test_urlcheck_parse_refuses_host_longer_than_buffer),
		cmocka_unit_test(test_urlcheck_ip_private_refuses_private_ipv4_ranges),
		cmocka_unit_test(test_urlcheck_ip_private_accepts_public_ipv4),
		cmocka_unit_test(test_urlcheck_ip_private_refuses_private_ipv6_ranges),
		cmocka_unit_test(test_urlcheck_ip_private_accepts_public_ipv6),
		cmocka_unit_test(test_urlcheck_ip_private_refuses_ipv6_forms_of_private_ipv4),
		cmocka_unit_test(test_urlcheck_ip_private_refuses_ipv4_mapped_private),
		cmocka_unit_test(test_urlcheck_ip_private_accepts_ipv4_mapped_public),
		cmocka_unit_test(test_urlcheck_ip_private_treats_unparseable_as_private),
		cmocka_unit_test(test_urlcheck_ip_private_refuses_translated_ipv6_forms),
		cmocka_unit_test(test_urlcheck_ip_private_accepts_public_neighbours_of_translated_forms),
		cmocka_unit_test(test_urlcheck_host_allowed_accepts_public_literals),
		cmocka_unit_test(test_urlcheck_host_allowed_refuses_private_literals),
		cmocka_unit_test(test_urlcheck_host_allowed_refuses_names_that_are_always_local),
		cmocka_unit_test(test_urlcheck_host_allowed_accepts_names_without_resolving),
	};

	return cmocka_run_group_tests_name("urlcheck", tests, NULL, NULL);
}

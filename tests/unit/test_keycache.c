/* test_keycache.c - unit tests of the bounded cache of verified API keys (keycache.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keycache.h"

static unsigned char hash_a[APIKEY_HASH_BYTES] = { 1, 2, 3 };
static unsigned char hash_b[APIKEY_HASH_BYTES] = { 9, 9, 9 };

static void test_keycache_finds_a_key_put_within_the_ttl(void **state)
{
	struct keycache *kc = keycache_create(1000);
	char user[APIKEY_USER_MAX + 1] = "";

	(void)state;
	assert_non_null(kc);
	assert_false(keycache_find(kc, "abcdefghijkl", hash_a, 100, user));
	keycache_put(kc, "abcdefghijkl", hash_a, "alice", 100);
	assert_true(keycache_find(kc, "abcdefghijkl", hash_a, 100, user));
	assert_string_equal(user, "alice");
	assert_true(keycache_find(kc, "abcdefghijkl", hash_a, 1099, user));
	keycache_destroy(kc);
}

static void test_keycache_forgets_a_key_once_the_ttl_has_passed(void **state)
{
	struct keycache *kc = keycache_create(1000);
	char user[APIKEY_USER_MAX + 1] = "";

	(void)state;
	keycache_put(kc, "abcdefghijkl", hash_a, "alice", 100);
	assert_false(keycache_find(kc, "abcdefghijkl", hash_a, 1100, user));
	assert_false(keycache_find(kc, "abcdefghijkl", hash_a, 50000, user));
	/* A clock that seems to go back never makes an entry younger. */
	assert_false(keycache_find(kc, "abcdefghijkl", hash_a, 99, user));
	keycache_destroy(kc);
}

static void test_keycache_refuses_another_secret_for_the_same_id(void **state)
{
	struct keycache *kc = keycache_create(1000);
	char user[APIKEY_USER_MAX + 1] = "";

	(void)state;
	keycache_put(kc, "abcdefghijkl", hash_a, "alice", 100);
	assert_false(keycache_find(kc, "abcdefghijkl", hash_b, 200, user));
	assert_false(keycache_find(kc, "abcdefghijkm", hash_a, 200, user));
	keycache_destroy(kc);
}

static void test_keycache_keeps_the_newer_of_two_reads(void **state)
{
	struct keycache *kc = keycache_create(1000);
	char user[APIKEY_USER_MAX + 1] = "";

	(void)state;
	keycache_put(kc, "abcdefghijkl", hash_a, "alice", 500);
	keycache_put(kc, "abcdefghijkl", hash_a, "alice", 100);   /* a slower, older read */
	assert_true(keycache_find(kc, "abcdefghijkl", hash_a, 1400, user));
	keycache_destroy(kc);
}

static void test_keycache_with_ttl_zero_never_finds(void **state)
{
	struct keycache *kc = keycache_create(0);
	char user[APIKEY_USER_MAX + 1] = "";

	(void)state;
	keycache_put(kc, "abcdefghijkl", hash_a, "alice", 100);
	assert_false(keycache_find(kc, "abcdefghijkl", hash_a, 100, user));
	keycache_destroy(kc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keycache_finds_a_key_put_within_the_ttl),
		cmocka_unit_test(test_keycache_forgets_a_key_once_the_ttl_has_passed),
		cmocka_unit_test(test_keycache_refuses_another_secret_for_the_same_id),
		cmocka_unit_test(test_keycache_keeps_the_newer_of_two_reads),
		cmocka_unit_test(test_keycache_with_ttl_zero_never_finds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

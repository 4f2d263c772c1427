/* test_replaycache.c - unit tests of the bounded cache of completed idempotent responses (replaycache.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "replaycache.h"

static const unsigned char fp_a[32] = { 1, 2, 3 };
static const unsigned char fp_b[32] = { 9, 9, 9 };
static const char body[] = "{\"id\":\"ch_1\",\"object\":\"charge\"}";

static void put(struct replaycache *rc, const char *user, const char *key, const unsigned char *fp,
		long long read_ms, long long expires_in_ms)
{
	replaycache_put(rc, user, key, fp, 201, body, sizeof(body) - 1, read_ms, expires_in_ms);
}

static void test_replaycache_answers_a_retry_within_the_ttl_byte_for_byte(void **state)
{
	struct replaycache *rc = replaycache_create(1000);
	struct replaycache_hit hit;

	(void)state;
	assert_non_null(rc);
	assert_false(replaycache_find(rc, "alice", "k1", fp_a, 100, &hit));
	put(rc, "alice", "k1", fp_a, 100, 86400000);
	assert_true(replaycache_find(rc, "alice", "k1", fp_a, 1099, &hit));
	assert_int_equal(hit.status, 201);
	assert_int_equal(hit.body_len, sizeof(body) - 1);
	assert_memory_equal(hit.body, body, sizeof(body));
	free(hit.body);
	replaycache_destroy(rc);
}

static void test_replaycache_forgets_once_the_ttl_has_passed(void **state)
{
	struct replaycache *rc = replaycache_create(1000);
	struct replaycache_hit hit;

	(void)state;
	put(rc, "alice", "k1", fp_a, 100, 86400000);
	assert_false(replaycache_find(rc, "alice", "k1", fp_a, 1100, &hit));
	/* A clock that seems to go back never makes an entry younger. */
	assert_false(replaycache_find(rc, "alice", "k1", fp_a, 99, &hit));
	assert_null(hit.body);
	replaycache_destroy(rc);
}

static void test_replaycache_never_answers_at_or_past_the_keys_expiry(void **state)
{
	struct replaycache *rc = replaycache_create(60000);
	struct replaycache_hit hit;

	(void)state;
	put(rc, "alice", "k1", fp_a, 100, 300);   /* the key had 300 ms left */
	assert_true(replaycache_find(rc, "alice", "k1", fp_a, 399, &hit));
	free(hit.body);
	assert_false(replaycache_find(rc, "alice", "k1", fp_a, 400, &hit));
	/* A key already expired (or of unknown life) is not kept at all. */
	put(rc, "alice", "k2", fp_a, 100, 0);
	put(rc, "alice", "k3", fp_a, 100, -1);
	assert_false(replaycache_find(rc, "alice", "k2", fp_a, 100, &hit));
	assert_false(replaycache_find(rc, "alice", "k3", fp_a, 100, &hit));
	replaycache_destroy(rc);
}

static void test_replaycache_answers_only_the_same_user_key_and_fingerprint(void **state)
{
	struct replaycache *rc = replaycache_create(1000);
	struct replaycache_hit hit;

	(void)state;
	put(rc, "alice", "k1", fp_a, 100, 86400000);
	/* Another request under the key is the database's to refuse (409), not ours to replay. */
	assert_false(replaycache_find(rc, "alice", "k1", fp_b, 200, &hit));
	assert_false(replaycache_find(rc, "bob", "k1", fp_a, 200, &hit));
	assert_false(replaycache_find(rc, "alice", "k2", fp_a, 200, &hit));
	/* The NUL between user and key: "ab"+"c" is not "a"+"bc". */
	put(rc, "ab", "c", fp_a, 100, 86400000);
	assert_false(replaycache_find(rc, "a", "bc", fp_a, 200, &hit));
	replaycache_destroy(rc);
}

static void test_replaycache_keeps_the_newer_of_two_reads(void **state)
{
	struct replaycache *rc = replaycache_create(1000);
	struct replaycache_hit hit;

	(void)state;
	put(rc, "alice", "k1", fp_a, 500, 86400000);
	put(rc, "alice", "k1", fp_a, 100, 86400000);   /* a slower, older read */
	assert_true(replaycache_find(rc, "alice", "k1", fp_a, 1400, &hit));
	free(hit.body);
	/* A newer read (the key expired and was used again for another request) replaces it. */
	put(rc, "alice", "k1", fp_b, 2000, 86400000);
	assert_false(replaycache_find(rc, "alice", "k1", fp_a, 2100, &hit));
	assert_true(replaycache_find(rc, "alice", "k1", fp_b, 2100, &hit));
	free(hit.body);
	replaycache_destroy(rc);
}

static void test_replaycache_bounds_what_it_keeps(void **state)
{
	struct replaycache *rc = replaycache_create(1000);
	struct replaycache_hit hit;
	char *big = malloc(REPLAYCACHE_BODY_MAX + 2);
	char key[16];

	(void)state;
	assert_non_null(big);
	memset(big, 'x', REPLAYCACHE_BODY_MAX + 1);
	big[REPLAYCACHE_BODY_MAX + 1] = '\0';
	replaycache_put(rc, "alice", "big", fp_a, 201, big, REPLAYCACHE_BODY_MAX + 1, 100, 86400000);
	assert_false(replaycache_find(rc, "alice", "big", fp_a, 200, &hit));
	replaycache_put(rc, "alice", "max", fp_a, 201, big, REPLAYCACHE_BODY_MAX, 100, 86400000);
	assert_true(replaycache_find(rc, "alice", "max", fp_a, 200, &hit));
	assert_int_equal(hit.body_len, REPLAYCACHE_BODY_MAX);
	free(hit.body);
	/* Twice the slots: every slot holds one entry at most, older ones are overwritten. */
	for (int i = 0; i < 2 * REPLAYCACHE_SLOTS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		put(rc, "alice", key, fp_a, 100 + i, 86400000);
	}
	free(big);
	replaycache_destroy(rc);
}

static void test_replaycache_with_ttl_zero_never_finds(void **state)
{
	struct replaycache *rc = replaycache_create(0);
	struct replaycache_hit hit;

	(void)state;
	put(rc, "alice", "k1", fp_a, 100, 86400000);
	assert_false(replaycache_find(rc, "alice", "k1", fp_a, 100, &hit));
	replaycache_destroy(rc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replaycache_answers_a_retry_within_the_ttl_byte_for_byte),
		cmocka_unit_test(test_replaycache_forgets_once_the_ttl_has_passed),
		cmocka_unit_test(test_replaycache_never_answers_at_or_past_the_keys_expiry),
		cmocka_unit_test(test_replaycache_answers_only_the_same_user_key_and_fingerprint),
		cmocka_unit_test(test_replaycache_keeps_the_newer_of_two_reads),
		cmocka_unit_test(test_replaycache_bounds_what_it_keeps),
		cmocka_unit_test(test_replaycache_with_ttl_zero_never_finds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_apikey.c - unit tests of secret API keys: format, generation and hashing (apikey.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "apikey.h"
#include "err.h"

#define GOOD_KEY "sk_test_ABCDEF123456abcdefghijklmnopqrstuvwxyz012345"

static void test_key_length_is_52(void **state)
{
	(void)state;
	assert_int_equal(APIKEY_LEN, 52);
	assert_int_equal(strlen(GOOD_KEY), APIKEY_LEN);
}

static void test_generate_then_parse_roundtrips(void **state)
{
	char key[APIKEY_LEN + 1], id[APIKEY_ID_CHARS + 1];

	(void)state;
	apikey_generate(key);
	assert_int_equal(strlen(key), APIKEY_LEN);
	assert_int_equal(strncmp(key, APIKEY_PREFIX, strlen(APIKEY_PREFIX)), 0);
	assert_int_equal(apikey_parse(key, id), PAY_OK);
	assert_int_equal(strlen(id), APIKEY_ID_CHARS);
	assert_memory_equal(id, key + strlen(APIKEY_PREFIX), APIKEY_ID_CHARS);
}

static void test_generate_gives_different_keys(void **state)
{
	char a[APIKEY_LEN + 1], b[APIKEY_LEN + 1];

	(void)state;
	apikey_generate(a);
	apikey_generate(b);
	assert_string_not_equal(a, b);
}

static void test_parse_extracts_public_id(void **state)
{
	char id[APIKEY_ID_CHARS + 1];

	(void)state;
	assert_int_equal(apikey_parse(GOOD_KEY, id), PAY_OK);
	assert_string_equal(id, "ABCDEF123456");
}

static void test_parse_rejects_wrong_prefix(void **state)
{
	char id[APIKEY_ID_CHARS + 1];

	(void)state;
	assert_int_equal(apikey_parse("sk_live_ABCDEF123456abcdefghijklmnopqrstuvwxyz012345", id),
			 PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse("pk_test_ABCDEF123456abcdefghijklmnopqrstuvwxyz012345", id),
			 PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse("SK_TEST_ABCDEF123456abcdefghijklmnopqrstuvwxyz012345", id),
			 PAY_EAUTH_INVALID);
}

static void test_parse_rejects_wrong_length(void **state)
{
	char id[APIKEY_ID_CHARS + 1];

	(void)state;
	assert_int_equal(apikey_parse("sk_test_ABCDEF123456abcdefghijklmnopqrstuvwxyz01234", id),
			 PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse("sk_test_ABCDEF123456abcdefghijklmnopqrstuvwxyz0123456", id),
			 PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse("sk_test_", id), PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse("", id), PAY_EAUTH_INVALID);
}

static void test_parse_rejects_non_base62_characters(void **state)
{
	char id[APIKEY_ID_CHARS + 1];

	(void)state;
	assert_int_equal(apikey_parse("sk_test_ABCDEF123456abcdefghijklmnopqrstuvwxyz01234-", id),
			 PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse("sk_test_ABCDEF_23456abcdefghijklmnopqrstuvwxyz012345", id),
			 PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse("sk_test_ABCDEF123456abcdefghijklmnopqrstuvwxyz01234 ", id),
			 PAY_EAUTH_INVALID);
}

static void test_parse_rejects_null(void **state)
{
	char id[APIKEY_ID_CHARS + 1];

	(void)state;
	assert_int_equal(apikey_parse(NULL, id), PAY_EAUTH_INVALID);
}

static void test_from_bearer_returns_the_token(void **state)
{
	const char *h = "Bearer sk_test_x";

	(void)state;
	assert_ptr_equal(apikey_from_bearer(h), h + 7);
	assert_string_equal(apikey_from_bearer("Bearer x"), "x");
}

static void test_from_bearer_ignores_scheme_case(void **state)
{
	(void)state;
	assert_string_equal(apikey_from_bearer("bearer x"), "x");
	assert_string_equal(apikey_from_bearer("BEARER x"), "x");
}

static void test_from_bearer_skips_extra_spaces(void **state)
{
	(void)state;
	assert_string_equal(apikey_from_bearer("Bearer    x"), "x");
}

static void test_from_bearer_rejects_basic(void **state)
{
	(void)state;
	assert_null(apikey_from_bearer("Basic x"));
	assert_null(apikey_from_bearer("Basic c2tfdGVzdF86"));
}

static void test_from_bearer_rejects_missing_scheme(void **state)
{
	(void)state;
	assert_null(apikey_from_bearer("sk_test_x"));
	assert_null(apikey_from_bearer("Bearer"));
	assert_null(apikey_from_bearer("Bearerx"));
	assert_null(apikey_from_bearer(""));
}

static void test_from_bearer_rejects_null(void **state)
{
	(void)state;
	assert_null(apikey_from_bearer(NULL));
}

static void test_hash_is_equal_for_the_same_key(void **state)
{
	unsigned char a[APIKEY_HASH_BYTES], b[APIKEY_HASH_BYTES];

	(void)state;
	apikey_hash(GOOD_KEY, a);
	apikey_hash(GOOD_KEY, b);
	assert_true(apikey_hash_equal(a, b));
}

static void test_hash_differs_for_different_keys(void **state)
{
	unsigned char a[APIKEY_HASH_BYTES], b[APIKEY_HASH_BYTES];

	(void)state;
	apikey_hash(GOOD_KEY, a);
	apikey_hash("sk_test_ABCDEF123456abcdefghijklmnopqrstuvwxyz012346", b);
	assert_false(apikey_hash_equal(a, b));
}

static void test_hash_is_blake2b_256_of_the_whole_key(void **state)
{
	unsigned char got[APIKEY_HASH_BYTES], want[APIKEY_HASH_BYTES];

	(void)state;
	apikey_hash(GOOD_KEY, got);
	crypto_generichash(want, sizeof(want), (const unsigned char *)GOOD_KEY, strlen(GOOD_KEY),
			   NULL, 0);
	assert_memory_equal(got, want, sizeof(want));
}

static void test_hash_equal_detects_one_bit_difference(void **state)
{
	unsigned char a[APIKEY_HASH_BYTES], b[APIKEY_HASH_BYTES];

	(void)state;
	apikey_hash(GOOD_KEY, a);
	memcpy(b, a, sizeof(b));
	b[APIKEY_HASH_BYTES - 1] ^= 1;
	assert_false(apikey_hash_equal(a, b));
}

static void test_user_valid_accepts_allowed_names(void **state)
{
	(void)state;
	assert_true(apikey_user_valid("alice"));
	assert_true(apikey_user_valid("a"));
	assert_true(apikey_user_valid("Team-1_ops.eu"));
}

static void test_user_valid_accepts_64_and_rejects_65_characters(void **state)
{
	char name[APIKEY_USER_MAX + 2];

	(void)state;
	memset(name, 'u', 64);
	name[64] = '\0';
	assert_true(apikey_user_valid(name));
	name[64] = 'u';
	name[65] = '\0';
	assert_false(apikey_user_valid(name));
}

static void test_user_valid_rejects_empty_and_null(void **state)
{
	(void)state;
	assert_false(apikey_user_valid(""));
	assert_false(apikey_user_valid(NULL));
}

static void test_user_valid_rejects_other_characters(void **state)
{
	(void)state;
	assert_false(apikey_user_valid("al ice"));
	assert_false(apikey_user_valid("alice@example"));
	assert_false(apikey_user_valid("a/b"));
	assert_false(apikey_user_valid("j\xC3\xB6rg"));
}

static void test_parse_public_accepts_the_public_name_or_the_id(void **state)
{
	char key[APIKEY_LEN + 1], id[APIKEY_ID_CHARS + 1], public_name[APIKEY_PUBLIC_LEN], got[APIKEY_ID_CHARS + 1];

	(void)state;
	apikey_generate(key);
	assert_int_equal(apikey_parse(key, id), PAY_OK);
	snprintf(public_name, sizeof(public_name), "sk_test_%s", id);
	assert_int_equal(apikey_parse_public(public_name, got), PAY_OK);
	assert_string_equal(got, id);
	memset(got, 0, sizeof(got));
	assert_int_equal(apikey_parse_public(id, got), PAY_OK);
	assert_string_equal(got, id);
}

static void test_parse_public_refuses_the_whole_secret(void **state)
{
	char key[APIKEY_LEN + 1], got[APIKEY_ID_CHARS + 1];

	(void)state;
	apikey_generate(key);
	assert_int_equal(apikey_parse_public(key, got), PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse_public(key + 8, got), PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse_public("sk_test_", got), PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse_public("sk_test_ABCDEFGHIJK", got), PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse_public("ABCDEFGHIJK_", got), PAY_EAUTH_INVALID);
	assert_int_equal(apikey_parse_public(NULL, got), PAY_EAUTH_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_length_is_52),
		cmocka_unit_test(test_generate_then_parse_roundtrips),
		cmocka_unit_test(test_generate_gives_different_keys),
		cmocka_unit_test(test_parse_extracts_public_id),
		cmocka_unit_test(test_parse_rejects_wrong_prefix),
		cmocka_unit_test(test_parse_rejects_wrong_length),
		cmocka_unit_test(test_parse_rejects_non_base62_characters),
		cmocka_unit_test(test_parse_rejects_null),
		cmocka_unit_test(test_from_bearer_returns_the_token),
		cmocka_unit_test(test_from_bearer_ignores_scheme_case),
		cmocka_unit_test(test_from_bearer_skips_extra_spaces),
		cmocka_unit_test(test_from_bearer_rejects_basic),
		cmocka_unit_test(test_from_bearer_rejects_missing_scheme),
		cmocka_unit_test(test_from_bearer_rejects_null),
		cmocka_unit_test(test_hash_is_equal_for_the_same_key),
		cmocka_unit_test(test_hash_differs_for_different_keys),
		cmocka_unit_test(test_hash_is_blake2b_256_of_the_whole_key),
		cmocka_unit_test(test_hash_equal_detects_one_bit_difference),
		cmocka_unit_test(test_user_valid_accepts_allowed_names),
		cmocka_unit_test(test_user_valid_accepts_64_and_rejects_65_characters),
		cmocka_unit_test(test_user_valid_rejects_empty_and_null),
		cmocka_unit_test(test_user_valid_rejects_other_characters),
		cmocka_unit_test(test_parse_public_accepts_the_public_name_or_the_id),
		cmocka_unit_test(test_parse_public_refuses_the_whole_secret),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("apikey", tests, NULL, NULL);
}

/* test_ids.c - unit tests of random object ids and request ids (ids.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ids.h"

static bool is_base62(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void test_generate_writes_prefix_and_24_base62_characters(void **state)
{
	char id[IDS_MAX];
	size_t i;

	(void)state;
	ids_generate(id, sizeof(id), "ch_");
	assert_int_equal(strlen(id), 3 + IDS_RANDOM_CHARS);
	assert_int_equal(strncmp(id, "ch_", 3), 0);
	for (i = 3; id[i] != '\0'; i++)
		assert_true(is_base62(id[i]));
	assert_true(ids_valid(id, "ch_"));
}

static void test_generate_gives_different_ids(void **state)
{
	char a[IDS_MAX], b[IDS_MAX];

	(void)state;
	ids_generate(a, sizeof(a), "evt_");
	ids_generate(b, sizeof(b), "evt_");
	assert_string_not_equal(a, b);
}

static void test_generate_fits_exact_buffer(void **state)
{
	char id[3 + IDS_RANDOM_CHARS + 1];

	(void)state;
	ids_generate(id, sizeof(id), "ch_");
	assert_true(ids_valid(id, "ch_"));
}

static void test_generate_leaves_empty_string_when_buffer_too_small(void **state)
{
	char id[3 + IDS_RANDOM_CHARS];

	(void)state;
	memset(id, 'x', sizeof(id));
	ids_generate(id, sizeof(id), "ch_");
	assert_string_equal(id, "");
}

static void test_random_base62_writes_n_characters_and_nul(void **state)
{
	char out[17];
	size_t i;

	(void)state;
	memset(out, 'x', sizeof(out));
	ids_random_base62(out, 16);
	assert_int_equal(out[16], '\0');
	for (i = 0; i < 16; i++)
		assert_true(is_base62(out[i]));
}

static void test_valid_accepts_well_formed_id(void **state)
{
	(void)state;
	assert_true(ids_valid("ch_0123456789ABCDEFGHIJabcd", "ch_"));
	assert_true(ids_valid("evt_zzzzzzzzzzzzzzzzzzzzzzzz", "evt_"));
}

static void test_valid_rejects_wrong_prefix(void **state)
{
	(void)state;
	assert_false(ids_valid("ch_0123456789ABCDEFGHIJabcd", "evt_"));
	assert_false(ids_valid("CH_0123456789ABCDEFGHIJabcd", "ch_"));
	assert_false(ids_valid("0123456789ABCDEFGHIJabcd", "ch_"));
}

static void test_valid_rejects_wrong_length(void **state)
{
	(void)state;
	assert_false(ids_valid("ch_0123456789ABCDEFGHIJabc", "ch_"));
	assert_false(ids_valid("ch_0123456789ABCDEFGHIJabcde", "ch_"));
	assert_false(ids_valid("ch_", "ch_"));
	assert_false(ids_valid("", "ch_"));
}

static void test_valid_rejects_non_base62_characters(void **state)
{
	(void)state;
	assert_false(ids_valid("ch_0123456789ABCDEFGHIJab-d", "ch_"));
	assert_false(ids_valid("ch_0123456789ABCDEFGHIJab_d", "ch_"));
	assert_false(ids_valid("ch_0123456789ABCDEFGHIJab d", "ch_"));
	assert_false(ids_valid("ch_0123456789ABCDEFGHIJa\xC3\xA9", "ch_"));
}

static void test_valid_rejects_null(void **state)
{
	(void)state;
	assert_false(ids_valid(NULL, "ch_"));
}

static void test_request_id_sane_accepts_allowed_characters(void **state)
{
	(void)state;
	assert_true(ids_request_id_sane("req_abc-123.4:5"));
	assert_true(ids_request_id_sane("a"));
	assert_true(ids_request_id_sane("3f2b8a4e-9c1d-4e7a-b0f6-2d5c8e9a1b3c"));
}

static void test_request_id_sane_accepts_128_and_rejects_129_characters(void **state)
{
	char s[IDS_REQUEST_ID_MAX + 2];

	(void)state;
	memset(s, 'r', 128);
	s[128] = '\0';
	assert_true(ids_request_id_sane(s));
	s[128] = 'r';
	s[129] = '\0';
	assert_false(ids_request_id_sane(s));
}

static void test_request_id_sane_rejects_empty_and_null(void **state)
{
	(void)state;
	assert_false(ids_request_id_sane(""));
	assert_false(ids_request_id_sane(NULL));
}

static void test_request_id_sane_rejects_unsafe_characters(void **state)
{
	(void)state;
	assert_false(ids_request_id_sane("abc def"));
	assert_false(ids_request_id_sane("abc\r\nX-Injected: 1"));
	assert_false(ids_request_id_sane("a\"b"));
	assert_false(ids_request_id_sane("a/b"));
	assert_false(ids_request_id_sane("caf\xC3\xA9"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_writes_prefix_and_24_base62_characters),
		cmocka_unit_test(test_generate_gives_different_ids),
		cmocka_unit_test(test_generate_fits_exact_buffer),
		cmocka_unit_test(test_generate_leaves_empty_string_when_buffer_too_small),
		cmocka_unit_test(test_random_base62_writes_n_characters_and_nul),
		cmocka_unit_test(test_valid_accepts_well_formed_id),
		cmocka_unit_test(test_valid_rejects_wrong_prefix),
		cmocka_unit_test(test_valid_rejects_wrong_length),
		cmocka_unit_test(test_valid_rejects_non_base62_characters),
		cmocka_unit_test(test_valid_rejects_null),
		cmocka_unit_test(test_request_id_sane_accepts_allowed_characters),
		cmocka_unit_test(test_request_id_sane_accepts_128_and_rejects_129_characters),
		cmocka_unit_test(test_request_id_sane_rejects_empty_and_null),
		cmocka_unit_test(test_request_id_sane_rejects_unsafe_characters),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("ids", tests, NULL, NULL);
}

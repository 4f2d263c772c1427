/* test_idem.c - unit tests of the Idempotency-Key header rules (idem.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "idem.h"

static void test_key_rejects_empty(void **state)
{
	(void)state;
	assert_int_equal(idem_key_check(""), PAY_EIDEM_INVALID);
}

static void test_key_accepts_one_character(void **state)
{
	(void)state;
	assert_int_equal(idem_key_check("a"), PAY_OK);
	assert_int_equal(idem_key_check(" "), PAY_OK);
	assert_int_equal(idem_key_check("~"), PAY_OK);
}

static void test_key_accepts_typical_uuid(void **state)
{
	(void)state;
	assert_int_equal(idem_key_check("3f2b8a4e-9c1d-4e7a-b0f6-2d5c8e9a1b3c"), PAY_OK);
}

static void test_key_accepts_255_characters(void **state)
{
	char key[IDEM_KEY_MAX + 1];

	(void)state;
	memset(key, 'k', 255);
	key[255] = '\0';
	assert_int_equal(idem_key_check(key), PAY_OK);
}

static void test_key_rejects_256_characters(void **state)
{
	char key[IDEM_KEY_MAX + 2];

	(void)state;
	memset(key, 'k', 256);
	key[256] = '\0';
	assert_int_equal(idem_key_check(key), PAY_EIDEM_INVALID);
}

static void test_key_rejects_control_character(void **state)
{
	(void)state;
	assert_int_equal(idem_key_check("abc\tdef"), PAY_EIDEM_INVALID);
	assert_int_equal(idem_key_check("abc\n"), PAY_EIDEM_INVALID);
	assert_int_equal(idem_key_check("\x01"), PAY_EIDEM_INVALID);
	assert_int_equal(idem_key_check("\x1f"), PAY_EIDEM_INVALID);
}

static void test_key_rejects_del(void **state)
{
	(void)state;
	assert_int_equal(idem_key_check("abc\x7f"), PAY_EIDEM_INVALID);
}

static void test_key_rejects_non_ascii_byte(void **state)
{
	(void)state;
	assert_int_equal(idem_key_check("caf\xC3\xA9"), PAY_EIDEM_INVALID);
	assert_int_equal(idem_key_check("\x80"), PAY_EIDEM_INVALID);
	assert_int_equal(idem_key_check("\xff"), PAY_EIDEM_INVALID);
}

static void test_key_reports_null_as_missing(void **state)
{
	(void)state;
	assert_int_equal(idem_key_check(NULL), PAY_EIDEM_MISSING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_rejects_empty),
		cmocka_unit_test(test_key_accepts_one_character),
		cmocka_unit_test(test_key_accepts_typical_uuid),
		cmocka_unit_test(test_key_accepts_255_characters),
		cmocka_unit_test(test_key_rejects_256_characters),
		cmocka_unit_test(test_key_rejects_control_character),
		cmocka_unit_test(test_key_rejects_del),
		cmocka_unit_test(test_key_rejects_non_ascii_byte),
		cmocka_unit_test(test_key_reports_null_as_missing),
	};

	return cmocka_run_group_tests_name("idem", tests, NULL, NULL);
}

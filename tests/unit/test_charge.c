/* test_charge.c - unit tests of the charge domain rules: limits, currencies and the test processor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "charge.h"
#include "err.h"

/* Returns a new string of n copies of unit (caller frees); *len gets its byte length. */
static char *repeat(const char *unit, size_t n, size_t *len)
{
	size_t ulen = strlen(unit), i;
	char *s = malloc(ulen * n + 1);

	assert_non_null(s);
	for (i = 0; i < n; i++)
		memcpy(s + i * ulen, unit, ulen);
	s[ulen * n] = '\0';
	*len = ulen * n;
	return s;
}

static void test_amount_rejects_zero(void **state)
{
	(void)state;
	assert_int_equal(charge_check_amount(0), PAY_EAMOUNT_TOO_SMALL);
}

static void test_amount_rejects_negative(void **state)
{
	(void)state;
	assert_int_equal(charge_check_amount(-1), PAY_EAMOUNT_TOO_SMALL);
	assert_int_equal(charge_check_amount(-5000), PAY_EAMOUNT_TOO_SMALL);
	assert_int_equal(charge_check_amount(-9223372036854775807LL - 1), PAY_EAMOUNT_TOO_SMALL);
}

static void test_amount_accepts_one(void **state)
{
	(void)state;
	assert_int_equal(charge_check_amount(1), PAY_OK);
}

static void test_amount_accepts_maximum(void **state)
{
	(void)state;
	assert_int_equal(charge_check_amount(99999999), PAY_OK);
	assert_int_equal(charge_check_amount(CHARGE_AMOUNT_MAX), PAY_OK);
}

static void test_amount_rejects_one_over_maximum(void **state)
{
	(void)state;
	assert_int_equal(charge_check_amount(100000000), PAY_EAMOUNT_TOO_LARGE);
	assert_int_equal(charge_check_amount(9223372036854775807LL), PAY_EAMOUNT_TOO_LARGE);
}

static void test_currency_accepts_every_listed_code(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; charge_currencies[i] != NULL; i++)
		assert_int_equal(charge_check_currency(charge_currencies[i]), PAY_OK);
	assert_int_equal(i, 22);
}

static void test_currency_list_is_sorted_lowercase_and_three_letters(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; charge_currencies[i] != NULL; i++) {
		assert_int_equal(strlen(charge_currencies[i]), 3);
		for (j = 0; j < 3; j++)
			assert_true(charge_currencies[i][j] >= 'a' && charge_currencies[i][j] <= 'z');
		if (i > 0)
			assert_true(strcmp(charge_currencies[i - 1], charge_currencies[i]) < 0);
	}
}

static void test_currency_rejects_uppercase(void **state)
{
	(void)state;
	assert_int_equal(charge_check_currency("USD"), PAY_ECURRENCY);
	assert_int_equal(charge_check_currency("Usd"), PAY_ECURRENCY);
}

static void test_currency_rejects_wrong_length(void **state)
{
	(void)state;
	assert_int_equal(charge_check_currency("us"), PAY_ECURRENCY);
	assert_int_equal(charge_check_currency("usdd"), PAY_ECURRENCY);
	assert_int_equal(charge_check_currency(""), PAY_ECURRENCY);
}

static void test_currency_rejects_null(void **state)
{
	(void)state;
	assert_int_equal(charge_check_currency(NULL), PAY_ECURRENCY);
}

static void test_currency_rejects_unlisted_code(void **state)
{
	(void)state;
	assert_int_equal(charge_check_currency("xxx"), PAY_ECURRENCY);
	assert_int_equal(charge_check_currency("btc"), PAY_ECURRENCY);
}

static void test_decide_succeeds_for_card_tokens(void **state)
{
	static const char *const ok[] = { "tok_visa", "tok_mastercard", "tok_amex" };
	enum charge_outcome out;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		out = CHARGE_DECLINED;
		assert_int_equal(charge_decide(ok[i], &out), PAY_OK);
		assert_int_equal(out, CHARGE_SUCCEEDED);
	}
}

static void test_decide_declines_charge_declined_token(void **state)
{
	enum charge_outcome out = CHARGE_SUCCEEDED;

	(void)state;
	assert_int_equal(charge_decide("tok_chargeDeclined", &out), PAY_OK);
	assert_int_equal(out, CHARGE_DECLINED);
}

static void test_decide_declines_insufficient_funds_token(void **state)
{
	enum charge_outcome out = CHARGE_SUCCEEDED;

	(void)state;
	assert_int_equal(charge_decide("tok_chargeDeclinedInsufficientFunds", &out), PAY_OK);
	assert_int_equal(out, CHARGE_DECLINED_INSUFFICIENT);
}

static void test_decide_rejects_unknown_token(void **state)
{
	enum charge_outcome out = CHARGE_SUCCEEDED;

	(void)state;
	assert_int_equal(charge_decide("tok_unknown", &out), PAY_ESOURCE);
	assert_int_equal(charge_decide("", &out), PAY_ESOURCE);
	assert_int_equal(charge_decide("TOK_VISA", &out), PAY_ESOURCE);
	assert_int_equal(charge_decide("tok_visa ", &out), PAY_ESOURCE);
	assert_int_equal(charge_decide("tok_chargeDeclinedInsufficient", &out), PAY_ESOURCE);
}

static void test_decide_rejects_null_token(void **state)
{
	enum charge_outcome out = CHARGE_SUCCEEDED;

	(void)state;
	assert_int_equal(charge_decide(NULL, &out), PAY_ESOURCE);
}

static void test_failure_code_is_null_for_success(void **state)
{
	(void)state;
	assert_null(charge_failure_code(CHARGE_SUCCEEDED));
	assert_null(charge_decline_code(CHARGE_SUCCEEDED));
	assert_null(charge_failure_message(CHARGE_SUCCEEDED));
}

static void test_failure_code_is_card_declined_for_generic_decline(void **state)
{
	(void)state;
	assert_string_equal(charge_failure_code(CHARGE_DECLINED), "card_declined");
	assert_string_equal(charge_decline_code(CHARGE_DECLINED), "generic_decline");
	assert_string_equal(charge_failure_message(CHARGE_DECLINED), "Your card was declined.");
}

static void test_failure_code_is_card_declined_for_insufficient_funds(void **state)
{
	(void)state;
	assert_string_equal(charge_failure_code(CHARGE_DECLINED_INSUFFICIENT), "card_declined");
	assert_string_equal(charge_decline_code(CHARGE_DECLINED_INSUFFICIENT), "insufficient_funds");
	assert_string_equal(charge_failure_message(CHARGE_DECLINED_INSUFFICIENT),
			    "Your card has insufficient funds.");
}

static void test_utf8_chars_counts_ascii_bytes(void **state)
{
	(void)state;
	assert_int_equal(charge_utf8_chars("", 0), 0);
	assert_int_equal(charge_utf8_chars("hello", 5), 5);
}

static void test_utf8_chars_counts_multibyte_code_points(void **state)
{
	/* e-acute (2 bytes), euro sign (3 bytes), grinning face (4 bytes). */
	static const char text[] = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";

	(void)state;
	assert_int_equal(sizeof(text) - 1, 9);
	assert_int_equal(charge_utf8_chars(text, sizeof(text) - 1), 3);
	assert_int_equal(charge_utf8_chars("caf\xC3\xA9", 5), 4);
}

static void test_utf8_chars_stops_at_len(void **state)
{
	(void)state;
	assert_int_equal(charge_utf8_chars("abcdef", 3), 3);
}

static void test_metadata_count_accepts_50_keys(void **state)
{
	(void)state;
	assert_int_equal(charge_check_metadata_count(0), PAY_OK);
	assert_int_equal(charge_check_metadata_count(50), PAY_OK);
}

static void test_metadata_count_rejects_51_keys(void **state)
{
	(void)state;
	assert_int_equal(charge_check_metadata_count(51), PAY_EMETADATA);
}

static void test_metadata_key_rejects_empty(void **state)
{
	(void)state;
	assert_int_equal(charge_check_metadata_key("", 0), PAY_EMETADATA);
}

static void test_metadata_key_accepts_40_characters(void **state)
{
	size_t len;
	char *s = repeat("\xF0\x9F\x98\x80", 40, &len);

	(void)state;
	assert_int_equal(charge_check_metadata_key(s, len), PAY_OK);
	assert_int_equal(charge_check_metadata_key("k", 1), PAY_OK);
	free(s);
}

static void test_metadata_key_rejects_41_characters(void **state)
{
	size_t len;
	char *s = repeat("\xC3\xA9", 41, &len);

	(void)state;
	assert_int_equal(charge_check_metadata_key(s, len), PAY_EMETADATA);
	free(s);
}

static void test_metadata_value_accepts_empty_and_500_characters(void **state)
{
	size_t len;
	char *s = repeat("\xE2\x82\xAC", 500, &len);

	(void)state;
	assert_int_equal(charge_check_metadata_value("", 0), PAY_OK);
	assert_int_equal(charge_check_metadata_value(s, len), PAY_OK);
	free(s);
}

static void test_metadata_value_rejects_501_characters(void **state)
{
	size_t len;
	char *s = repeat("v", 501, &len);

	(void)state;
	assert_int_equal(charge_check_metadata_value(s, len), PAY_EMETADATA);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_amount_rejects_zero),
		cmocka_unit_test(test_amount_rejects_negative),
		cmocka_unit_test(test_amount_accepts_one),
		cmocka_unit_test(test_amount_accepts_maximum),
		cmocka_unit_test(test_amount_rejects_one_over_maximum),
		cmocka_unit_test(test_currency_accepts_every_listed_code),
		cmocka_unit_test(test_currency_list_is_sorted_lowercase_and_three_letters),
		cmocka_unit_test(test_currency_rejects_uppercase),
		cmocka_unit_test(test_currency_rejects_wrong_length),
		cmocka_unit_test(test_currency_rejects_null),
		cmocka_unit_test(test_currency_rejects_unlisted_code),
		cmocka_unit_test(test_decide_succeeds_for_card_tokens),
		cmocka_unit_test(test_decide_declines_charge_declined_token),
		cmocka_unit_test(test_decide_declines_insufficient_funds_token),
		cmocka_unit_test(test_decide_rejects_unknown_token),
		cmocka_unit_test(test_decide_rejects_null_token),
		cmocka_unit_test(test_failure_code_is_null_for_success),
		cmocka_unit_test(test_failure_code_is_card_declined_for_generic_decline),
		cmocka_unit_test(test_failure_code_is_card_declined_for_insufficient_funds),
		cmocka_unit_test(test_utf8_chars_counts_ascii_bytes),
		cmocka_unit_test(test_utf8_chars_counts_multibyte_code_points),
		cmocka_unit_test(test_utf8_chars_stops_at_len),
		cmocka_unit_test(test_metadata_count_accepts_50_keys),
		cmocka_unit_test(test_metadata_count_rejects_51_keys),
		cmocka_unit_test(test_metadata_key_rejects_empty),
		cmocka_unit_test(test_metadata_key_accepts_40_characters),
		cmocka_unit_test(test_metadata_key_rejects_41_characters),
		cmocka_unit_test(test_metadata_value_accepts_empty_and_500_characters),
		cmocka_unit_test(test_metadata_value_rejects_501_characters),
	};

	return cmocka_run_group_tests_name("charge", tests, NULL, NULL);
}

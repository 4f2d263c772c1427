/* test_err.c - unit tests of the mapping from pay_err to HTTP status and error fields (err.c). */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"
#include "charge.h"
#include "err.h"

/* Far past any value the enum will reach, so it is certainly not in the table. */
#define FAR_PAST_TABLE (-1000)

struct expected {
	int err;
	int status;
	const char *type;
	const char *code;
};

static const struct expected expected[] = {
	{ PAY_ENOMEM, 500, "api_error", "internal_error" },
	{ PAY_EINTERNAL, 500, "api_error", "internal_error" },
	{ PAY_EUNAVAILABLE, 503, "api_error", "service_unavailable" },
	{ PAY_EJSON, 400, "invalid_request_error", "invalid_json" },
	{ PAY_EPARAM_UNKNOWN, 400, "invalid_request_error", "parameter_unknown" },
	{ PAY_EPARAM_MISSING, 400, "invalid_request_error", "parameter_missing" },
	{ PAY_EPARAM_TYPE, 400, "invalid_request_error", "parameter_invalid_type" },
	{ PAY_EPARAM_INVALID, 400, "invalid_request_error", "parameter_invalid" },
	{ PAY_EAMOUNT_TOO_SMALL, 400, "invalid_request_error", "amount_too_small" },
	{ PAY_EAMOUNT_TOO_LARGE, 400, "invalid_request_error", "amount_too_large" },
	{ PAY_ESTRING_TOO_LONG, 400, "invalid_request_error", "parameter_too_long" },
	{ PAY_ECURRENCY, 400, "invalid_request_error", "invalid_currency" },
	{ PAY_ESOURCE, 400, "invalid_request_error", "invalid_source" },
	{ PAY_EMETADATA, 400, "invalid_request_error", "invalid_metadata" },
	{ PAY_EIDEM_MISSING, 400, "invalid_request_error", "idempotency_key_missing" },
	{ PAY_EIDEM_INVALID, 400, "invalid_request_error", "idempotency_key_invalid" },
	{ PAY_EIDEM_REUSED, 409, "idempotency_error", "idempotency_key_reused" },
	{ PAY_EIDEM_IN_USE, 409, "idempotency_error", "idempotency_key_in_use" },
	{ PAY_EIDEM_REUSED_STRIPE, 400, "idempotency_error", "idempotency_key_reused" },
	{ PAY_EAUTH_MISSING, 401, "authentication_error", "api_key_missing" },
	{ PAY_EAUTH_INVALID, 401, "authentication_error", "api_key_invalid" },
	{ PAY_ECARD_DECLINED, 402, "card_error", "card_declined" },
	{ PAY_ENOT_FOUND, 404, "invalid_request_error", "resource_missing" },
	{ PAY_EROUTE, 404, "invalid_request_error", "route_not_found" },
	{ PAY_EMETHOD, 405, "invalid_request_error", "method_not_allowed" },
	{ PAY_EMEDIA_TYPE, 415, "invalid_request_error", "unsupported_media_type" },
	{ PAY_EBODY_TOO_LARGE, 413, "invalid_request_error", "body_too_large" },
	{ PAY_EREAD, 400, "invalid_request_error", "body_unreadable" },
	{ PAY_ECONFIG, 500, "api_error", "config_error" },
	{ PAY_EIO, 500, "api_error", "internal_error" },
	{ PAY_ESTATE, 400, "invalid_request_error", "invalid_state" },
};

static void test_info_maps_every_error_to_status_type_code_and_message(void **state)
{
	const struct err_info *fallback = err_info(PAY_EINTERNAL), *info;
	bool past_end = false;
	int e;

	(void)state;
	/*
	 * Walks the enum from -1 down: every value up to the last one has a
	 * complete entry of its own (or is PAY_EINTERNAL), and once a value falls
	 * back to 500 every later one does too, so the table has no holes.
	 */
	for (e = -1; e > FAR_PAST_TABLE; e--) {
		info = err_info(e);
		assert_non_null(info);
		if (info->status < 400 || info->status > 599 || info->type == NULL ||
		    info->code == NULL || info->message == NULL || info->message[0] == '\0')
			fail_msg("error %d has no complete entry", e);
		if (e == PAY_EINTERNAL)
			continue;
		if (info == fallback)
			past_end = true;
		else if (past_end)
			fail_msg("error %d has an entry after a hole in the table", e);
	}
	assert_true(past_end);
}

static void test_info_matches_the_documented_table(void **state)
{
	const struct err_info *info;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		info = err_info(expected[i].err);
		assert_int_equal(info->status, expected[i].status);
		assert_string_equal(info->type, expected[i].type);
		assert_string_equal(info->code, expected[i].code);
	}
}

static void test_message_names_the_limits_the_code_enforces(void **state)
{
	char buf[160], want[160];

	(void)state;
	snprintf(want, sizeof(want), "Amount must be at most %lld.", CHARGE_AMOUNT_MAX);
	assert_string_equal(err_message(PAY_EAMOUNT_TOO_LARGE, buf, sizeof(buf)), want);
	snprintf(want, sizeof(want), "The request body is larger than %d KiB.", BODY_MAX_BYTES / 1024);
	assert_string_equal(err_message(PAY_EBODY_TOO_LARGE, buf, sizeof(buf)), want);
	/* A message without a limit is the table's own text. */
	assert_ptr_equal(err_message(PAY_ENOT_FOUND, buf, sizeof(buf)), err_info(PAY_ENOT_FOUND)->message);
}

static void test_info_maps_ok_to_200(void **state)
{
	(void)state;
	assert_int_equal(err_info(PAY_OK)->status, 200);
}

static void test_info_maps_value_past_the_table_to_500(void **state)
{
	const struct err_info *info = err_info(FAR_PAST_TABLE);

	(void)state;
	assert_int_equal(info->status, 500);
	assert_string_equal(info->type, "api_error");
	assert_ptr_equal(info, err_info(PAY_EINTERNAL));
	assert_int_equal(err_info(-INT_MAX)->status, 500);
}

static void test_info_maps_positive_value_to_500(void **state)
{
	(void)state;
	assert_ptr_equal(err_info(1), err_info(PAY_EINTERNAL));
	assert_int_equal(err_info(404)->status, 500);
	assert_int_equal(err_info(INT_MAX)->status, 500);
}

static void test_info_maps_int_min_to_500(void **state)
{
	/* -INT_MIN overflows: err_info must not negate it (UBSan reports it otherwise). */
	volatile int e = INT_MIN;

	(void)state;
	assert_int_equal(err_info(e)->status, 500);
}

/* The two entries of a key reused with another request: this API's and Stripe's (400). */
static bool is_reuse(int e)
{
	return e == PAY_EIDEM_REUSED || e == PAY_EIDEM_REUSED_STRIPE;
}

static void test_info_codes_are_unique_except_internal_and_reuse(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		for (j = i + 1; j < sizeof(expected) / sizeof(expected[0]); j++) {
			if (strcmp(expected[i].code, "internal_error") == 0 ||
			    (is_reuse(expected[i].err) && is_reuse(expected[j].err)))
				continue;
			assert_string_not_equal(err_info(expected[i].err)->code,
						err_info(expected[j].err)->code);
		}
	}
}

static void test_reuse_in_stripes_dialect_differs_only_in_status(void **state)
{
	const struct err_info *ours = err_info(PAY_EIDEM_REUSED);
	const struct err_info *stripe = err_info(PAY_EIDEM_REUSED_STRIPE);

	(void)state;
	assert_int_equal(ours->status, 409);
	assert_int_equal(stripe->status, 400);
	assert_string_equal(stripe->type, ours->type);
	assert_string_equal(stripe->code, ours->code);
	assert_string_equal(stripe->message, ours->message);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_info_maps_every_error_to_status_type_code_and_message),
		cmocka_unit_test(test_info_matches_the_documented_table),
		cmocka_unit_test(test_info_maps_ok_to_200),
		cmocka_unit_test(test_message_names_the_limits_the_code_enforces),
		cmocka_unit_test(test_info_maps_value_past_the_table_to_500),
		cmocka_unit_test(test_info_maps_positive_value_to_500),
		cmocka_unit_test(test_info_maps_int_min_to_500),
		cmocka_unit_test(test_info_codes_are_unique_except_internal_and_reuse),
		cmocka_unit_test(test_reuse_in_stripes_dialect_differs_only_in_status),
	};

	return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}

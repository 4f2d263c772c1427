/* test_refundreq.c - unit tests of decoding and validating POST /v1/refunds bodies (refundreq.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "refundreq.h"

#define CHARGE_ID "ch_0123456789abcdefABCDEFgh"

/* Parses text, expecting failure with e and param; checks req is left empty. */
static void assert_refused(const char *text, int e, const char *param)
{
	struct refundreq req;
	struct body_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = refundreq_parse(&req, text, strlen(text), &err);
	if (rc != e || strcmp(err.param, param) != 0)
		fail_msg("body %s: got %d param '%s' (%s), want %d param '%s'", text, rc, err.param,
			 err.message, e, param);
	assert_int_equal(err.err, e);
	assert_null(req.root);
	assert_null(req.charge);
	assert_null(req.reason);
	assert_null(req.metadata_json);
	assert_false(req.has_amount);
	/* Releasing a failed request twice is harmless. */
	refundreq_fini(&req);
	refundreq_fini(&req);
}

/* Parses text, expecting success; the caller releases req. */
static void parse_ok(struct refundreq *req, const char *text)
{
	struct body_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = refundreq_parse(req, text, strlen(text), &err);
	if (rc != PAY_OK)
		fail_msg("body %s: got %d param '%s' (%s), want PAY_OK", text, rc, err.param, err.message);
}

static void test_refundreq_accepts_a_full_body(void **state)
{
	static const char text[] = "{\"charge\": \"" CHARGE_ID "\", \"amount\": 1500,"
				   " \"reason\": \"requested_by_customer\","
				   " \"metadata\": {\"ticket\": \"T-9\", \"agent\": \"ann\"}}";
	unsigned char zero[CANON_FINGERPRINT_BYTES] = { 0 };
	struct refundreq req;

	(void)state;
	parse_ok(&req, text);
	assert_non_null(req.root);
	assert_string_equal(req.charge, CHARGE_ID);
	assert_true(req.has_amount);
	assert_int_equal(req.amount, 1500);
	assert_string_equal(req.reason, "requested_by_customer");
	assert_string_equal(req.metadata_json, "{\"ticket\":\"T-9\",\"agent\":\"ann\"}");
	assert_memory_not_equal(req.fingerprint, zero, sizeof(zero));
	refundreq_fini(&req);
	assert_null(req.root);
	assert_null(req.charge);
	assert_null(req.metadata_json);
}

static void test_refundreq_accepts_a_body_without_amount(void **state)
{
	static const char text[] = "{\"charge\": \"" CHARGE_ID "\"}";
	struct refundreq req;

	(void)state;
	parse_ok(&req, text);
	assert_string_equal(req.charge, CHARGE_ID);
	assert_false(req.has_amount);
	assert_null(req.reason);
	assert_string_equal(req.metadata_json, "{}");
	refundreq_fini(&req);
}

static void test_refundreq_treats_null_optionals_as_absent(void **state)
{
	static const char text[] = "{\"charge\": \"" CHARGE_ID "\", \"amount\": null,"
				   " \"reason\": null, \"metadata\": null}";
	struct refundreq req;

	(void)state;
	parse_ok(&req, text);
	assert_false(req.has_amount);
	assert_null(req.reason);
	assert_string_equal(req.metadata_json, "{}");
	refundreq_fini(&req);
}

static void test_refundreq_accepts_amount_bounds(void **state)
{
	struct refundreq req;

	(void)state;
	parse_ok(&req, "{\"charge\": \"" CHARGE_ID "\", \"amount\": 1}");
	assert_true(req.has_amount);
	assert_int_equal(req.amount, 1);
	refundreq_fini(&req);
	parse_ok(&req, "{\"charge\": \"" CHARGE_ID "\", \"amount\": 99999999}");
	assert_int_equal(req.amount, 99999999);
	refundreq_fini(&req);
}

static void test_refundreq_accepts_each_reason(void **state)
{
	static const char *const reasons[] = { "duplicate", "fraudulent", "requested_by_customer" };
	struct refundreq req;
	char text[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		snprintf(text, sizeof(text), "{\"charge\": \"%s\", \"reason\": \"%s\"}", CHARGE_ID,
			 reasons[i]);
		parse_ok(&req, text);
		assert_string_equal(req.reason, reasons[i]);
		refundreq_fini(&req);
	}
}

static void test_refundreq_refuses_malformed_json(void **state)
{
	(void)state;
	assert_refused("{\"charge\": \"" CHARGE_ID "\",", PAY_EJSON, "");
	assert_refused("", PAY_EJSON, "");
	assert_refused("[\"" CHARGE_ID "\"]", PAY_EJSON, "");
	assert_refused("\"" CHARGE_ID "\"", PAY_EJSON, "");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"charge\": \"" CHARGE_ID "\"}", PAY_EJSON, "");
}

static void test_refundreq_refuses_missing_charge(void **state)
{
	(void)state;
	assert_refused("{}", PAY_EPARAM_MISSING, "charge");
	assert_refused("{\"amount\": 100}", PAY_EPARAM_MISSING, "charge");
	assert_refused("{\"charge\": null, \"amount\": 100}", PAY_EPARAM_MISSING, "charge");
}

static void test_refundreq_refuses_non_string_charge(void **state)
{
	(void)state;
	assert_refused("{\"charge\": 42}", PAY_EPARAM_TYPE, "charge");
	assert_refused("{\"charge\": {\"id\": \"" CHARGE_ID "\"}}", PAY_EPARAM_TYPE, "charge");
	assert_refused("{\"charge\": [\"" CHARGE_ID "\"]}", PAY_EPARAM_TYPE, "charge");
}

static void test_refundreq_refuses_malformed_charge_id_as_not_found(void **state)
{
	(void)state;
	/* A malformed id cannot name a charge: the same 404 as a missing one. */
	assert_refused("{\"charge\": \"ch_nope\"}", PAY_ENOT_FOUND, "charge");
	assert_refused("{\"charge\": \"\"}", PAY_ENOT_FOUND, "charge");
	assert_refused("{\"charge\": \"re_0123456789abcdefABCDEFgh\"}", PAY_ENOT_FOUND, "charge");
	assert_refused("{\"charge\": \"ch_0123456789abcdefABCDEFg!\"}", PAY_ENOT_FOUND, "charge");
	assert_refused("{\"charge\": \"ch_0123456789abcdefABCDEFgh1\"}", PAY_ENOT_FOUND, "charge");
	assert_refused("{\"charge\": \"CH_0123456789abcdefABCDEFgh\"}", PAY_ENOT_FOUND, "charge");
}

static void test_refundreq_refuses_non_integer_amount(void **state)
{
	(void)state;
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": 15.0}", PAY_EPARAM_TYPE, "amount");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": 1e3}", PAY_EPARAM_TYPE, "amount");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": \"1500\"}", PAY_EPARAM_TYPE, "amount");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": true}", PAY_EPARAM_TYPE, "amount");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": [1]}", PAY_EPARAM_TYPE, "amount");
}

static void test_refundreq_refuses_zero_and_negative_amount(void **state)
{
	(void)state;
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": 0}", PAY_EAMOUNT_TOO_SMALL, "amount");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": -1}", PAY_EAMOUNT_TOO_SMALL, "amount");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": -9223372036854775808}",
		       PAY_EAMOUNT_TOO_SMALL, "amount");
}

static void test_refundreq_refuses_too_large_amount(void **state)
{
	(void)state;
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": 100000000}", PAY_EAMOUNT_TOO_LARGE,
		       "amount");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount\": 9223372036854775807}",
		       PAY_EAMOUNT_TOO_LARGE, "amount");
}

static void test_refundreq_refuses_unknown_reason(void **state)
{
	(void)state;
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"reason\": \"changed_my_mind\"}",
		       PAY_EPARAM_INVALID, "reason");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"reason\": \"\"}", PAY_EPARAM_INVALID, "reason");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"reason\": \"Duplicate\"}", PAY_EPARAM_INVALID,
		       "reason");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"reason\": \"duplicate \"}", PAY_EPARAM_INVALID,
		       "reason");
}

static void test_refundreq_refuses_non_string_reason(void **state)
{
	(void)state;
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"reason\": 1}", PAY_EPARAM_TYPE, "reason");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"reason\": [\"duplicate\"]}", PAY_EPARAM_TYPE,
		       "reason");
}

static void test_refundreq_refuses_too_long_reason(void **state)
{
	char text[256], reason[66];

	(void)state;
	memset(reason, 'x', 65);
	reason[65] = '\0';
	snprintf(text, sizeof(text), "{\"charge\": \"%s\", \"reason\": \"%s\"}", CHARGE_ID, reason);
	assert_refused(text, PAY_ESTRING_TOO_LONG, "reason");
}

static void test_refundreq_refuses_bad_metadata(void **state)
{
	(void)state;
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"metadata\": \"x\"}", PAY_EMETADATA, "metadata");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"metadata\": [\"a\"]}", PAY_EMETADATA, "metadata");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"metadata\": {\"a\": 1}}", PAY_EMETADATA,
		       "metadata");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"metadata\": {\"a\": {\"b\": \"c\"}}}",
		       PAY_EMETADATA, "metadata");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"metadata\": {\"\": \"v\"}}", PAY_EMETADATA,
		       "metadata");
}

static void test_refundreq_refuses_unknown_field(void **state)
{
	(void)state;
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"currency\": \"usd\"}", PAY_EPARAM_UNKNOWN,
		       "currency");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"payment_intent\": \"pi_1\"}",
		       PAY_EPARAM_UNKNOWN, "payment_intent");
	/* Unknown fields are reported before any other problem of the body. */
	assert_refused("{\"amount\": -1, \"refund_application_fee\": true}", PAY_EPARAM_UNKNOWN,
		       "refund_application_fee");
}

static void test_refundreq_refuses_server_owned_fields(void **state)
{
	(void)state;
	assert_refused("{\"id\": \"re_0123456789abcdefABCDEFgh\", \"charge\": \"" CHARGE_ID "\"}",
		       PAY_EPARAM_UNKNOWN, "id");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"object\": \"refund\"}", PAY_EPARAM_UNKNOWN,
		       "object");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"status\": \"succeeded\"}", PAY_EPARAM_UNKNOWN,
		       "status");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"created\": 1700000000}", PAY_EPARAM_UNKNOWN,
		       "created");
	assert_refused("{\"charge\": \"" CHARGE_ID "\", \"amount_refunded\": 0}", PAY_EPARAM_UNKNOWN,
		       "amount_refunded");
}

static void test_refundreq_fingerprint_ignores_key_order_and_white_space(void **state)
{
	static const char a[] = "{\"charge\":\"" CHARGE_ID "\",\"amount\":700,\"reason\":\"duplicate\","
				"\"metadata\":{\"a\":\"1\",\"b\":\"2\"}}";
	static const char b[] = "{ \"metadata\": {\"b\": \"2\", \"a\": \"1\"},\n\t\"reason\": \"duplicate\","
				" \"amount\": 700, \"charge\": \"" CHARGE_ID "\" }";
	struct refundreq ra, rb;

	(void)state;
	parse_ok(&ra, a);
	parse_ok(&rb, b);
	assert_memory_equal(ra.fingerprint, rb.fingerprint, CANON_FINGERPRINT_BYTES);
	refundreq_fini(&ra);
	refundreq_fini(&rb);
}

static void test_refundreq_fingerprint_changes_with_each_field(void **state)
{
	static const char *const variants[] = {
		"{\"charge\":\"" CHARGE_ID "\",\"amount\":700}",
		"{\"charge\":\"" CHARGE_ID "\",\"amount\":701}",
		"{\"charge\":\"" CHARGE_ID "\"}",
		"{\"charge\":\"ch_0123456789abcdefABCDEFgi\",\"amount\":700}",
		"{\"charge\":\"" CHARGE_ID "\",\"amount\":700,\"reason\":\"fraudulent\"}",
		"{\"charge\":\"" CHARGE_ID "\",\"amount\":700,\"metadata\":{\"a\":\"1\"}}",
	};
	enum { N = sizeof(variants) / sizeof(variants[0]) };
	struct refundreq reqs[N];
	size_t i, j;

	(void)state;
	for (i = 0; i < N; i++)
		parse_ok(&reqs[i], variants[i]);
	for (i = 0; i < N; i++) {
		for (j = i + 1; j < N; j++) {
			if (memcmp(reqs[i].fingerprint, reqs[j].fingerprint, CANON_FINGERPRINT_BYTES) == 0)
				fail_msg("%s and %s have the same fingerprint", variants[i], variants[j]);
		}
	}
	for (i = 0; i < N; i++)
		refundreq_fini(&reqs[i]);
}

static void test_refundreq_fingerprint_is_sha256_of_canonical_request(void **state)
{
	static const char text[] = "{\"reason\": \"duplicate\", \"charge\": \"" CHARGE_ID "\", \"amount\": 5}";
	static const char canon[] = "POST\n/v1/refunds\n{\"amount\":5,\"charge\":\"" CHARGE_ID "\","
				    "\"reason\":\"duplicate\"}";
	unsigned char want[CANON_FINGERPRINT_BYTES];
	struct refundreq req;

	(void)state;
	crypto_hash_sha256(want, (const unsigned char *)canon, sizeof(canon) - 1);
	parse_ok(&req, text);
	assert_memory_equal(req.fingerprint, want, sizeof(want));
	refundreq_fini(&req);
}

static void test_refundreq_fini_is_safe_on_zeroed_request(void **state)
{
	struct refundreq req;

	(void)state;
	memset(&req, 0, sizeof(req));
	refundreq_fini(&req);
	assert_null(req.root);
	assert_null(req.metadata_json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refundreq_accepts_a_full_body),
		cmocka_unit_test(test_refundreq_accepts_a_body_without_amount),
		cmocka_unit_test(test_refundreq_treats_null_optionals_as_absent),
		cmocka_unit_test(test_refundreq_accepts_amount_bounds),
		cmocka_unit_test(test_refundreq_accepts_each_reason),
		cmocka_unit_test(test_refundreq_refuses_malformed_json),
		cmocka_unit_test(test_refundreq_refuses_missing_charge),
		cmocka_unit_test(test_refundreq_refuses_non_string_charge),
		cmocka_unit_test(test_refundreq_refuses_malformed_charge_id_as_not_found),
		cmocka_unit_test(test_refundreq_refuses_non_integer_amount),
		cmocka_unit_test(test_refundreq_refuses_zero_and_negative_amount),
		cmocka_unit_test(test_refundreq_refuses_too_large_amount),
		cmocka_unit_test(test_refundreq_refuses_unknown_reason),
		cmocka_unit_test(test_refundreq_refuses_non_string_reason),
		cmocka_unit_test(test_refundreq_refuses_too_long_reason),
		cmocka_unit_test(test_refundreq_refuses_bad_metadata),
		cmocka_unit_test(test_refundreq_refuses_unknown_field),
		cmocka_unit_test(test_refundreq_refuses_server_owned_fields),
		cmocka_unit_test(test_refundreq_fingerprint_ignores_key_order_and_white_space),
		cmocka_unit_test(test_refundreq_fingerprint_changes_with_each_field),
		cmocka_unit_test(test_refundreq_fingerprint_is_sha256_of_canonical_request),
		cmocka_unit_test(test_refundreq_fini_is_safe_on_zeroed_request),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("refundreq", tests, NULL, NULL);
}

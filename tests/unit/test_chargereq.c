/* test_chargereq.c - unit tests of decoding and validating POST /v1/charges bodies (chargereq.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chargereq.h"
#include "err.h"

#define VALID_BODY "{\"amount\": 5000, \"currency\": \"usd\", \"source\": \"tok_visa\"}"

/* Parses text, expecting failure with e and param; checks req is left empty. */
static void assert_refused(const char *text, int e, const char *param)
{
	struct chargereq req;
	struct body_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = chargereq_parse(&req, text, strlen(text), &err);
	if (rc != e || strcmp(err.param, param) != 0)
		fail_msg("body %s: got %d param '%s' (%s), want %d param '%s'", text, rc, err.param,
			 err.message, e, param);
	assert_int_equal(err.err, e);
	assert_null(req.root);
	assert_null(req.metadata_json);
	assert_null(req.currency);
	assert_null(req.source);
	/* Releasing a failed request twice is harmless. */
	chargereq_fini(&req);
	chargereq_fini(&req);
}

static void test_parse_accepts_a_valid_body(void **state)
{
	static const char text[] = "{\"amount\": 5000, \"currency\": \"eur\", \"source\": \"tok_amex\","
				   " \"description\": \"Order 7\", \"metadata\": {\"order\": \"7\"}}";
	struct chargereq req;
	struct body_error err;
	unsigned char zero[CANON_FINGERPRINT_BYTES] = { 0 };

	(void)state;
	assert_int_equal(chargereq_parse(&req, text, sizeof(text) - 1, &err), PAY_OK);
	assert_non_null(req.root);
	assert_int_equal(req.amount, 5000);
	assert_string_equal(req.currency, "eur");
	assert_string_equal(req.source, "tok_amex");
	assert_string_equal(req.description, "Order 7");
	assert_string_equal(req.metadata_json, "{\"order\":\"7\"}");
	assert_int_equal(req.outcome, CHARGE_SUCCEEDED);
	assert_memory_not_equal(req.fingerprint, zero, sizeof(zero));
	chargereq_fini(&req);
	assert_null(req.root);
	assert_null(req.metadata_json);
}

static void test_parse_accepts_minimal_body_without_optional_fields(void **state)
{
	struct chargereq req;
	struct body_error err;

	(void)state;
	assert_int_equal(chargereq_parse(&req, VALID_BODY, strlen(VALID_BODY), &err), PAY_OK);
	assert_null(req.description);
	assert_string_equal(req.metadata_json, "{}");
	assert_true(req.capture);
	chargereq_fini(&req);
}

static void test_parse_reads_capture_of_either_format(void **state)
{
	static const char json[] = "{\"amount\":2000,\"currency\":\"usd\",\"source\":\"tok_visa\","
				   "\"capture\":false}";
	static const char form[] = "amount=2000&currency=usd&source=tok_visa&capture=false";
	static const char python[] = "amount=2000&currency=usd&source=tok_visa&capture=False";
	struct chargereq a, b, c;
	struct body_error err;

	(void)state;
	assert_int_equal(chargereq_parse_as(&a, json, strlen(json), BODY_FORMAT_JSON, &err), PAY_OK);
	assert_int_equal(chargereq_parse_as(&b, form, strlen(form), BODY_FORMAT_FORM, &err), PAY_OK);
	assert_int_equal(chargereq_parse_as(&c, python, strlen(python), BODY_FORMAT_FORM, &err), PAY_OK);
	assert_false(a.capture);
	assert_false(b.capture);
	assert_false(c.capture);
	/* The form's "false" (or stripe-python's "False") is the JSON false: one fingerprint. */
	assert_memory_equal(a.fingerprint, b.fingerprint, CANON_FINGERPRINT_BYTES);
	assert_memory_equal(a.fingerprint, c.fingerprint, CANON_FINGERPRINT_BYTES);
	chargereq_fini(&a);
	chargereq_fini(&b);
	chargereq_fini(&c);
}

static void test_parse_refuses_non_boolean_capture(void **state)
{
	(void)state;
	assert_refused("{\"amount\":2000,\"currency\":\"usd\",\"source\":\"tok_visa\","
		       "\"capture\":\"false\"}", PAY_EPARAM_TYPE, "capture");
	assert_refused("{\"amount\":2000,\"currency\":\"usd\",\"source\":\"tok_visa\","
		       "\"capture\":0}", PAY_EPARAM_TYPE, "capture");
}

static void test_parse_sets_declined_outcome(void **state)
{
	static const char text[] =
		"{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_chargeDeclinedInsufficientFunds\"}";
	struct chargereq req;
	struct body_error err;

	(void)state;
	assert_int_equal(chargereq_parse(&req, text, sizeof(text) - 1, &err), PAY_OK);
	assert_int_equal(req.outcome, CHARGE_DECLINED_INSUFFICIENT);
	chargereq_fini(&req);
}

static void test_parse_refuses_malformed_json(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 5000,", PAY_EJSON, "");
	assert_refused("", PAY_EJSON, "");
	assert_refused("[]", PAY_EJSON, "");
	assert_refused("{\"amount\": 1, \"amount\": 2, \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EJSON, "");
}

static void test_parse_refuses_unknown_field(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 5000, \"currency\": \"usd\", \"source\": \"tok_visa\", \"customer\": \"cus_1\"}",
		       PAY_EPARAM_UNKNOWN, "customer");
}

static void test_parse_refuses_server_owned_status(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 5000, \"currency\": \"usd\", \"source\": \"tok_visa\","
		       " \"status\": \"succeeded\"}", PAY_EPARAM_UNKNOWN, "status");
}

static void test_parse_refuses_server_owned_id(void **state)
{
	(void)state;
	assert_refused("{\"id\": \"ch_000000000000000000000000\", \"amount\": 5000,"
		       " \"currency\": \"usd\", \"source\": \"tok_visa\"}", PAY_EPARAM_UNKNOWN, "id");
}

static void test_parse_refuses_server_owned_amount_refunded(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 5000, \"amount_refunded\": 0, \"currency\": \"usd\","
		       " \"source\": \"tok_visa\"}", PAY_EPARAM_UNKNOWN, "amount_refunded");
}

static void test_parse_refuses_missing_amount(void **state)
{
	(void)state;
	assert_refused("{\"currency\": \"usd\", \"source\": \"tok_visa\"}", PAY_EPARAM_MISSING, "amount");
	assert_refused("{\"amount\": null, \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EPARAM_MISSING, "amount");
}

static void test_parse_refuses_float_amount(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 5000.0, \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EPARAM_TYPE, "amount");
	assert_refused("{\"amount\": 5e3, \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EPARAM_TYPE, "amount");
}

static void test_parse_refuses_string_amount(void **state)
{
	(void)state;
	assert_refused("{\"amount\": \"5000\", \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EPARAM_TYPE, "amount");
	assert_refused("{\"amount\": true, \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EPARAM_TYPE, "amount");
}

static void test_parse_refuses_zero_amount(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 0, \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EAMOUNT_TOO_SMALL, "amount");
	assert_refused("{\"amount\": -1, \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EAMOUNT_TOO_SMALL, "amount");
}

static void test_parse_refuses_too_large_amount(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 100000000, \"currency\": \"usd\", \"source\": \"tok_visa\"}",
		       PAY_EAMOUNT_TOO_LARGE, "amount");
}

static void test_parse_refuses_bad_currency(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 1, \"currency\": \"USD\", \"source\": \"tok_visa\"}",
		       PAY_ECURRENCY, "currency");
	assert_refused("{\"amount\": 1, \"currency\": \"usdd\", \"source\": \"tok_visa\"}",
		       PAY_ECURRENCY, "currency");
	assert_refused("{\"amount\": 1, \"currency\": \"us\", \"source\": \"tok_visa\"}",
		       PAY_ECURRENCY, "currency");
	assert_refused("{\"amount\": 1, \"currency\": \"\", \"source\": \"tok_visa\"}",
		       PAY_ECURRENCY, "currency");
	assert_refused("{\"amount\": 1, \"currency\": \"xyz\", \"source\": \"tok_visa\"}",
		       PAY_ECURRENCY, "currency");
}

static void test_parse_refuses_missing_currency(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 1, \"source\": \"tok_visa\"}", PAY_EPARAM_MISSING, "currency");
}

static void test_parse_refuses_non_string_currency(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 1, \"currency\": 840, \"source\": \"tok_visa\"}",
		       PAY_EPARAM_TYPE, "currency");
}

static void test_parse_refuses_missing_source(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 1, \"currency\": \"usd\"}", PAY_EPARAM_MISSING, "source");
}

static void test_parse_refuses_non_string_source(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 1, \"currency\": \"usd\", \"source\": {\"number\": \"4242\"}}",
		       PAY_EPARAM_TYPE, "source");
}

static void test_parse_refuses_unknown_source(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_nope\"}",
		       PAY_ESOURCE, "source");
}

static void test_parse_refuses_too_long_source(void **state)
{
	char text[400];
	char src[257];

	(void)state;
	memset(src, 'x', 256);
	src[256] = '\0';
	snprintf(text, sizeof(text), "{\"amount\": 1, \"currency\": \"usd\", \"source\": \"%s\"}", src);
	assert_refused(text, PAY_ESTRING_TOO_LONG, "source");
}

static void test_parse_refuses_non_string_description(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_visa\", \"description\": 5}",
		       PAY_EPARAM_TYPE, "description");
}

/* Builds a body whose description is n copies of unit; caller frees. */
static char *body_with_description(const char *unit, size_t n)
{
	static const char head[] = "{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_visa\", \"description\": \"";
	static const char tail[] = "\"}";
	size_t ulen = strlen(unit), i;
	char *s = malloc(sizeof(head) + ulen * n + sizeof(tail));
	char *p;

	assert_non_null(s);
	memcpy(s, head, sizeof(head) - 1);
	p = s + sizeof(head) - 1;
	for (i = 0; i < n; i++, p += ulen)
		memcpy(p, unit, ulen);
	memcpy(p, tail, sizeof(tail));
	return s;
}

static void test_parse_accepts_1000_character_multibyte_description(void **state)
{
	char *text = body_with_description("\xE2\x82\xAC", 1000);
	struct chargereq req;
	struct body_error err;

	(void)state;
	assert_int_equal(chargereq_parse(&req, text, strlen(text), &err), PAY_OK);
	assert_int_equal(strlen(req.description), 3000);
	chargereq_fini(&req);
	free(text);
}

static void test_parse_refuses_1001_character_multibyte_description(void **state)
{
	char *text = body_with_description("\xC3\xA9", 1001);

	(void)state;
	assert_refused(text, PAY_ESTRING_TOO_LONG, "description");
	free(text);
}

static void test_parse_refuses_bad_metadata(void **state)
{
	(void)state;
	assert_refused("{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_visa\", \"metadata\": \"x\"}",
		       PAY_EMETADATA, "metadata");
	assert_refused("{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_visa\","
		       " \"metadata\": {\"a\": 1}}", PAY_EMETADATA, "metadata");
	assert_refused("{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_visa\","
		       " \"metadata\": {\"a\": {\"b\": \"c\"}}}", PAY_EMETADATA, "metadata");
	assert_refused("{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_visa\","
		       " \"metadata\": {\"\": \"v\"}}", PAY_EMETADATA, "metadata");
	assert_refused("{\"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_visa\","
		       " \"metadata\": {\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": \"v\"}}",
		       PAY_EMETADATA, "metadata");
}

static void test_parse_preserves_metadata_order(void **state)
{
	static const char text[] = "{\"metadata\": {\"z\": \"1\", \"a\": \"2\", \"m\": \"3\"},"
				   " \"amount\": 1, \"currency\": \"usd\", \"source\": \"tok_visa\"}";
	struct chargereq req;
	struct body_error err;

	(void)state;
	assert_int_equal(chargereq_parse(&req, text, sizeof(text) - 1, &err), PAY_OK);
	assert_string_equal(req.metadata_json, "{\"z\":\"1\",\"a\":\"2\",\"m\":\"3\"}");
	chargereq_fini(&req);
}

static void test_parse_fingerprint_ignores_key_order_and_white_space(void **state)
{
	static const char a[] = "{\"amount\":5000,\"currency\":\"usd\",\"source\":\"tok_visa\"}";
	static const char b[] = "{ \"source\" : \"tok_visa\",\n\t\"currency\": \"usd\", \"amount\": 5000 }";
	static const char c[] = "{\"amount\":5001,\"currency\":\"usd\",\"source\":\"tok_visa\"}";
	struct chargereq ra, rb, rc;
	struct body_error err;

	(void)state;
	assert_int_equal(chargereq_parse(&ra, a, sizeof(a) - 1, &err), PAY_OK);
	assert_int_equal(chargereq_parse(&rb, b, sizeof(b) - 1, &err), PAY_OK);
	assert_int_equal(chargereq_parse(&rc, c, sizeof(c) - 1, &err), PAY_OK);
	assert_memory_equal(ra.fingerprint, rb.fingerprint, CANON_FINGERPRINT_BYTES);
	assert_memory_not_equal(ra.fingerprint, rc.fingerprint, CANON_FINGERPRINT_BYTES);
	chargereq_fini(&ra);
	chargereq_fini(&rb);
	chargereq_fini(&rc);
}

static void test_parse_fingerprint_is_sha256_of_canonical_request(void **state)
{
	static const char text[] = "{\"source\": \"tok_visa\", \"amount\": 5000, \"currency\": \"usd\"}";
	static const char canon[] =
		"POST\n/v1/charges\n{\"amount\":5000,\"currency\":\"usd\",\"source\":\"tok_visa\"}";
	unsigned char want[CANON_FINGERPRINT_BYTES];
	struct chargereq req;
	struct body_error err;

	(void)state;
	crypto_hash_sha256(want, (const unsigned char *)canon, sizeof(canon) - 1);
	assert_int_equal(chargereq_parse(&req, text, sizeof(text) - 1, &err), PAY_OK);
	assert_memory_equal(req.fingerprint, want, sizeof(want));
	chargereq_fini(&req);
}

static void test_fini_is_safe_on_zeroed_request(void **state)
{
	struct chargereq req;

	(void)state;
	memset(&req, 0, sizeof(req));
	chargereq_fini(&req);
	assert_null(req.root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accepts_a_valid_body),
		cmocka_unit_test(test_parse_accepts_minimal_body_without_optional_fields),
		cmocka_unit_test(test_parse_sets_declined_outcome),
		cmocka_unit_test(test_parse_refuses_malformed_json),
		cmocka_unit_test(test_parse_refuses_unknown_field),
		cmocka_unit_test(test_parse_refuses_server_owned_status),
		cmocka_unit_test(test_parse_refuses_server_owned_id),
		cmocka_unit_test(test_parse_refuses_server_owned_amount_refunded),
		cmocka_unit_test(test_parse_refuses_missing_amount),
		cmocka_unit_test(test_parse_refuses_float_amount),
		cmocka_unit_test(test_parse_refuses_string_amount),
		cmocka_unit_test(test_parse_refuses_zero_amount),
		cmocka_unit_test(test_parse_refuses_too_large_amount),
		cmocka_unit_test(test_parse_refuses_bad_currency),
		cmocka_unit_test(test_parse_refuses_missing_currency),
		cmocka_unit_test(test_parse_refuses_non_string_currency),
		cmocka_unit_test(test_parse_refuses_missing_source),
		cmocka_unit_test(test_parse_refuses_non_string_source),
		cmocka_unit_test(test_parse_refuses_unknown_source),
		cmocka_unit_test(test_parse_refuses_too_long_source),
		cmocka_unit_test(test_parse_refuses_non_string_description),
		cmocka_unit_test(test_parse_accepts_1000_character_multibyte_description),
		cmocka_unit_test(test_parse_refuses_1001_character_multibyte_description),
		cmocka_unit_test(test_parse_refuses_bad_metadata),
		cmocka_unit_test(test_parse_preserves_metadata_order),
		cmocka_unit_test(test_parse_fingerprint_ignores_key_order_and_white_space),
		cmocka_unit_test(test_parse_fingerprint_is_sha256_of_canonical_request),
		cmocka_unit_test(test_fini_is_safe_on_zeroed_request),
		cmocka_unit_test(test_parse_reads_capture_of_either_format),
		cmocka_unit_test(test_parse_refuses_non_boolean_capture),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("chargereq", tests, NULL, NULL);
}

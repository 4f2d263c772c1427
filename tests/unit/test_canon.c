/* test_canon.c - unit tests of canonical JSON and request fingerprints (canon.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "canon.h"
#include "err.h"

/* Parses text (which must be valid JSON) into a new reference. */
static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	if (v == NULL)
		fail_msg("cannot parse %s: %s", text, jerr.text);
	return v;
}

/* Returns the lowercase hex of a fingerprint in hex (2 * CANON_FINGERPRINT_BYTES + 1 bytes). */
static void fingerprint_hex(const char *method, const char *route, const char *body, char *hex)
{
	unsigned char fp[CANON_FINGERPRINT_BYTES];
	json_t *v = parse(body);

	assert_int_equal(canon_fingerprint(method, route, v, fp), PAY_OK);
	sodium_bin2hex(hex, 2 * CANON_FINGERPRINT_BYTES + 1, fp, sizeof(fp));
	json_decref(v);
}

static void test_dump_sorts_keys_and_drops_white_space(void **state)
{
	json_t *v = parse("{ \"b\" : 1,\n \"a\" :\t[ 1 , 2 ],  \"c\" : { \"z\" : null , \"y\" : true } }");
	char *s = canon_dump(v);

	(void)state;
	assert_non_null(s);
	assert_string_equal(s, "{\"a\":[1,2],\"b\":1,\"c\":{\"y\":true,\"z\":null}}");
	free(s);
	json_decref(v);
}

static void test_dump_escapes_non_ascii(void **state)
{
	json_t *v = parse("{\"d\": \"caf\xC3\xA9 \xF0\x9F\x98\x80\"}");
	char *s = canon_dump(v);

	(void)state;
	assert_non_null(s);
	assert_string_equal(s, "{\"d\":\"caf\\u00E9 \\uD83D\\uDE00\"}");
	free(s);
	json_decref(v);
}

static void test_dump_treats_escaped_and_raw_text_alike(void **state)
{
	json_t *a = parse("{\"d\": \"caf\xC3\xA9\"}");
	json_t *b = parse("{\"d\": \"caf\\u00e9\"}");
	char *sa = canon_dump(a), *sb = canon_dump(b);

	(void)state;
	assert_string_equal(sa, sb);
	free(sa);
	free(sb);
	json_decref(a);
	json_decref(b);
}

static void test_dump_keeps_array_order(void **state)
{
	json_t *v = parse("[3, 1, 2]");
	char *s = canon_dump(v);

	(void)state;
	assert_string_equal(s, "[3,1,2]");
	free(s);
	json_decref(v);
}

static void test_fingerprint_matches_fixed_vector(void **state)
{
	/* printf 'POST\n/v1/charges\n{"a":1}' | sha256sum */
	char hex[2 * CANON_FINGERPRINT_BYTES + 1];

	(void)state;
	fingerprint_hex("POST", "/v1/charges", "{ \"a\" : 1 }", hex);
	assert_string_equal(hex, "258bce76ead2bdd9c0f9590b77c57ddecb79289fba32b9ac9bcf1ed0038c53df");
}

static void test_fingerprint_ignores_key_order_and_white_space(void **state)
{
	char a[2 * CANON_FINGERPRINT_BYTES + 1], b[2 * CANON_FINGERPRINT_BYTES + 1];

	(void)state;
	fingerprint_hex("POST", "/v1/charges",
			"{\"amount\":5000,\"currency\":\"usd\",\"metadata\":{\"x\":\"1\",\"y\":\"2\"}}", a);
	fingerprint_hex("POST", "/v1/charges",
			"{\n  \"metadata\": { \"y\": \"2\", \"x\": \"1\" },\n  \"currency\": \"usd\",\n"
			"  \"amount\": 5000\n}\n", b);
	assert_string_equal(a, b);
}

static void test_fingerprint_differs_for_different_amount(void **state)
{
	char a[2 * CANON_FINGERPRINT_BYTES + 1], b[2 * CANON_FINGERPRINT_BYTES + 1];

	(void)state;
	fingerprint_hex("POST", "/v1/charges", "{\"amount\":5000,\"currency\":\"usd\"}", a);
	fingerprint_hex("POST", "/v1/charges", "{\"amount\":5001,\"currency\":\"usd\"}", b);
	assert_string_not_equal(a, b);
}

static void test_fingerprint_differs_for_different_route(void **state)
{
	char a[2 * CANON_FINGERPRINT_BYTES + 1], b[2 * CANON_FINGERPRINT_BYTES + 1];

	(void)state;
	fingerprint_hex("POST", "/v1/charges", "{\"amount\":5000}", a);
	fingerprint_hex("POST", "/v1/refunds", "{\"amount\":5000}", b);
	assert_string_not_equal(a, b);
}

static void test_fingerprint_differs_for_different_method(void **state)
{
	char a[2 * CANON_FINGERPRINT_BYTES + 1], b[2 * CANON_FINGERPRINT_BYTES + 1];

	(void)state;
	fingerprint_hex("POST", "/v1/charges", "{\"amount\":5000}", a);
	fingerprint_hex("PUT", "/v1/charges", "{\"amount\":5000}", b);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_sorts_keys_and_drops_white_space),
		cmocka_unit_test(test_dump_escapes_non_ascii),
		cmocka_unit_test(test_dump_treats_escaped_and_raw_text_alike),
		cmocka_unit_test(test_dump_keeps_array_order),
		cmocka_unit_test(test_fingerprint_matches_fixed_vector),
		cmocka_unit_test(test_fingerprint_ignores_key_order_and_white_space),
		cmocka_unit_test(test_fingerprint_differs_for_different_amount),
		cmocka_unit_test(test_fingerprint_differs_for_different_route),
		cmocka_unit_test(test_fingerprint_differs_for_different_method),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("canon", tests, NULL, NULL);
}

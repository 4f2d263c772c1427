/* test_body.c - unit tests of strict JSON body decoding (body.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"
#include "err.h"

/* Loads text, which must be a valid object, and returns the new reference. */
static json_t *load_ok(const char *text)
{
	struct body_error err;
	json_t *root = NULL;

	memset(&err, 0, sizeof(err));
	assert_int_equal(body_load(text, strlen(text), &root, &err), PAY_OK);
	assert_non_null(root);
	return root;
}

/* Asserts that text is refused by body_load with PAY_EJSON and no root. */
static void assert_load_refused(const char *text, size_t len)
{
	struct body_error err;
	json_t *root = (json_t *)&err;   /* any non-NULL value: body_load must clear it */

	memset(&err, 0, sizeof(err));
	assert_int_equal(body_load(text, len, &root, &err), PAY_EJSON);
	assert_null(root);
	assert_int_equal(err.err, PAY_EJSON);
	assert_string_equal(err.param, "");
	assert_true(err.message[0] != '\0');
}

static void test_load_accepts_an_object(void **state)
{
	json_t *root = load_ok("{\"amount\": 5000, \"currency\": \"usd\"}");

	(void)state;
	assert_true(json_is_object(root));
	assert_int_equal(json_integer_value(json_object_get(root, "amount")), 5000);
	json_decref(root);
}

static void test_load_accepts_an_empty_object(void **state)
{
	json_t *root = load_ok("{}");

	(void)state;
	assert_int_equal(json_object_size(root), 0);
	json_decref(root);
}

static void test_load_refuses_duplicate_keys(void **state)
{
	static const char text[] = "{\"amount\": 1, \"amount\": 2}";

	(void)state;
	assert_load_refused(text, sizeof(text) - 1);
}

static void test_load_refuses_duplicate_keys_in_nested_object(void **state)
{
	static const char text[] = "{\"metadata\": {\"a\": \"1\", \"a\": \"2\"}}";

	(void)state;
	assert_load_refused(text, sizeof(text) - 1);
}

static void test_load_refuses_an_array(void **state)
{
	static const char text[] = "[{\"amount\": 1}]";

	(void)state;
	assert_load_refused(text, sizeof(text) - 1);
}

static void test_load_refuses_scalars(void **state)
{
	(void)state;
	assert_load_refused("42", 2);
	assert_load_refused("\"text\"", 6);
	assert_load_refused("true", 4);
	assert_load_refused("null", 4);
}

static void test_load_refuses_malformed_json(void **state)
{
	(void)state;
	assert_load_refused("{\"amount\": }", 12);
	assert_load_refused("{\"amount\": 1", 12);
	assert_load_refused("{amount: 1}", 11);
	assert_load_refused("{\"amount\": 1,}", 14);
	assert_load_refused("{} {}", 5);
}

static void test_load_refuses_empty_input(void **state)
{
	(void)state;
	assert_load_refused("", 0);
	assert_load_refused("   ", 3);
}

static void test_load_refuses_nul_in_string(void **state)
{
	static const char text[] = "{\"description\": \"a\\u0000b\"}";

	(void)state;
	assert_load_refused(text, sizeof(text) - 1);
}

static void test_load_refuses_raw_nul_byte(void **state)
{
	static const char text[] = "{\"a\": \"x\0y\"}";

	(void)state;
	assert_load_refused(text, sizeof(text) - 1);
}

static void test_load_refuses_invalid_utf8(void **state)
{
	static const char text[] = "{\"description\": \"\xC3\x28\"}";

	(void)state;
	assert_load_refused(text, sizeof(text) - 1);
}

static void test_load_reads_only_len_bytes(void **state)
{
	static const char text[] = "{\"a\": 1}garbage";
	struct body_error err;
	json_t *root = NULL;

	(void)state;
	assert_int_equal(body_load(text, 8, &root, &err), PAY_OK);
	json_decref(root);
}

static void test_check_fields_accepts_allowed_keys(void **state)
{
	static const char *const allowed[] = { "amount", "currency", NULL };
	struct body_error err;
	json_t *root = load_ok("{\"currency\": \"usd\", \"amount\": 1}");

	(void)state;
	assert_int_equal(body_check_fields(root, allowed, &err), PAY_OK);
	json_decref(root);
}

static void test_check_fields_names_the_unknown_param(void **state)
{
	static const char *const allowed[] = { "amount", "currency", NULL };
	struct body_error err;
	json_t *root = load_ok("{\"amount\": 1, \"colour\": \"red\", \"currency\": \"usd\"}");

	(void)state;
	memset(&err, 0, sizeof(err));
	assert_int_equal(body_check_fields(root, allowed, &err), PAY_EPARAM_UNKNOWN);
	assert_int_equal(err.err, PAY_EPARAM_UNKNOWN);
	assert_string_equal(err.param, "colour");
	assert_non_null(strstr(err.message, "colour"));
	json_decref(root);
}

static void test_check_fields_is_case_sensitive(void **state)
{
	static const char *const allowed[] = { "amount", NULL };
	struct body_error err;
	json_t *root = load_ok("{\"Amount\": 1}");

	(void)state;
	assert_int_equal(body_check_fields(root, allowed, &err), PAY_EPARAM_UNKNOWN);
	assert_string_equal(err.param, "Amount");
	json_decref(root);
}

static void test_check_fields_refuses_everything_with_empty_list(void **state)
{
	static const char *const allowed[] = { NULL };
	struct body_error err;
	json_t *root = load_ok("{\"id\": \"ch_1\"}");

	(void)state;
	assert_int_equal(body_check_fields(root, allowed, &err), PAY_EPARAM_UNKNOWN);
	assert_string_equal(err.param, "id");
	json_decref(root);
}

static void test_get_string_returns_borrowed_value(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"currency\": \"usd\"}");
	const char *s = NULL;

	(void)state;
	assert_int_equal(body_get_string(root, "currency", true, 3, &s, &err), PAY_OK);
	assert_string_equal(s, "usd");
	json_decref(root);
}

static void test_get_string_reports_missing_required(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{}");
	const char *s = "x";

	(void)state;
	assert_int_equal(body_get_string(root, "source", true, 255, &s, &err), PAY_EPARAM_MISSING);
	assert_null(s);
	assert_string_equal(err.param, "source");
	json_decref(root);
}

static void test_get_string_treats_null_as_missing(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"description\": null, \"source\": null}");
	const char *s = "x";

	(void)state;
	assert_int_equal(body_get_string(root, "description", false, 10, &s, &err), PAY_OK);
	assert_null(s);
	assert_int_equal(body_get_string(root, "source", true, 10, &s, &err), PAY_EPARAM_MISSING);
	json_decref(root);
}

static void test_get_string_refuses_wrong_type(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"source\": 42}");
	const char *s = NULL;

	(void)state;
	assert_int_equal(body_get_string(root, "source", true, 255, &s, &err), PAY_EPARAM_TYPE);
	assert_string_equal(err.param, "source");
	json_decref(root);
}

static void test_get_string_counts_characters_not_bytes(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"d\": \"\xC3\xA9\xC3\xA9\xC3\xA9\"}");
	const char *s = NULL;

	(void)state;
	assert_int_equal(body_get_string(root, "d", false, 3, &s, &err), PAY_OK);
	assert_int_equal(body_get_string(root, "d", false, 2, &s, &err), PAY_ESTRING_TOO_LONG);
	assert_string_equal(err.param, "d");
	json_decref(root);
}

static void test_get_integer_reads_value(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"amount\": 99999999}");
	long long v = 0;
	bool present = false;

	(void)state;
	assert_int_equal(body_get_integer(root, "amount", true, &v, &present, &err), PAY_OK);
	assert_true(present);
	assert_int_equal(v, 99999999);
	json_decref(root);
}

static void test_get_integer_refuses_real(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"amount\": 5000.0}");
	long long v = 0;
	bool present = true;

	(void)state;
	assert_int_equal(body_get_integer(root, "amount", true, &v, &present, &err), PAY_EPARAM_TYPE);
	assert_false(present);
	assert_string_equal(err.param, "amount");
	json_decref(root);
}

static void test_get_integer_refuses_string(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"amount\": \"5000\"}");
	long long v = 0;
	bool present;

	(void)state;
	assert_int_equal(body_get_integer(root, "amount", true, &v, &present, &err), PAY_EPARAM_TYPE);
	json_decref(root);
}

static void test_get_integer_reports_missing(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"amount\": null}");
	long long v = 0;
	bool present = true;

	(void)state;
	assert_int_equal(body_get_integer(root, "amount", true, &v, &present, &err),
			 PAY_EPARAM_MISSING);
	assert_string_equal(err.param, "amount");
	assert_int_equal(body_get_integer(root, "amount", false, &v, &present, &err), PAY_OK);
	assert_false(present);
	json_decref(root);
}

static void test_get_metadata_defaults_to_empty_object(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{}");
	char *md = NULL;

	(void)state;
	assert_int_equal(body_get_metadata(root, &md, &err), PAY_OK);
	assert_string_equal(md, "{}");
	free(md);
	json_decref(root);
}

static void test_get_metadata_treats_null_as_empty(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"metadata\": null}");
	char *md = NULL;

	(void)state;
	assert_int_equal(body_get_metadata(root, &md, &err), PAY_OK);
	assert_string_equal(md, "{}");
	free(md);
	json_decref(root);
}

static void test_get_metadata_keeps_client_key_order(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"metadata\": {\"zeta\": \"1\", \"alpha\": \"2\", \"mid\": \"\"}}");
	char *md = NULL;

	(void)state;
	assert_int_equal(body_get_metadata(root, &md, &err), PAY_OK);
	assert_string_equal(md, "{\"zeta\":\"1\",\"alpha\":\"2\",\"mid\":\"\"}");
	free(md);
	json_decref(root);
}

static void test_get_metadata_refuses_non_object(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"metadata\": [\"a\"]}");
	char *md = NULL;

	(void)state;
	assert_int_equal(body_get_metadata(root, &md, &err), PAY_EMETADATA);
	assert_null(md);
	assert_string_equal(err.param, "metadata");
	json_decref(root);
}

static void test_get_metadata_refuses_non_string_value(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"metadata\": {\"n\": 1}}");
	char *md = NULL;

	(void)state;
	assert_int_equal(body_get_metadata(root, &md, &err), PAY_EMETADATA);
	assert_null(md);
	json_decref(root);
}

static void test_get_metadata_refuses_empty_key(void **state)
{
	struct body_error err;
	json_t *root = load_ok("{\"metadata\": {\"\": \"v\"}}");
	char *md = NULL;

	(void)state;
	assert_int_equal(body_get_metadata(root, &md, &err), PAY_EMETADATA);
	json_decref(root);
}

/* Builds {"metadata": {"k0": "v", ..., "k<n-1>": "v"}} and returns the result of body_get_metadata. */
static int metadata_with_keys(size_t n)
{
	struct body_error err;
	json_t *root = json_object(), *md = json_object();
	char key[16], *out = NULL;
	size_t i;
	int rc;

	assert_non_null(root);
	assert_non_null(md);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		assert_int_equal(json_object_set_new(md, key, json_string("v")), 0);
	}
	assert_int_equal(json_object_set_new(root, "metadata", md), 0);
	rc = body_get_metadata(root, &out, &err);
	free(out);
	json_decref(root);
	return rc;
}

static void test_get_metadata_accepts_50_keys_and_refuses_51(void **state)
{
	(void)state;
	assert_int_equal(metadata_with_keys(50), PAY_OK);
	assert_int_equal(metadata_with_keys(51), PAY_EMETADATA);
}

static void test_fail_fills_error(void **state)
{
	struct body_error err;

	(void)state;
	assert_int_equal(body_fail(&err, PAY_EPARAM_INVALID, "amount", "bad %d", 7),
			 PAY_EPARAM_INVALID);
	assert_int_equal(err.err, PAY_EPARAM_INVALID);
	assert_string_equal(err.param, "amount");
	assert_string_equal(err.message, "bad 7");
	assert_int_equal(body_fail(&err, PAY_EJSON, NULL, NULL), PAY_EJSON);
	assert_string_equal(err.param, "");
	assert_string_equal(err.message, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_accepts_an_object),
		cmocka_unit_test(test_load_accepts_an_empty_object),
		cmocka_unit_test(test_load_refuses_duplicate_keys),
		cmocka_unit_test(test_load_refuses_duplicate_keys_in_nested_object),
		cmocka_unit_test(test_load_refuses_an_array),
		cmocka_unit_test(test_load_refuses_scalars),
		cmocka_unit_test(test_load_refuses_malformed_json),
		cmocka_unit_test(test_load_refuses_empty_input),
		cmocka_unit_test(test_load_refuses_nul_in_string),
		cmocka_unit_test(test_load_refuses_raw_nul_byte),
		cmocka_unit_test(test_load_refuses_invalid_utf8),
		cmocka_unit_test(test_load_reads_only_len_bytes),
		cmocka_unit_test(test_check_fields_accepts_allowed_keys),
		cmocka_unit_test(test_check_fields_names_the_unknown_param),
		cmocka_unit_test(test_check_fields_is_case_sensitive),
		cmocka_unit_test(test_check_fields_refuses_everything_with_empty_list),
		cmocka_unit_test(test_get_string_returns_borrowed_value),
		cmocka_unit_test(test_get_string_reports_missing_required),
		cmocka_unit_test(test_get_string_treats_null_as_missing),
		cmocka_unit_test(test_get_string_refuses_wrong_type),
		cmocka_unit_test(test_get_string_counts_characters_not_bytes),
		cmocka_unit_test(test_get_integer_reads_value),
		cmocka_unit_test(test_get_integer_refuses_real),
		cmocka_unit_test(test_get_integer_refuses_string),
		cmocka_unit_test(test_get_integer_reports_missing),
		cmocka_unit_test(test_get_metadata_defaults_to_empty_object),
		cmocka_unit_test(test_get_metadata_treats_null_as_empty),
		cmocka_unit_test(test_get_metadata_keeps_client_key_order),
		cmocka_unit_test(test_get_metadata_refuses_non_object),
		cmocka_unit_test(test_get_metadata_refuses_non_string_value),
		cmocka_unit_test(test_get_metadata_refuses_empty_key),
		cmocka_unit_test(test_get_metadata_accepts_50_keys_and_refuses_51),
		cmocka_unit_test(test_fail_fills_error),
	};

	return cmocka_run_group_tests_name("body", tests, NULL, NULL);
}

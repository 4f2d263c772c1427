/* test_form.c - unit tests of form bodies with bracket notation (form.c) and their validation as charges and refunds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"
#include "chargereq.h"
#include "err.h"
#include "form.h"
#include "refundreq.h"

/* Decodes text, which must be accepted, and checks it equals the JSON want. */
static void assert_decodes_to(const char *text, const char *want)
{
	struct body_error err;
	json_t *root = NULL, *expected = json_loads(want, 0, NULL);
	char *got;

	memset(&err, 0, sizeof(err));
	assert_non_null(expected);
	assert_int_equal(form_decode(text, strlen(text), &root, &err), PAY_OK);
	if (!json_equal(root, expected)) {
		got = json_dumps(root, JSON_COMPACT);
		fail_msg("%s decoded to %s, not %s", text, got, want);
	}
	json_decref(root);
	json_decref(expected);
}

/* Asserts that len bytes of text are refused with PAY_EFORM naming param (NULL: none) and no root. */
static void assert_refused(const char *text, size_t len, const char *param)
{
	struct body_error err;
	json_t *root = (json_t *)&err;

	memset(&err, 0, sizeof(err));
	assert_int_equal(form_decode(text, len, &root, &err), PAY_EFORM);
	assert_null(root);
	assert_int_equal(err.err, PAY_EFORM);
	assert_string_equal(err.param, param ? param : "");
	assert_true(err.message[0] != '\0');
}

#define REFUSED(text, param) assert_refused(text, sizeof(text) - 1, param)

static void test_decode_flat_fields_as_strings(void **state)
{
	(void)state;
	assert_decodes_to("amount=2000&currency=usd&source=tok_visa",
			  "{\"amount\":\"2000\",\"currency\":\"usd\",\"source\":\"tok_visa\"}");
}

static void test_decode_percent_escapes_and_plus(void **state)
{
	(void)state;
	assert_decodes_to("description=Order+123%2C+%E2%82%AC5%2B1%25",
			  "{\"description\":\"Order 123, \\u20ac5+1%\"}");
	assert_decodes_to("url=https%3A%2F%2Fshop.example%2Fhooks%3Fa%3Db",
			  "{\"url\":\"https://shop.example/hooks?a=b\"}");
}

static void test_decode_brackets_make_an_object(void **state)
{
	(void)state;
	assert_decodes_to("metadata[order_id]=6735&metadata[note]=x",
			  "{\"metadata\":{\"order_id\":\"6735\",\"note\":\"x\"}}");
	/* Brackets may arrive percent-encoded, as some clients escape them. */
	assert_decodes_to("metadata%5Border_id%5D=6735", "{\"metadata\":{\"order_id\":\"6735\"}}");
}

static void test_decode_indices_and_empty_brackets_make_arrays(void **state)
{
	(void)state;
	/* stripe-node (qs, arrayFormat indices) and stripe-python send [0], [1]. */
	assert_decodes_to("enabled_events[0]=charge.succeeded&enabled_events[1]=charge.failed",
			  "{\"enabled_events\":[\"charge.succeeded\",\"charge.failed\"]}");
	/* Older clients send name[] for each element. */
	assert_decodes_to("expand[]=a&expand[]=b", "{\"expand\":[\"a\",\"b\"]}");
}

static void test_decode_arrays_of_objects(void **state)
{
	(void)state;
	assert_decodes_to("items[0][price]=p&items[0][qty]=2&items[1][price]=q",
			  "{\"items\":[{\"price\":\"p\",\"qty\":\"2\"},{\"price\":\"q\"}]}");
}

static void test_decode_digits_are_object_keys_unless_an_array_starts(void **state)
{
	(void)state;
	assert_decodes_to("metadata[123]=x&metadata[0]=y", "{\"metadata\":{\"123\":\"x\",\"0\":\"y\"}}");
	assert_decodes_to("metadata[01]=x", "{\"metadata\":{\"01\":\"x\"}}");
}

static void test_decode_skips_empty_pairs_and_keeps_empty_values(void **state)
{
	(void)state;
	assert_decodes_to("&&a=&b&", "{\"a\":\"\",\"b\":\"\"}");
	assert_decodes_to("", "{}");
	assert_decodes_to("a=x=y", "{\"a\":\"x=y\"}");
}

static void test_decode_refuses_a_field_given_twice(void **state)
{
	(void)state;
	REFUSED("amount=1&amount=2", "amount");
	REFUSED("metadata[a]=1&metadata[a]=2", "metadata[a]");
	REFUSED("e[0]=a&e[0]=b", "e[0]");
}

static void test_decode_refuses_array_indices_out_of_order(void **state)
{
	(void)state;
	REFUSED("e[0]=a&e[1]=b&e[3]=c", "e[3]");
	REFUSED("e[0]=a&e[2]=b", "e[2]");
	REFUSED("e[0]=a&e[x]=b", "e[x]");
}

static void test_decode_refuses_a_value_that_is_also_a_container(void **state)
{
	(void)state;
	REFUSED("a=1&a[b]=2", "a[b]");
	REFUSED("a[b]=2&a=1", "a");
	REFUSED("a[b]=2&a[]=1", "a[]");
}

static void test_decode_refuses_malformed_names(void **state)
{
	(void)state;
	REFUSED("=x", "");
	REFUSED("[a]=x", "[a]");
	REFUSED("a[b=x", "a[b");
	REFUSED("a]b=x", "a]b");
	REFUSED("a[b]c=x", "a[b]c");
	REFUSED("a[b[c]]=x", "a[b[c]]");
	REFUSED("a[1][2][3][4][5]=x", "a[1][2][3][4][5]");
}

static void test_decode_refuses_bad_escapes_nul_and_invalid_utf8(void **state)
{
	(void)state;
	REFUSED("a=%ZZ", "a");
	REFUSED("a=%4", "a");
	REFUSED("a=%", "a");
	REFUSED("a=%00", "a");
	REFUSED("a%00=1", NULL);
	REFUSED("a=%C3%28", "a");
	REFUSED("%FF=1", NULL);
	assert_refused("a=x\0y", 5, "a");
}

static void test_decode_refuses_oversized_names_and_too_many_fields(void **state)
{
	char *text = malloc(8 * (FORM_MAX_FIELDS + 1) + 1);
	size_t n = 0;
	int i;

	(void)state;
	assert_non_null(text);
	for (i = 0; i < FORM_MAX_NAME + 1; i++)
		text[n++] = 'a';
	memcpy(text + n, "=1", 3);
	assert_refused(text, strlen(text), NULL);
	n = 0;
	for (i = 0; i <= FORM_MAX_FIELDS; i++)
		n += (size_t)sprintf(text + n, "k%d=1&", i);
	assert_refused(text, n, NULL);
	free(text);
}

static void test_form_integer_converts_only_plain_decimals(void **state)
{
	json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "a", "2000", "b", "-5",
				"c", "05", "d", "+5", "e", "1e3", "f", "", "g", 7);

	(void)state;
	assert_non_null(obj);
	assert_int_equal(body_form_integer(obj, "a"), PAY_OK);
	assert_int_equal(body_form_integer(obj, "b"), PAY_OK);
	assert_int_equal(body_form_integer(obj, "c"), PAY_OK);
	assert_int_equal(body_form_integer(obj, "d"), PAY_OK);
	assert_int_equal(body_form_integer(obj, "e"), PAY_OK);
	assert_int_equal(body_form_integer(obj, "f"), PAY_OK);
	assert_int_equal(body_form_integer(obj, "g"), PAY_OK);
	assert_int_equal(body_form_integer(obj, "missing"), PAY_OK);
	assert_int_equal(json_integer_value(json_object_get(obj, "a")), 2000);
	assert_int_equal(json_integer_value(json_object_get(obj, "b")), -5);
	assert_true(json_is_string(json_object_get(obj, "c")));
	assert_true(json_is_string(json_object_get(obj, "d")));
	assert_true(json_is_string(json_object_get(obj, "e")));
	assert_true(json_is_string(json_object_get(obj, "f")));
	assert_int_equal(json_integer_value(json_object_get(obj, "g")), 7);
	json_decref(obj);
}

static void test_charge_form_and_json_share_fields_and_fingerprint(void **state)
{
	static const char form[] = "amount=2000&currency=usd&source=tok_visa&description=Order+123"
				   "&metadata[order_id]=6735";
	static const char json[] = "{\"amount\":2000,\"currency\":\"usd\",\"source\":\"tok_visa\","
				   "\"description\":\"Order 123\",\"metadata\":{\"order_id\":\"6735\"}}";
	struct chargereq f, j;
	struct body_error err;

	(void)state;
	memset(&err, 0, sizeof(err));
	assert_int_equal(chargereq_parse_as(&f, form, sizeof(form) - 1, BODY_FORMAT_FORM, &err), PAY_OK);
	assert_int_equal(chargereq_parse_as(&j, json, sizeof(json) - 1, BODY_FORMAT_JSON, &err), PAY_OK);
	assert_int_equal(f.amount, 2000);
	assert_string_equal(f.currency, "usd");
	assert_string_equal(f.description, "Order 123");
	assert_string_equal(f.metadata_json, j.metadata_json);
	assert_memory_equal(f.fingerprint, j.fingerprint, sizeof(f.fingerprint));
	chargereq_fini(&f);
	chargereq_fini(&j);
}

static void test_charge_form_refusals_match_json_ones(void **state)
{
	static const struct {
		const char *form;
		int err;
		const char *param;
	} cases[] = {
		{ "currency=usd&source=tok_visa", PAY_EPARAM_MISSING, "amount" },
		{ "amount=20.5&currency=usd&source=tok_visa", PAY_EPARAM_TYPE, "amount" },
		{ "amount=abc&currency=usd&source=tok_visa", PAY_EPARAM_TYPE, "amount" },
		{ "amount=0&currency=usd&source=tok_visa", PAY_EAMOUNT_TOO_SMALL, "amount" },
		{ "amount=100000000&currency=usd&source=tok_visa", PAY_EAMOUNT_TOO_LARGE, "amount" },
		{ "amount[x]=1&currency=usd&source=tok_visa", PAY_EPARAM_TYPE, "amount" },
		{ "amount=1&currency=USD&source=tok_visa", PAY_ECURRENCY, "currency" },
		{ "amount=1&currency=usd&source=tok_nope", PAY_ESOURCE, "source" },
		{ "amount=1&currency=usd&source=tok_visa&id=ch_x", PAY_EPARAM_UNKNOWN, "id" },
		{ "amount=1&currency=usd&source=tok_visa&metadata=x", PAY_EMETADATA, "metadata" },
		{ "amount=1&currency=usd&source=tok_visa&amount=2", PAY_EFORM, "amount" },
	};
	struct chargereq req;
	struct body_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(chargereq_parse_as(&req, cases[i].form, strlen(cases[i].form),
						    BODY_FORMAT_FORM, &err), cases[i].err);
		assert_string_equal(err.param, cases[i].param);
		assert_null(req.root);
	}
}

static void test_charge_form_names_a_metadata_key_in_bracket_form(void **state)
{
	char form[700];
	struct chargereq req;
	struct body_error err;

	(void)state;
	snprintf(form, sizeof(form), "amount=1&currency=usd&source=tok_visa&metadata[order_id]=%0501d", 0);
	memset(&err, 0, sizeof(err));
	assert_int_equal(chargereq_parse_as(&req, form, strlen(form), BODY_FORMAT_FORM, &err),
			 PAY_EMETADATA);
	assert_string_equal(err.param, "metadata[order_id]");
	/* JSON keeps naming the whole object, as it always did. */
	snprintf(form, sizeof(form), "{\"amount\":1,\"currency\":\"usd\",\"source\":\"tok_visa\","
		 "\"metadata\":{\"order_id\":\"%0501d\"}}", 0);
	assert_int_equal(chargereq_parse_as(&req, form, strlen(form), BODY_FORMAT_JSON, &err),
			 PAY_EMETADATA);
	assert_string_equal(err.param, "metadata");
}

static void test_charge_json_stays_strict_about_numbers_in_strings(void **state)
{
	static const char json[] = "{\"amount\":\"2000\",\"currency\":\"usd\",\"source\":\"tok_visa\"}";
	struct chargereq req;
	struct body_error err;

	(void)state;
	memset(&err, 0, sizeof(err));
	assert_int_equal(chargereq_parse_as(&req, json, sizeof(json) - 1, BODY_FORMAT_JSON, &err),
			 PAY_EPARAM_TYPE);
	assert_string_equal(err.param, "amount");
}

static void test_refund_form_and_json_share_fields_and_fingerprint(void **state)
{
	static const char form[] = "charge=ch_aaaaaaaaaaaaaaaaaaaaaaaa&amount=500&reason=duplicate";
	static const char json[] = "{\"charge\":\"ch_aaaaaaaaaaaaaaaaaaaaaaaa\",\"amount\":500,"
				   "\"reason\":\"duplicate\"}";
	struct refundreq f, j;
	struct body_error err;

	(void)state;
	memset(&err, 0, sizeof(err));
	assert_int_equal(refundreq_parse_as(&f, form, sizeof(form) - 1, BODY_FORMAT_FORM, &err), PAY_OK);
	assert_int_equal(refundreq_parse_as(&j, json, sizeof(json) - 1, BODY_FORMAT_JSON, &err), PAY_OK);
	assert_true(f.has_amount);
	assert_int_equal(f.amount, 500);
	assert_string_equal(f.reason, "duplicate");
	assert_memory_equal(f.fingerprint, j.fingerprint, sizeof(f.fingerprint));
	refundreq_fini(&f);
	refundreq_fini(&j);
}

static void test_refund_form_without_amount_refunds_the_rest(void **state)
{
	static const char form[] = "charge=ch_aaaaaaaaaaaaaaaaaaaaaaaa";
	struct refundreq req;
	struct body_error err;

	(void)state;
	memset(&err, 0, sizeof(err));
	assert_int_equal(refundreq_parse_as(&req, form, sizeof(form) - 1, BODY_FORMAT_FORM, &err),
			 PAY_OK);
	assert_false(req.has_amount);
	refundreq_fini(&req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_flat_fields_as_strings),
		cmocka_unit_test(test_decode_percent_escapes_and_plus),
		cmocka_unit_test(test_decode_brackets_make_an_object),
		cmocka_unit_test(test_decode_indices_and_empty_brackets_make_arrays),
		cmocka_unit_test(test_decode_arrays_of_objects),
		cmocka_unit_test(test_decode_digits_are_object_keys_unless_an_array_starts),
		cmocka_unit_test(test_decode_skips_empty_pairs_and_keeps_empty_values),
		cmocka_unit_test(test_decode_refuses_a_field_given_twice),
		cmocka_unit_test(test_decode_refuses_array_indices_out_of_order),
		cmocka_unit_test(test_decode_refuses_a_value_that_is_also_a_container),
		cmocka_unit_test(test_decode_refuses_malformed_names),
		cmocka_unit_test(test_decode_refuses_bad_escapes_nul_and_invalid_utf8),
		cmocka_unit_test(test_decode_refuses_oversized_names_and_too_many_fields),
		cmocka_unit_test(test_form_integer_converts_only_plain_decimals),
		cmocka_unit_test(test_charge_form_and_json_share_fields_and_fingerprint),
		cmocka_unit_test(test_charge_form_refusals_match_json_ones),
		cmocka_unit_test(test_charge_form_names_a_metadata_key_in_bracket_form),
		cmocka_unit_test(test_charge_json_stays_strict_about_numbers_in_strings),
		cmocka_unit_test(test_refund_form_and_json_share_fields_and_fingerprint),
		cmocka_unit_test(test_refund_form_without_amount_refunds_the_rest),
	};

	return cmocka_run_group_tests_name("form", tests, NULL, NULL);
}

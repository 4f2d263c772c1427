/* test_updatereq.c - unit tests of decoding and validating POST /v1/charges/{id} and /v1/refunds/{id} bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "updatereq.h"

#define CHARGE_A "ch_0123456789abcdefABCDEFgh"
#define CHARGE_B "ch_0123456789abcdefABCDEFgi"
#define REFUND_A "re_0123456789abcdefABCDEFgh"

static int parse(struct updatereq *req, enum updatereq_kind kind, const char *id, const char *text,
		 enum body_format format, struct body_error *err)
{
	memset(err, 0, sizeof(*err));
	return updatereq_parse_as(req, kind, id, text, strlen(text), format, err);
}

static void test_updatereq_empty_body_changes_nothing(void **state)
{
	static const char *const bodies[] = { "", "{}", "{\"description\":null,\"metadata\":null}" };
	struct updatereq req;
	struct body_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		assert_int_equal(parse(&req, UPDATEREQ_CHARGE, CHARGE_A, bodies[i], BODY_FORMAT_JSON,
				       &err), PAY_OK);
		assert_null(req.description);
		assert_null(req.metadata_json);
		updatereq_fini(&req);
	}
	assert_int_equal(parse(&req, UPDATEREQ_REFUND, REFUND_A, "", BODY_FORMAT_FORM, &err), PAY_OK);
	assert_null(req.metadata_json);
	updatereq_fini(&req);
}

static void test_updatereq_reads_either_format_with_one_fingerprint(void **state)
{
	struct updatereq json, form;
	struct body_error err;

	(void)state;
	assert_int_equal(parse(&json, UPDATEREQ_CHARGE, CHARGE_A,
			       "{\"description\":\"New\",\"metadata\":{\"a\":\"1\",\"b\":\"\"}}",
			       BODY_FORMAT_JSON, &err), PAY_OK);
	assert_int_equal(parse(&form, UPDATEREQ_CHARGE, CHARGE_A,
			       "metadata[a]=1&metadata[b]=&description=New", BODY_FORMAT_FORM, &err),
			 PAY_OK);
	assert_string_equal(json.description, "New");
	assert_string_equal(form.description, "New");
	/* A key given "" stays in the request: the database removes it from the charge. */
	assert_string_equal(json.metadata_json, "{\"a\":\"1\",\"b\":\"\"}");
	assert_string_equal(form.metadata_json, "{\"a\":\"1\",\"b\":\"\"}");
	assert_memory_equal(json.fingerprint, form.fingerprint, CANON_FINGERPRINT_BYTES);
	updatereq_fini(&json);
	updatereq_fini(&form);
}

static void test_updatereq_empty_strings_unset(void **state)
{
	struct updatereq json, form;
	struct body_error err;

	(void)state;
	assert_int_equal(parse(&form, UPDATEREQ_CHARGE, CHARGE_A, "description=&metadata=",
			       BODY_FORMAT_FORM, &err), PAY_OK);
	assert_int_equal(parse(&json, UPDATEREQ_CHARGE, CHARGE_A,
			       "{\"metadata\":\"\",\"description\":\"\"}", BODY_FORMAT_JSON, &err),
			 PAY_OK);
	assert_string_equal(form.description, "");
	assert_string_equal(form.metadata_json, "\"\"");
	assert_string_equal(json.metadata_json, "\"\"");
	assert_memory_equal(json.fingerprint, form.fingerprint, CANON_FINGERPRINT_BYTES);
	updatereq_fini(&json);
	updatereq_fini(&form);
}

static void test_updatereq_fingerprint_covers_the_object(void **state)
{
	struct updatereq a, b, r;
	struct body_error err;

	(void)state;
	assert_int_equal(parse(&a, UPDATEREQ_CHARGE, CHARGE_A, "{\"metadata\":{\"k\":\"v\"}}",
			       BODY_FORMAT_JSON, &err), PAY_OK);
	assert_int_equal(parse(&b, UPDATEREQ_CHARGE, CHARGE_B, "{\"metadata\":{\"k\":\"v\"}}",
			       BODY_FORMAT_JSON, &err), PAY_OK);
	assert_int_equal(parse(&r, UPDATEREQ_REFUND, REFUND_A, "{\"metadata\":{\"k\":\"v\"}}",
			       BODY_FORMAT_JSON, &err), PAY_OK);
	assert_memory_not_equal(a.fingerprint, b.fingerprint, CANON_FINGERPRINT_BYTES);
	assert_memory_not_equal(a.fingerprint, r.fingerprint, CANON_FINGERPRINT_BYTES);
	updatereq_fini(&a);
	updatereq_fini(&b);
	updatereq_fini(&r);
}

static void test_updatereq_refuses_bad_bodies(void **state)
{
	char long_description[1100], many_keys[1200];
	size_t i, n;
	const struct {
		enum updatereq_kind kind;
		const char *text;
		enum body_format format;
		int err;
		const char *param;
	} cases[] = {
		{ UPDATEREQ_CHARGE, "receipt_email=a%40b.c", BODY_FORMAT_FORM, PAY_EPARAM_UNKNOWN,
		  "receipt_email" },
		{ UPDATEREQ_CHARGE, "{\"amount\":100}", BODY_FORMAT_JSON, PAY_EPARAM_UNKNOWN, "amount" },
		{ UPDATEREQ_REFUND, "description=x", BODY_FORMAT_FORM, PAY_EPARAM_UNKNOWN, "description" },
		{ UPDATEREQ_CHARGE, "{\"description\":5}", BODY_FORMAT_JSON, PAY_EPARAM_TYPE,
		  "description" },
		{ UPDATEREQ_CHARGE, long_description, BODY_FORMAT_JSON, PAY_ESTRING_TOO_LONG,
		  "description" },
		{ UPDATEREQ_CHARGE, "metadata=x", BODY_FORMAT_FORM, PAY_EMETADATA, "metadata" },
		{ UPDATEREQ_REFUND, "{\"metadata\":[]}", BODY_FORMAT_JSON, PAY_EMETADATA, "metadata" },
		{ UPDATEREQ_CHARGE, "{\"metadata\":{\"k\":1}}", BODY_FORMAT_JSON, PAY_EMETADATA,
		  "metadata" },
		{ UPDATEREQ_CHARGE, "metadata[k][x]=1", BODY_FORMAT_FORM, PAY_EMETADATA, "metadata[k]" },
		{ UPDATEREQ_REFUND, many_keys, BODY_FORMAT_FORM, PAY_EMETADATA, "metadata" },
		{ UPDATEREQ_CHARGE, "metadata=&metadata[a]=1", BODY_FORMAT_FORM, PAY_EFORM, "metadata[a]" },
		{ UPDATEREQ_CHARGE, "[]", BODY_FORMAT_JSON, PAY_EJSON, "" },
	};
	struct updatereq req;
	struct body_error err;

	(void)state;
	snprintf(long_description, sizeof(long_description), "{\"description\":\"%01001d\"}", 0);
	for (i = 0, n = 0; i < 51; i++)
		n += (size_t)snprintf(many_keys + n, sizeof(many_keys) - n, "%smetadata[k%zu]=v",
				      i ? "&" : "", i);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(&req, cases[i].kind, cases[i].kind == UPDATEREQ_CHARGE ? CHARGE_A : REFUND_A,
			       cases[i].text, cases[i].format, &err);

		if (rc != cases[i].err || strcmp(err.param, cases[i].param) != 0)
			fail_msg("body %.60s: got %d param '%s', want %d param '%s'", cases[i].text, rc,
				 err.param, cases[i].err, cases[i].param);
		assert_null(req.root);
		assert_null(req.metadata_json);
		updatereq_fini(&req);
	}
}

static void test_updatereq_unknown_param_says_what_an_update_takes(void **state)
{
	struct updatereq req;
	struct body_error err;

	(void)state;
	assert_int_equal(parse(&req, UPDATEREQ_CHARGE, CHARGE_A, "shipping[name]=x", BODY_FORMAT_FORM,
			       &err), PAY_EPARAM_UNKNOWN);
	assert_string_equal(err.message,
			    "Received unknown parameter: shipping. An update takes only description and metadata.");
	assert_int_equal(parse(&req, UPDATEREQ_REFUND, REFUND_A, "{\"reason\":\"duplicate\"}",
			       BODY_FORMAT_JSON, &err), PAY_EPARAM_UNKNOWN);
	assert_string_equal(err.message, "Received unknown parameter: reason. An update takes only metadata.");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_updatereq_empty_body_changes_nothing),
		cmocka_unit_test(test_updatereq_reads_either_format_with_one_fingerprint),
		cmocka_unit_test(test_updatereq_empty_strings_unset),
		cmocka_unit_test(test_updatereq_fingerprint_covers_the_object),
		cmocka_unit_test(test_updatereq_refuses_bad_bodies),
		cmocka_unit_test(test_updatereq_unknown_param_says_what_an_update_takes),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("updatereq", tests, NULL, NULL);
}

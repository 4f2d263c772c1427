/* test_capturereq.c - unit tests of decoding and validating POST /v1/charges/{id}/capture bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "capturereq.h"
#include "err.h"

#define CHARGE_A "ch_0123456789abcdefABCDEFgh"
#define CHARGE_B "ch_0123456789abcdefABCDEFgi"

static int parse(struct capturereq *req, const char *id, const char *text, enum body_format format,
		 struct body_error *err)
{
	memset(err, 0, sizeof(*err));
	return capturereq_parse_as(req, id, text, strlen(text), format, err);
}

static void test_capturereq_empty_body_captures_everything(void **state)
{
	struct capturereq req;
	struct body_error err;

	(void)state;
	assert_int_equal(parse(&req, CHARGE_A, "", BODY_FORMAT_JSON, &err), PAY_OK);
	assert_false(req.has_amount);
	capturereq_fini(&req);
	assert_int_equal(parse(&req, CHARGE_A, "", BODY_FORMAT_FORM, &err), PAY_OK);
	assert_false(req.has_amount);
	capturereq_fini(&req);
	assert_int_equal(parse(&req, CHARGE_A, "{}", BODY_FORMAT_JSON, &err), PAY_OK);
	assert_false(req.has_amount);
	capturereq_fini(&req);
}

static void test_capturereq_reads_amount_of_either_format(void **state)
{
	struct capturereq json, form;
	struct body_error err;

	(void)state;
	assert_int_equal(parse(&json, CHARGE_A, "{\"amount\": 600}", BODY_FORMAT_JSON, &err), PAY_OK);
	assert_int_equal(parse(&form, CHARGE_A, "amount=600", BODY_FORMAT_FORM, &err), PAY_OK);
	assert_true(json.has_amount);
	assert_int_equal(json.amount, 600);
	assert_int_equal(form.amount, 600);
	/* A form and its JSON twin fingerprint alike, so a retry in the other format replays. */
	assert_memory_equal(json.fingerprint, form.fingerprint, CANON_FINGERPRINT_BYTES);
	capturereq_fini(&json);
	capturereq_fini(&form);
}

static void test_capturereq_fingerprint_covers_the_charge(void **state)
{
	struct capturereq a, b;
	struct body_error err;

	(void)state;
	assert_int_equal(parse(&a, CHARGE_A, "{}", BODY_FORMAT_JSON, &err), PAY_OK);
	assert_int_equal(parse(&b, CHARGE_B, "{}", BODY_FORMAT_JSON, &err), PAY_OK);
	assert_memory_not_equal(a.fingerprint, b.fingerprint, CANON_FINGERPRINT_BYTES);
	capturereq_fini(&a);
	capturereq_fini(&b);
}

static void test_capturereq_refuses_bad_bodies(void **state)
{
	static const struct {
		const char *text;
		enum body_format format;
		int err;
		const char *param;
	} cases[] = {
		{ "{\"amount\": 0}", BODY_FORMAT_JSON, PAY_EAMOUNT_TOO_SMALL, "amount" },
		{ "{\"amount\": 100000000}", BODY_FORMAT_JSON, PAY_EAMOUNT_TOO_LARGE, "amount" },
		{ "{\"amount\": \"600\"}", BODY_FORMAT_JSON, PAY_EPARAM_TYPE, "amount" },
		{ "{\"amount\": 6.5}", BODY_FORMAT_JSON, PAY_EPARAM_TYPE, "amount" },
		{ "{\"captured\": true}", BODY_FORMAT_JSON, PAY_EPARAM_UNKNOWN, "captured" },
		{ "[]", BODY_FORMAT_JSON, PAY_EJSON, "" },
		{ "amount=six", BODY_FORMAT_FORM, PAY_EPARAM_TYPE, "amount" },
	};
	struct capturereq req;
	struct body_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(&req, CHARGE_A, cases[i].text, cases[i].format, &err);

		if (rc != cases[i].err || strcmp(err.param, cases[i].param) != 0)
			fail_msg("body %s: got %d param '%s', want %d param '%s'", cases[i].text, rc,
				 err.param, cases[i].err, cases[i].param);
		assert_null(req.root);
		capturereq_fini(&req);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capturereq_empty_body_captures_everything),
		cmocka_unit_test(test_capturereq_reads_amount_of_either_format),
		cmocka_unit_test(test_capturereq_fingerprint_covers_the_charge),
		cmocka_unit_test(test_capturereq_refuses_bad_bodies),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("capturereq", tests, NULL, NULL);
}

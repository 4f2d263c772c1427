/* test_body_regress.c - regression tests for bugs the fuzzers found in body.c, chargereq.c and refundreq.c. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "body.h"
#include "chargereq.h"
#include "err.h"
#include "http.h"
#include "refundreq.h"

/* "é" n times after prefix, as a JSON string's content (UTF-8, two bytes per é). */
static char *repeat_e_acute(const char *prefix, int n)
{
	size_t plen = strlen(prefix);
	char *s = malloc(plen + 2 * (size_t)n + 1);
	int i;

	assert_non_null(s);
	memcpy(s, prefix, plen);
	for (i = 0; i < n; i++)
		memcpy(s + plen + 2 * (size_t)i, "\xC3\xA9", 2);
	s[plen + 2 * (size_t)n] = '\0';
	return s;
}

/*
 * Asserts that err becomes the JSON error object the client is sent.
 * http_error_object refuses text that is not valid UTF-8, and
 * http_reply_error then answers 500 internal_error instead of the 4xx.
 */
static void assert_error_renders(const struct body_error *err, int want)
{
	json_t *obj;

	assert_int_equal(err->err, want);
	obj = http_error_object(err->err, err->param, err->message);
	if (obj == NULL)
		fail_msg("error %d (param '%s', message '%s') cannot be sent as JSON: "
			 "a byte sequence was cut in the middle of a character", err->err, err->param,
			 err->message);
	json_decref(obj);
}

static void test_check_fields_unknown_long_non_ascii_key_renders_as_json(void **state)
{
	static const char *const allowed[] = { "amount", NULL };
	struct body_error err;
	char *key, text[512];
	json_t *root = NULL;

	(void)state;
	/* param keeps 127 bytes of the key: the 64th "é" is cut in half. */
	key = repeat_e_acute("", 80);
	snprintf(text, sizeof(text), "{\"%s\": 1}", key);
	assert_int_equal(body_load(text, strlen(text), &root, &err), PAY_OK);
	memset(&err, 0, sizeof(err));
	assert_int_equal(body_check_fields(root, allowed, &err), PAY_EPARAM_UNKNOWN);
	assert_error_renders(&err, PAY_EPARAM_UNKNOWN);
	json_decref(root);
	free(key);
}

static void test_check_fields_unknown_key_cut_in_message_renders_as_json(void **state)
{
	static const char *const allowed[] = { "amount", NULL };
	struct body_error err;
	char *key, text[512];
	json_t *root = NULL;

	(void)state;
	/* The message quotes 100 bytes of the key ("%.100s"): after "a", the 50th "é" is cut. */
	key = repeat_e_acute("a", 60);
	snprintf(text, sizeof(text), "{\"%s\": 1}", key);
	assert_int_equal(body_load(text, strlen(text), &root, &err), PAY_OK);
	memset(&err, 0, sizeof(err));
	assert_int_equal(body_check_fields(root, allowed, &err), PAY_EPARAM_UNKNOWN);
	assert_error_renders(&err, PAY_EPARAM_UNKNOWN);
	json_decref(root);
	free(key);
}

static void test_chargereq_unknown_non_ascii_source_renders_as_json(void **state)
{
	struct chargereq req;
	struct body_error err;
	char *source, text[512];

	(void)state;
	/* "No such token: '%.64s'." cuts the 32nd "é" after "a". */
	source = repeat_e_acute("a", 40);
	snprintf(text, sizeof(text), "{\"amount\":2000,\"currency\":\"usd\",\"source\":\"%s\"}", source);
	memset(&err, 0, sizeof(err));
	assert_int_equal(chargereq_parse(&req, text, strlen(text), &err), PAY_ESOURCE);
	assert_error_renders(&err, PAY_ESOURCE);
	free(source);
}

static void test_refundreq_non_ascii_charge_renders_as_json(void **state)
{
	struct refundreq req;
	struct body_error err;
	char *charge, text[512];

	(void)state;
	/* "No such charge: '%.40s'." cuts the 20th "é" after "a". */
	charge = repeat_e_acute("a", 30);
	snprintf(text, sizeof(text), "{\"charge\":\"%s\"}", charge);
	memset(&err, 0, sizeof(err));
	assert_int_equal(refundreq_parse(&req, text, strlen(text), &err), PAY_ENOT_FOUND);
	assert_error_renders(&err, PAY_ENOT_FOUND);
	free(charge);
}

/*
 * The fuzzers' smallest input (tests/fuzz/corpus/chargereq/regress-invalid-escape-non-ascii):
 * an invalid escape before a non-ASCII character. jansson's error text quotes
 * the token read so far, which ends in the first byte of the character.
 */
static void test_load_invalid_escape_before_non_ascii_renders_as_json(void **state)
{
	static const char text[] = "\"\\\xCC\x9A";
	static const char in_object[] = "{\"description\": \"\\\xC3\xA9\"}";
	struct body_error err;
	json_t *root = NULL;

	(void)state;
	memset(&err, 0, sizeof(err));
	assert_int_equal(body_load(text, sizeof(text) - 1, &root, &err), PAY_EJSON);
	assert_error_renders(&err, PAY_EJSON);
	memset(&err, 0, sizeof(err));
	assert_int_equal(body_load(in_object, sizeof(in_object) - 1, &root, &err), PAY_EJSON);
	assert_error_renders(&err, PAY_EJSON);
}

/*
 * civetweb runs handlers on worker threads with 100 KiB stacks (Debian's
 * libcivetweb1), about 12 KiB of which its own frames use before the handler
 * runs. jansson parses (and frees) nested values recursively, up to 2048
 * levels, so a body of 1000 '[' overflowed the stack and killed the whole
 * server with SIGSEGV (any user with a key, one 1 KB request). Found by
 * tests/fuzz once its targets ran on a worker-sized stack; inputs in
 * tests/fuzz/corpus/{body,chargereq,refundreq,canon}/regress-deep_*.
 */
#define WORKER_STACK (102400 - 16 * 1024)

struct depth_case {
	const char *unit;
	size_t repeat;
	const char *tail;   /* repeated as often after the units, or "" */
	int rc;
};

static void *load_deep(void *arg)
{
	struct depth_case *c = arg;
	size_t ulen = strlen(c->unit), tlen = strlen(c->tail), i, n = 0;
	char *text = malloc(c->repeat * (ulen + tlen) + 1);
	struct body_error err;
	json_t *root = NULL;

	assert_non_null(text);
	for (i = 0; i < c->repeat; i++, n += ulen)
		memcpy(text + n, c->unit, ulen);
	for (i = 0; i < c->repeat; i++, n += tlen)
		memcpy(text + n, c->tail, tlen);
	c->rc = body_load(text, n, &root, &err);
	json_decref(root);
	free(text);
	return NULL;
}

static void test_load_survives_deep_nesting_on_a_worker_stack(void **state)
{
	struct depth_case cases[] = {
		{ "[", 1000, "", 0 },
		{ "{\"a\":", 1000, "", 0 },
		{ "[", 1500, "]", 0 },
		{ "[", 60000, "", 0 },
	};
	pthread_attr_t attr;
	pthread_t t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(pthread_attr_init(&attr), 0);
		assert_int_equal(pthread_attr_setstacksize(&attr, WORKER_STACK), 0);
		assert_int_equal(pthread_create(&t, &attr, load_deep, &cases[i]), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		pthread_attr_destroy(&attr);
		assert_int_equal(cases[i].rc, PAY_EJSON);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_fields_unknown_long_non_ascii_key_renders_as_json),
		cmocka_unit_test(test_check_fields_unknown_key_cut_in_message_renders_as_json),
		cmocka_unit_test(test_chargereq_unknown_non_ascii_source_renders_as_json),
		cmocka_unit_test(test_refundreq_non_ascii_charge_renders_as_json),
		cmocka_unit_test(test_load_invalid_escape_before_non_ascii_renders_as_json),
		/* Last: until it is fixed, it kills this binary with SIGSEGV. */
		cmocka_unit_test(test_load_survives_deep_nesting_on_a_worker_stack),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("body_regress", tests, NULL, NULL);
}

/* test_webhookreq.c - unit tests of decoding and validating POST /v1/webhook_endpoints bodies (webhookreq.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "webhookreq.h"

/* Parses text, expecting failure with e and param; checks req is left empty. */
static void assert_refused(const char *text, int e, const char *param)
{
	struct webhookreq req;
	struct body_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = webhookreq_parse(&req, text, strlen(text), BODY_FORMAT_JSON, &err);
	if (rc != e || strcmp(err.param, param) != 0)
		fail_msg("body %s: got %d param '%s' (%s), want %d param '%s'", text, rc, err.param,
			 err.message, e, param);
	assert_int_equal(err.err, e);
	assert_null(req.root);
	assert_null(req.url);
	assert_null(req.events_json);
	assert_string_equal(req.host, "");
	/* Releasing a failed request twice is harmless. */
	webhookreq_fini(&req);
	webhookreq_fini(&req);
}

static void test_webhookreq_accepts_url_and_events(void **state)
{
	static const char text[] =
		"{\"url\": \"https://hooks.example.com/in?x=1\", \"enabled_events\": [\"charge.succeeded\", \"refund.created\"]}";
	struct webhookreq req;
	struct body_error err = { 0 };

	(void)state;
	assert_int_equal(webhookreq_parse(&req, text, strlen(text), BODY_FORMAT_JSON, &err), PAY_OK);
	assert_string_equal(req.url, "https://hooks.example.com/in?x=1");
	assert_string_equal(req.host, "hooks.example.com");
	assert_string_equal(req.events_json, "[\"charge.succeeded\",\"refund.created\"]");
	webhookreq_fini(&req);
}

static void test_webhookreq_accepts_the_wildcard(void **state)
{
	static const char text[] = "{\"url\":\"http://127.0.0.1:9/\",\"enabled_events\":[\"*\"]}";
	struct webhookreq req;
	struct body_error err = { 0 };

	(void)state;
	assert_int_equal(webhookreq_parse(&req, text, strlen(text), BODY_FORMAT_JSON, &err), PAY_OK);
	assert_string_equal(req.host, "127.0.0.1");
	assert_string_equal(req.events_json, "[\"*\"]");
	webhookreq_fini(&req);
}

static void test_webhookreq_refuses_invalid_json(void **state)
{
	(void)state;
	assert_refused("{\"url\":", PAY_EJSON, "");
	assert_refused("[]", PAY_EJSON, "");
}

static void test_webhookreq_refuses_unknown_and_server_owned_fields(void **state)
{
	(void)state;
	assert_refused("{\"url\":\"https://a.example/\",\"enabled_events\":[\"*\"],\"colour\":1}",
		       PAY_EPARAM_UNKNOWN, "colour");
	assert_refused("{\"id\":\"we_x\",\"url\":\"https://a.example/\",\"enabled_events\":[\"*\"]}",
		       PAY_EPARAM_UNKNOWN, "id");
	assert_refused("{\"url\":\"https://a.example/\",\"enabled_events\":[\"*\"],\"secret\":\"whsec_x\"}",
		       PAY_EPARAM_UNKNOWN, "secret");
}

static void test_webhookreq_refuses_missing_or_bad_url(void **state)
{
	(void)state;
	assert_refused("{\"enabled_events\":[\"*\"]}", PAY_EPARAM_MISSING, "url");
	assert_refused("{\"url\":7,\"enabled_events\":[\"*\"]}", PAY_EPARAM_TYPE, "url");
	assert_refused("{\"url\":\"ftp://a.example/\",\"enabled_events\":[\"*\"]}", PAY_EPARAM_INVALID, "url");
	assert_refused("{\"url\":\"/relative\",\"enabled_events\":[\"*\"]}", PAY_EPARAM_INVALID, "url");
}

static void test_webhookreq_refuses_missing_or_empty_events(void **state)
{
	(void)state;
	assert_refused("{\"url\":\"https://a.example/\"}", PAY_EPARAM_MISSING, "enabled_events");
	assert_refused("{\"url\":\"https://a.example/\",\"enabled_events\":null}", PAY_EPARAM_MISSING,
		       "enabled_events");
	assert_refused("{\"url\":\"https://a.example/\",\"enabled_events\":[]}", PAY_EPARAM_INVALID,
		       "enabled_events");
	assert_refused("{\"url\":\"https://a.example/\",\"enabled_events\":\"*\"}", PAY_EPARAM_INVALID,
		       "enabled_events");
}

static void test_webhookreq_refuses_unknown_event_types(void **state)
{
	(void)state;
	assert_refused("{\"url\":\"https://a.example/\",\"enabled_events\":[\"charge.exploded\"]}",
		       PAY_EPARAM_INVALID, "enabled_events");
	assert_refused("{\"url\":\"https://a.example/\",\"enabled_events\":[\"charge.succeeded\",1]}",
		       PAY_EPARAM_INVALID, "enabled_events");
	assert_refused("{\"url\":\"https://a.example/\",\"enabled_events\":[\"charge.*\"]}",
		       PAY_EPARAM_INVALID, "enabled_events");
}

static void test_webhookreq_refuses_more_than_the_maximum_of_events(void **state)
{
	char text[64 + WEBHOOKREQ_MAX_EVENTS * 8];
	size_t len;
	int i;

	(void)state;
	len = (size_t)snprintf(text, sizeof(text), "{\"url\":\"https://a.example/\",\"enabled_events\":[");
	for (i = 0; i <= WEBHOOKREQ_MAX_EVENTS; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, i ? ",\"*\"" : "\"*\"");
	snprintf(text + len, sizeof(text) - len, "]}");
	assert_refused(text, PAY_EPARAM_INVALID, "enabled_events");
}

static void test_webhookreq_fini_is_safe_on_zeroed_request(void **state)
{
	struct webhookreq req;

	(void)state;
	memset(&req, 0, sizeof(req));
	webhookreq_fini(&req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_webhookreq_accepts_url_and_events),
		cmocka_unit_test(test_webhookreq_accepts_the_wildcard),
		cmocka_unit_test(test_webhookreq_refuses_invalid_json),
		cmocka_unit_test(test_webhookreq_refuses_unknown_and_server_owned_fields),
		cmocka_unit_test(test_webhookreq_refuses_missing_or_bad_url),
		cmocka_unit_test(test_webhookreq_refuses_missing_or_empty_events),
		cmocka_unit_test(test_webhookreq_refuses_unknown_event_types),
		cmocka_unit_test(test_webhookreq_refuses_more_than_the_maximum_of_events),
		cmocka_unit_test(test_webhookreq_fini_is_safe_on_zeroed_request),
	};

	return cmocka_run_group_tests_name("webhookreq", tests, NULL, NULL);
}

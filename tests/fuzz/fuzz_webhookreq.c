/* fuzz_webhookreq.c - libFuzzer target for POST /v1/webhook_endpoints bodies (webhookreq_parse). */
#include <jansson.h>

#include "err.h"
#include "event.h"
#include "fuzz_common.h"
#include "http.h"
#include "urlcheck.h"
#include "webhookreq.h"

/* A refusal names a 4xx error (or out of memory), leaves req empty and renders as a JSON error object. */
static void fuzz_check_refusal(int rc, const struct webhookreq *req, const struct body_error *err)
{
	const struct err_info *info = err_info(rc);
	json_t *obj;

	FUZZ_CHECK(rc < 0);
	FUZZ_CHECK(err->err == rc);
	FUZZ_CHECK((info->status >= 400 && info->status < 500) || rc == PAY_ENOMEM);
	FUZZ_CHECK(req->root == NULL && req->url == NULL && req->events_json == NULL &&
		   req->host[0] == '\0');
	FUZZ_CHECK(err->param[0] == '\0' || strcmp(err->param, "url") == 0 ||
		   strcmp(err->param, "enabled_events") == 0 || rc == PAY_EPARAM_UNKNOWN);
	obj = http_error_object(rc, err->param, err->message);
	FUZZ_CHECK(obj != NULL);
	json_decref(obj);
}

/* An accepted request has only its two fields, a URL whose host was found again, and known event types. */
static void fuzz_check_accepted(const struct webhookreq *req)
{
	char host[URLCHECK_MAX + 1];
	const char *key;
	json_t *v, *events;
	size_t i;

	json_object_foreach(req->root, key, v) {
		(void)v;
		FUZZ_CHECK(strcmp(key, "url") == 0 || strcmp(key, "enabled_events") == 0);
	}
	FUZZ_CHECK(req->url != NULL && json_is_string(json_object_get(req->root, "url")));
	FUZZ_CHECK(urlcheck_parse(req->url, host, sizeof(host)) == PAY_OK);
	FUZZ_CHECK(strcmp(host, req->host) == 0 && host[0] != '\0');
	events = json_loads(req->events_json, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(json_is_array(events) && json_array_size(events) >= 1 &&
		   json_array_size(events) <= WEBHOOKREQ_MAX_EVENTS);
	json_array_foreach(events, i, v)
		FUZZ_CHECK(json_is_string(v) && event_type_known(json_string_value(v), true));
	FUZZ_CHECK(json_equal(events, json_object_get(req->root, "enabled_events")));
	json_decref(events);
}

static void fuzz_one(const uint8_t *data, size_t size)
{
	struct webhookreq req;
	struct body_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = webhookreq_parse(&req, (const char *)data, size, BODY_FORMAT_JSON, &err);
	if (rc != PAY_OK)
		fuzz_check_refusal(rc, &req, &err);
	else
		fuzz_check_accepted(&req);
	webhookreq_fini(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_on_worker_stack(fuzz_one, data, size);
	return 0;
}

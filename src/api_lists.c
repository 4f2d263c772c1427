/* api_lists.c - GET /v1/charges, /v1/refunds, /v1/events, /v1/webhook_endpoints (keyset pages) and GET /v1/events/{id}. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "api_read.h"
#include "db.h"
#include "db_list.h"
#include "err.h"
#include "event.h"
#include "ids.h"

#define API_LIST_FILTER_MAX 64

/* What a list accepts beyond limit and the cursors. */
struct api_list_spec {
	const char *kind;
	const char *url;
	const char *prefix;          /* of the cursor ids */
	bool created_filter;
	const char *filter_param;    /* "charge" or "type", or NULL */
	const char *filter_col;
	bool (*filter_valid)(const char *value);
};

/* Reads a whole non-negative number of at most 12 digits. Returns -1 when absent, -2 when invalid. */
static long long api_query_seconds(const struct http_req *r, const char *name)
{
	char buf[16];
	int n = http_query_param(r, name, buf, sizeof(buf));

	if (n == -1)
		return -1;
	if (n <= 0 || n > 12 || strspn(buf, "0123456789") != (size_t)n)
		return -2;
	return atoll(buf);
}

/* created[gte] may arrive with its brackets percent-encoded. */
static long long api_query_created(const struct http_req *r, const char *op)
{
	char plain[24], encoded[32];
	long long v;

	snprintf(plain, sizeof(plain), "created[%s]", op);
	snprintf(encoded, sizeof(encoded), "created%%5B%s%%5D", op);
	v = api_query_seconds(r, plain);
	return v == -1 ? api_query_seconds(r, encoded) : v;
}

/* Reads an optional id parameter with the given prefix into buf ("" when absent). Returns false when malformed. */
static bool api_query_id(const struct http_req *r, const char *name, const char *prefix, char *buf,
			 size_t len)
{
	int n = http_query_param(r, name, buf, len);

	if (n == -1) {
		buf[0] = '\0';
		return true;
	}
	return n >= 0 && ids_valid(buf, prefix);
}

/* A refused query parameter and what to tell the client about it. */
struct api_list_bad {
	const char *param;
	const char *message;
};

/*
 * Reads and checks the cursors and filters of a list request into q (limit is
 * read by api_query_limit_or_reply). Returns true, or
 * false with *bad naming the first refused parameter and its message.
 */
static bool api_list_query(const struct http_req *r, const struct api_list_spec *spec,
			   struct db_list_query *q, char *after, char *before, char *filter,
			   struct api_list_bad *bad)
{
	static const char no_cursor[] = "No such object to page from, or an invalid value.";
	int n;

	q->created_gte = spec->created_filter ? api_query_created(r, "gte") : -1;
	q->created_lt = spec->created_filter ? api_query_created(r, "lt") : -1;
	if (!api_query_id(r, "starting_after", spec->prefix, after, IDS_MAX))
		*bad = (struct api_list_bad){ "starting_after", no_cursor };
	else if (!api_query_id(r, "ending_before", spec->prefix, before, IDS_MAX))
		*bad = (struct api_list_bad){ "ending_before", no_cursor };
	else if (after[0] && before[0])
		*bad = (struct api_list_bad){ "ending_before",
					      "Use starting_after or ending_before, not both." };
	else if (q->created_gte == -2)
		*bad = (struct api_list_bad){ "created[gte]", "created filters take Unix seconds." };
	else if (q->created_lt == -2)
		*bad = (struct api_list_bad){ "created[lt]", "created filters take Unix seconds." };
	if (bad->param == NULL && spec->filter_param != NULL) {
		n = http_query_param(r, spec->filter_param, filter, API_LIST_FILTER_MAX);
		if (n == -2 || (n >= 0 && !spec->filter_valid(filter)))
			*bad = (struct api_list_bad){ spec->filter_param, no_cursor };
		else if (n >= 0) {
			q->filter_col = spec->filter_col;
			q->filter_val = filter;
		}
	}
	q->starting_after = after[0] ? after : NULL;
	q->ending_before = before[0] ? before : NULL;
	return bad->param == NULL;
}

static int api_list(struct http_req *r, const struct api_list_spec *spec)
{
	char after[IDS_MAX], before[IDS_MAX], filter[API_LIST_FILTER_MAX];
	struct api_list_bad bad = { NULL, NULL };
	struct db_list_query q = { 0 };
	const char *bad_cursor = NULL;
	char *data = NULL;
	bool has_more = false;
	int rc;

	q.kind = spec->kind;
	rc = api_query_limit_or_reply(r, &q.limit);
	if (rc != PAY_OK)
		goto out;
	rc = PAY_EPARAM_INVALID;
	if (!api_list_query(r, spec, &q, after, before, filter, &bad))
		goto reply;
	rc = api_read_list(r->app, r->user_id, &q, &data, &has_more, &bad_cursor);
	if (bad_cursor != NULL)
		bad = (struct api_list_bad){ bad_cursor,
					     "No such object to page from, or an invalid value." };
reply:
	if (rc == PAY_OK)
		http_reply_list(r, spec->url, data, has_more);
	else
		http_reply_error(r, rc, bad.param, bad.message);
out:
	free(data);
	return r->status;
}

static bool api_list_charge_id(const char *value)
{
	return ids_valid(value, "ch_");
}

static bool api_list_event_type(const char *value)
{
	return event_type_known(value, false);
}

static bool api_list_boolean(const char *value)
{
	return strcmp(value, "true") == 0 || strcmp(value, "false") == 0;
}

int api_charges_list(struct http_req *r)
{
	static const struct api_list_spec spec = { "charges", "/v1/charges", "ch_", true, "captured",
						   "captured", api_list_boolean };

	return api_list(r, &spec);
}

int api_refunds_list(struct http_req *r)
{
	static const struct api_list_spec spec = { "refunds", "/v1/refunds", "re_", true, "charge",
						   "charge_id", api_list_charge_id };

	return api_list(r, &spec);
}

int api_events_list(struct http_req *r)
{
	static const struct api_list_spec spec = { "events", "/v1/events", "evt_", true, "type", "type",
						   api_list_event_type };

	return api_list(r, &spec);
}

int api_webhooks_list(struct http_req *r)
{
	static const struct api_list_spec spec = { "webhook_endpoints", "/v1/webhook_endpoints", "we_",
						   false, NULL, NULL, NULL };

	return api_list(r, &spec);
}

int api_events_get(struct http_req *r)
{
	return api_reply_object(r, "evt_", db_event_get, "event");
}

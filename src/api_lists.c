/* api_lists.c - GET /v1/charges, /v1/refunds, /v1/events (keyset pages) and GET /v1/events/{id}. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_list.h"
#include "err.h"
#include "event.h"
#include "ids.h"

/* What a list accepts beyond limit and the cursors. */
struct api_list_spec {
	const char *kind;
	const char *url;
	const char *prefix;          /* of the cursor ids */
	bool created_filter;
	const char *filter_param;    /* "charge" or "type", or NULL */
	const char *filter_col;
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

static int api_list(struct http_req *r, const struct api_list_spec *spec)
{
	char after[IDS_MAX], before[IDS_MAX], filter[64];
	struct db_list_query q = { 0 };
	struct db_conn *conn = NULL;
	const char *bad = NULL;
	char *data = NULL;
	bool has_more = false;
	int n, rc;

	q.kind = spec->kind;
	rc = api_query_limit_or_reply(r, &q.limit);
	if (rc != PAY_OK)
		goto out;
	rc = PAY_EPARAM_INVALID;
	q.created_gte = spec->created_filter ? api_query_created(r, "gte") : -1;
	q.created_lt = spec->created_filter ? api_query_created(r, "lt") : -1;
	if (!api_query_id(r, "starting_after", spec->prefix, after, sizeof(after)))
		bad = "starting_after";
	else if (!api_query_id(r, "ending_before", spec->prefix, before, sizeof(before)) ||
		 (after[0] && before[0]))
		bad = "ending_before";
	else if (q.created_gte == -2)
		bad = "created[gte]";
	else if (q.created_lt == -2)
		bad = "created[lt]";
	if (bad == NULL && spec->filter_param != NULL) {
		n = http_query_param(r, spec->filter_param, filter, sizeof(filter));
		if (n >= 0 && ((strcmp(spec->filter_param, "charge") == 0 && !ids_valid(filter, "ch_")) ||
			       (strcmp(spec->filter_param, "type") == 0 && !event_type_known(filter, false))))
			bad = spec->filter_param;
		else if (n >= 0) {
			q.filter_col = spec->filter_col;
			q.filter_val = filter;
		} else if (n == -2)
			bad = spec->filter_param;
	}
	if (bad != NULL)
		goto reply;
	q.starting_after = after[0] ? after : NULL;
	q.ending_before = before[0] ? before : NULL;
	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_list_page(conn, r->user_id, &q, &data, &has_more, &bad);
		db_pool_release(r->app->pool, conn);
	}
reply:
	if (rc == PAY_OK)
		http_reply_list(r, spec->url, data, has_more);
	else if (bad != NULL)
		http_reply_error(r, PAY_EPARAM_INVALID, bad,
				 strncmp(bad, "created", 7) == 0 ? "created filters take Unix seconds." :
				 strcmp(bad, "ending_before") == 0 && after[0] && before[0] ?
				 "Use starting_after or ending_before, not both." :
				 "No such object to page from, or an invalid value.");
	else
		http_reply_error(r, rc, NULL, NULL);
out:
	free(data);
	return r->status;
}

int api_charges_list(struct http_req *r)
{
	static const struct api_list_spec spec = { "charges", "/v1/charges", "ch_", true, NULL, NULL };

	return api_list(r, &spec);
}

int api_refunds_list(struct http_req *r)
{
	static const struct api_list_spec spec = { "refunds", "/v1/refunds", "re_", true, "charge",
						   "charge_id" };

	return api_list(r, &spec);
}

int api_events_list(struct http_req *r)
{
	static const struct api_list_spec spec = { "events", "/v1/events", "evt_", true, "type", "type" };

	return api_list(r, &spec);
}

int api_events_get(struct http_req *r)
{
	return api_reply_object(r, "evt_", db_event_get, "event");
}

/* api_common.c - what every resource shares: single objects, their updates and the page size of lists. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "charge.h"
#include "db.h"
#include "db_idem.h"
#include "err.h"
#include "ids.h"

int api_query_limit_or_reply(struct http_req *r, int *limit)
{
	char buf[8];
	int n = http_query_param(r, "limit", buf, sizeof(buf));
	bool ok = true;

	*limit = API_LIMIT_DEFAULT;
	if (n != -1) {
		ok = n > 0 && strspn(buf, "0123456789") == (size_t)n;
		*limit = ok ? atoi(buf) : 0;
		ok = ok && *limit >= 1 && *limit <= API_LIMIT_MAX;
	}
	if (!ok)
		http_reply_error(r, PAY_EPARAM_INVALID, "limit", "limit must be a whole number from 1 to 100.");
	return ok ? PAY_OK : PAY_EPARAM_INVALID;
}

int api_reply_object(struct http_req *r, const char *prefix, api_fetch_fn fetch, const char *what)
{
	struct db_conn *conn = NULL;
	char msg[64], *json = NULL;
	int rc = PAY_ENOT_FOUND;

	/* A malformed id cannot exist: answer 404 without asking the database. */
	if (ids_valid(r->path_id, prefix))
		rc = db_pool_acquire(r->app->pool, &conn);
	if (conn != NULL) {
		rc = fetch(conn, r->user_id, r->path_id, &json);
		db_pool_release(r->app->pool, conn);
	}
	snprintf(msg, sizeof(msg), "No such %s.", what);
	if (rc == PAY_OK)
		http_reply(r, 200, json, strlen(json), NULL, 0);
	else if (rc == PAY_ENOT_FOUND)
		http_reply_error(r, rc, "id", msg);
	else
		http_reply_error(r, rc, NULL, NULL);
	free(json);
	return r->status;
}

int api_reply_update(struct http_req *r, enum updatereq_kind kind, api_update_fn update)
{
	static const struct {
		const char *prefix, *missing, *busy;
	} kinds[] = {
		[UPDATEREQ_CHARGE] = { "ch_", "No such charge.", NULL },
		[UPDATEREQ_REFUND] = { "re_", "No such refund.",
				       "Another request is changing this refund right now. Retry later." },
	};
	const struct cfg *cfg = r->app->cfg;
	char event_id[IDS_MAX], msg[96];
	struct db_idem_result res = { 0 };
	struct db_update in = { 0 };
	struct updatereq req = { 0 };
	struct body_error berr = { 0 };
	struct db_conn *conn = NULL;
	const char *key = NULL;
	int rc;

	if (http_read_body_or_reply(r) != PAY_OK || api_idempotency_key_or_reply(r, &key) != PAY_OK)
		goto out;
	/* A malformed id cannot exist: answer 404 without asking the database. */
	if (!ids_valid(r->path_id, kinds[kind].prefix)) {
		http_reply_error(r, PAY_ENOT_FOUND, "id", kinds[kind].missing);
		goto out;
	}
	rc = updatereq_parse_as(&req, kind, r->path_id, r->body, r->body_len, r->body_format, &berr);
	if (rc != PAY_OK) {
		http_reply_error(r, berr.err, berr.param, berr.message);
		goto out;
	}
	ids_generate(event_id, sizeof(event_id), "evt_");
	in.user_id = r->user_id;
	in.idempotency_key = key;
	in.fingerprint = req.fingerprint;
	in.ttl_ms = cfg->idempotency_ttl_ms;
	in.wait_ms = cfg->idempotency_wait_ms;
	in.id = r->path_id;
	in.description = req.description;
	in.metadata_json = req.metadata_json;
	in.metadata_max = CHARGE_METADATA_MAX_KEYS;
	in.event_id = event_id;
	in.request_id = r->request_id;

	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = update(conn, &in, &res);
		db_pool_release(r->app->pool, conn);
	}
	if (rc == PAY_ENOT_FOUND) {
		http_reply_error(r, rc, "id", kinds[kind].missing);
	} else if (rc == PAY_EMETADATA) {
		snprintf(msg, sizeof(msg), "Invalid metadata: the update would leave more than %d keys.",
			 CHARGE_METADATA_MAX_KEYS);
		http_reply_error(r, rc, "metadata", msg);
	} else if (rc == PAY_ECHARGE_BUSY) {
		http_reply_error(r, rc, NULL, kinds[kind].busy);
	} else {
		api_reply_idempotent(r, rc, &res);
	}
out:
	db_idem_result_fini(&res);
	updatereq_fini(&req);
	return r->status;
}

/* api_refunds.c - POST /v1/refunds, GET /v1/refunds/{id} and POST /v1/refunds/{id} (update). */
#include "api.h"

#include <stdlib.h>

#include "cfg.h"
#include "db.h"
#include "db_refund.h"
#include "err.h"
#include "ids.h"
#include "refundreq.h"

int api_refunds_create(struct http_req *r)
{
	const struct cfg *cfg = r->app->cfg;
	char refund_id[IDS_MAX], evt1[IDS_MAX], evt2[IDS_MAX];
	struct db_idem_result res = { 0 };
	struct db_refund_new in = { 0 };
	struct refundreq req = { 0 };
	struct body_error berr = { 0 };
	struct db_conn *conn = NULL;
	const char *key = NULL;
	int rc;

	if (http_read_body_or_reply(r) != PAY_OK || api_idempotency_key_or_reply(r, &key) != PAY_OK)
		goto out;
	rc = refundreq_parse_as(&req, r->body, r->body_len, r->body_format, &berr);
	if (rc != PAY_OK) {
		http_reply_error(r, berr.err, berr.param, berr.message);
		goto out;
	}
	ids_generate(refund_id, sizeof(refund_id), "re_");
	ids_generate(evt1, sizeof(evt1), "evt_");
	ids_generate(evt2, sizeof(evt2), "evt_");
	in.user_id = r->user_id;
	in.idempotency_key = key;
	in.fingerprint = req.fingerprint;
	in.ttl_ms = cfg->idempotency_ttl_ms;
	in.wait_ms = cfg->idempotency_wait_ms;
	in.refund_id = refund_id;
	in.charge_id = req.charge;
	in.amount = req.amount;
	in.has_amount = req.has_amount;
	in.reason = req.reason;
	in.metadata_json = req.metadata_json;
	in.request_id = r->request_id;
	in.refund_event_id = evt1;
	in.charge_event_id = evt2;

	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_refund_create(conn, &in, &res);
		db_pool_release(r->app->pool, conn);
	}
	if (rc == PAY_ENOT_FOUND)
		http_reply_error(r, rc, "charge", "No such charge.");
	else if (rc == PAY_EAMOUNT_TOO_LARGE)
		http_reply_error(r, rc, "amount",
				 "Refund amount is greater than what is left to refund on the charge.");
	else if (rc == PAY_EPARAM_INVALID)
		http_reply_error(r, rc, "amount",
				 "A refund of an uncaptured charge releases all of it: leave out amount"
				 " or give the whole amount.");
	else
		api_reply_idempotent(r, rc, &res);
out:
	db_idem_result_fini(&res);
	refundreq_fini(&req);
	return r->status;
}

int api_refunds_get(struct http_req *r)
{
	return api_reply_object(r, "re_", db_refund_get, "refund");
}

int api_refunds_update(struct http_req *r)
{
	return api_reply_update(r, UPDATEREQ_REFUND, db_refund_update);
}

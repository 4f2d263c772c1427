/*
 * api_charges.c - POST /v1/charges (alias POST /charge), POST /v1/charges/{id}/capture,
 * GET /v1/charges/{id} and POST /v1/charges/{id} (update).
 */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "capturereq.h"
#include "cfg.h"
#include "chargereq.h"
#include "db.h"
#include "db_charge.h"
#include "db_processor.h"
#include "err.h"
#include "ids.h"
#include "replaycache.h"
#include "timing.h"

/*
 * The 402 body of a declined charge: the card_error plus the stored charge's
 * id and the decline code, as Stripe returns it. Caller frees with free().
 */
static char *api_decline_body(const struct chargereq *req, const char *charge_id)
{
	json_t *obj = http_error_object(PAY_ECARD_DECLINED, NULL,
					charge_failure_message(req->outcome));
	json_t *err = obj ? json_object_get(obj, "error") : NULL;   /* borrowed */
	char *text = NULL;

	if (err == NULL)
		goto out;
	json_object_set_new(err, "charge", json_string(charge_id));
	json_object_set_new(err, "decline_code", json_string(charge_decline_code(req->outcome)));
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(obj);
	return text;
}

/*
 * Processor mode: what the processor cannot be asked for. An authorization
 * (capture=false) is not carried to the processor yet; and the processor
 * charge's metadata holds our charge id besides the client's keys, so one
 * key must be left free. Returns PAY_OK, or an error already replied.
 */
static int api_processor_refuse_or_reply(struct http_req *r, const struct chargereq *req)
{
	json_t *meta = json_object_get(req->root, "metadata");   /* borrowed */

	if (!req->capture) {
		http_reply_error(r, PAY_EPARAM_INVALID, "capture",
				 "capture=false is not available in processor mode.");
		return PAY_EPARAM_INVALID;
	}
	if (json_object_size(meta) >= CHARGE_METADATA_MAX_KEYS) {
		http_reply_error(r, PAY_EMETADATA, "metadata",
				 "In processor mode metadata holds at most 49 keys"
				 " (the processor's copy adds payments_charge).");
		return PAY_EMETADATA;
	}
	return PAY_OK;
}

int api_charges_create(struct http_req *r)
{
	const struct cfg *cfg = r->app->cfg;
	bool processor = cfg->processor_url != NULL && cfg->processor_url[0] != '\0';
	char charge_id[IDS_MAX], event_id[IDS_MAX];
	struct db_idem_result res = { 0 };
	struct db_charge_new in = { 0 };
	struct chargereq req = { 0 };
	struct body_error berr = { 0 };
	struct db_conn *conn = NULL;
	struct replaycache_hit hit = { 0 };
	const char *key = NULL;
	char *decline_body = NULL;
	long long read_ms;
	int rc;

	if (http_read_body_or_reply(r) != PAY_OK || api_idempotency_key_or_reply(r, &key) != PAY_OK)
		goto out;
	rc = chargereq_parse_as(&req, r->body, r->body_len, r->body_format, &berr);
	if (rc != PAY_OK) {
		http_reply_error(r, berr.err, berr.param, berr.message);
		goto out;
	}
	if (processor && api_processor_refuse_or_reply(r, &req) != PAY_OK)
		goto out;
	/*
	 * A retry of a response this process read lately is answered from memory:
	 * it cannot have changed since it committed (see replaycache.h). Processor
	 * mode's path is not cached (create_charge_pending says nothing of expiry).
	 */
	read_ms = timing_now_ms();
	if (!processor && replaycache_find(r->app->replays, r->user_id, key, req.fingerprint, read_ms,
					   &hit)) {
		res = (struct db_idem_result){ .outcome = DB_IDEM_REPLAYED, .status = hit.status,
					       .body = hit.body, .body_len = hit.body_len,
					       .expires_in_ms = -1 };
		hit.body = NULL;   /* res owns it now */
		api_reply_idempotent(r, PAY_OK, &res);
		goto out;
	}
	ids_generate(charge_id, sizeof(charge_id), "ch_");
	ids_generate(event_id, sizeof(event_id), "evt_");
	if (req.outcome != CHARGE_SUCCEEDED && !processor) {
		decline_body = api_decline_body(&req, charge_id);
		if (decline_body == NULL) {
			http_reply_error(r, PAY_ENOMEM, NULL, NULL);
			goto out;
		}
	}
	in.user_id = r->user_id;
	in.idempotency_key = key;
	in.fingerprint = req.fingerprint;
	in.ttl_ms = cfg->idempotency_ttl_ms;
	in.wait_ms = cfg->idempotency_wait_ms;
	in.charge_id = charge_id;
	in.event_id = event_id;
	in.amount = req.amount;
	in.currency = req.currency;
	in.source = req.source;
	in.description = req.description;
	in.metadata_json = req.metadata_json;
	in.failure_code = charge_failure_code(req.outcome);
	in.decline_code = charge_decline_code(req.outcome);
	in.error_body = decline_body;
	in.request_id = r->request_id;
	in.capture = req.capture;

	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = processor ? db_processor_create(conn, &in, &res) : db_charge_create(conn, &in, &res);
		db_pool_release(r->app->pool, conn);
	}
	if (rc == PAY_OK && res.outcome != DB_IDEM_MISMATCH && !processor)
		replaycache_put(r->app->replays, r->user_id, key, req.fingerprint, res.status, res.body,
				res.body_len, read_ms, res.expires_in_ms);
	api_reply_idempotent(r, rc, &res);
out:
	db_idem_result_fini(&res);
	chargereq_fini(&req);
	free(decline_body);
	return r->status;
}

int api_charges_capture(struct http_req *r)
{
	const struct cfg *cfg = r->app->cfg;
	char event_id[IDS_MAX];
	struct db_idem_result res = { 0 };
	struct db_charge_capture in = { 0 };
	struct capturereq req = { 0 };
	struct body_error berr = { 0 };
	struct db_conn *conn = NULL;
	const char *key = NULL;
	int rc;

	if (http_read_body_or_reply(r) != PAY_OK || api_idempotency_key_or_reply(r, &key) != PAY_OK)
		goto out;
	/* A malformed id cannot exist: answer 404 without asking the database. */
	if (!ids_valid(r->path_id, "ch_")) {
		http_reply_error(r, PAY_ENOT_FOUND, "id", "No such charge.");
		goto out;
	}
	rc = capturereq_parse_as(&req, r->path_id, r->body, r->body_len, r->body_format, &berr);
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
	in.charge_id = r->path_id;
	in.amount = req.amount;
	in.has_amount = req.has_amount;
	in.event_id = event_id;
	in.request_id = r->request_id;

	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc == PAY_OK) {
		rc = db_charge_capture(conn, &in, &res);
		db_pool_release(r->app->pool, conn);
	}
	if (rc == PAY_ENOT_FOUND)
		http_reply_error(r, rc, "id", "No such charge.");
	else if (rc == PAY_EAMOUNT_TOO_LARGE)
		http_reply_error(r, rc, "amount",
				 "Capture amount is greater than the amount authorized on the charge.");
	else
		api_reply_idempotent(r, rc, &res);
out:
	db_idem_result_fini(&res);
	capturereq_fini(&req);
	return r->status;
}

int api_charges_get(struct http_req *r)
{
	return api_reply_object(r, "ch_", db_charge_get, "charge");
}

int api_charges_update(struct http_req *r)
{
	return api_reply_update(r, UPDATEREQ_CHARGE, db_charge_update);
}

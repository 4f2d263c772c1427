/* db_charge.c - charge queries: the one-round-trip create, capture and update, and the scoped read. */
#include "db_charge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_stmt.h"
#include "err.h"

int db_charge_create(struct db_conn *c, const struct db_charge_new *in, struct db_idem_result *out)
{
	struct db_params p = { 0 };
	struct db_idem_key k = { in->user_id, in->idempotency_key, in->fingerprint, in->ttl_ms,
				 in->wait_ms };
	char nums[2][24], amount[24];

	snprintf(amount, sizeof(amount), "%lld", in->amount);
	db_idem_bind(&p, nums, &k);
	db_param_text(&p, in->charge_id);
	db_param_text(&p, in->event_id);
	db_param_text(&p, amount);
	db_param_text(&p, in->currency);
	db_param_text(&p, in->source);
	db_param_text(&p, in->description);
	db_param_text(&p, in->metadata_json);
	db_param_text(&p, in->failure_code);
	db_param_text(&p, in->decline_code);
	db_param_text(&p, in->error_body);
	db_param_text(&p, in->request_id);
	db_param_text(&p, in->capture ? "true" : "false");
	return db_idem_exec(c, DB_STMT_CHARGE_CREATE, &p, out);
}

int db_charge_capture(struct db_conn *c, const struct db_charge_capture *in,
		      struct db_idem_result *out)
{
	struct db_params p = { 0 };
	struct db_idem_key k = { in->user_id, in->idempotency_key, in->fingerprint, in->ttl_ms,
				 in->wait_ms };
	char nums[2][24], amount[24];

	snprintf(amount, sizeof(amount), "%lld", in->amount);
	db_idem_bind(&p, nums, &k);
	db_param_text(&p, in->charge_id);
	db_param_text(&p, in->has_amount ? amount : NULL);
	db_param_text(&p, in->event_id);
	db_param_text(&p, in->request_id);
	/* Refusals come back as their errors (PR021... in err.c). */
	return db_idem_exec(c, DB_STMT_CHARGE_CAPTURE, &p, out);
}

int db_charge_update(struct db_conn *c, const struct db_update *in, struct db_idem_result *out)
{
	struct db_params p = { 0 };
	struct db_idem_key k = { in->user_id, in->idempotency_key, in->fingerprint, in->ttl_ms,
				 in->wait_ms };
	char nums[2][24], max[16];

	snprintf(max, sizeof(max), "%d", in->metadata_max);
	db_idem_bind(&p, nums, &k);
	db_param_text(&p, in->id);
	db_param_text(&p, in->description);
	db_param_text(&p, in->metadata_json);
	db_param_text(&p, max);
	db_param_text(&p, in->event_id);
	db_param_text(&p, in->request_id);
	/* Refusals come back as their errors (PR404, PR409, PR051 in err.c). */
	return db_idem_exec(c, DB_STMT_CHARGE_UPDATE, &p, out);
}

int db_charge_expire(struct db_conn *c, long long ttl_ms, int batch, long long *expired)
{
	struct db_params p = { 0 };
	char ttl[24], limit[16], *v = NULL;
	int rc;

	*expired = 0;
	snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
	snprintf(limit, sizeof(limit), "%d", batch);
	db_param_text(&p, ttl);
	db_param_text(&p, limit);
	rc = db_query_text(c, DB_STMT_CHARGE_EXPIRE, &p, &v);
	if (rc == PAY_OK)
		*expired = atoll(v);
	free(v);
	return rc;
}

int db_charge_get(struct db_conn *c, const char *user_id, const char *id, char **json)
{
	struct db_params p = { 0 };

	db_param_text(&p, id);
	db_param_text(&p, user_id);
	return db_query_text(c, DB_STMT_CHARGE_GET, &p, json);
}

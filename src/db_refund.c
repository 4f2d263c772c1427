/* db_refund.c - refund queries: the one-round-trip create and update, and the scoped read. */
#include "db_refund.h"

#include <stdio.h>
#include <string.h>

#include "db_stmt.h"
#include "err.h"

int db_refund_create(struct db_conn *c, const struct db_refund_new *in, struct db_idem_result *out)
{
	struct db_params p = { 0 };
	struct db_idem_key k = { in->user_id, in->idempotency_key, in->fingerprint, in->ttl_ms,
				 in->wait_ms };
	char nums[2][24], amount[24];

	snprintf(amount, sizeof(amount), "%lld", in->amount);
	db_idem_bind(&p, nums, &k);
	db_param_text(&p, in->refund_id);
	db_param_text(&p, in->charge_id);
	db_param_text(&p, in->has_amount ? amount : NULL);
	db_param_text(&p, in->reason);
	db_param_text(&p, in->metadata_json);
	db_param_text(&p, in->request_id);
	db_param_text(&p, in->refund_event_id);
	db_param_text(&p, in->charge_event_id);
	/* Refusals come back as their errors (PR001... in err.c). */
	return db_idem_exec(c, DB_STMT_REFUND_CREATE, &p, out);
}

int db_refund_update(struct db_conn *c, const struct db_update *in, struct db_idem_result *out)
{
	struct db_params p = { 0 };
	struct db_idem_key k = { in->user_id, in->idempotency_key, in->fingerprint, in->ttl_ms,
				 in->wait_ms };
	char nums[2][24], max[16];

	snprintf(max, sizeof(max), "%d", in->metadata_max);
	db_idem_bind(&p, nums, &k);
	db_param_text(&p, in->id);
	db_param_text(&p, in->metadata_json);
	db_param_text(&p, max);
	db_param_text(&p, in->event_id);
	db_param_text(&p, in->request_id);
	/* Refusals come back as their errors (PR404, PR409, PR051 in err.c). */
	return db_idem_exec(c, DB_STMT_REFUND_UPDATE, &p, out);
}

int db_refund_get(struct db_conn *c, const char *user_id, const char *id, char **json)
{
	struct db_params p = { 0 };

	db_param_text(&p, id);
	db_param_text(&p, user_id);
	return db_query_text(c, DB_STMT_REFUND_GET, &p, json);
}

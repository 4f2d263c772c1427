/* db_charge.c - charge queries: the one-round-trip create and the scoped read. */
#include "db_charge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int db_charge_create(struct db_conn *c, const struct db_charge_new *in, struct db_charge_result *out)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	char ttl[24], wait[24], amount[24];
	const char *outcome, *status, *body;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(ttl, sizeof(ttl), "%lld", in->ttl_ms);
	snprintf(wait, sizeof(wait), "%lld", in->wait_ms);
	snprintf(amount, sizeof(amount), "%lld", in->amount);
	db_param_text(&p, in->user_id);
	db_param_text(&p, in->idempotency_key);
	db_param_binary(&p, in->fingerprint, 32);
	db_param_text(&p, ttl);
	db_param_text(&p, wait);
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

	rc = db_exec(c, DB_STMT_CREATE_CHARGE, &p, false, &r);
	if (rc != PAY_OK) {
		/* lock_not_available: the first request with this key is still running. */
		if (strcmp(db_conn_sqlstate(c), "55P03") == 0)
			rc = PAY_EIDEM_IN_USE;
		goto out;
	}
	if (db_result_rows(r) != 1) {
		rc = PAY_EINTERNAL;
		goto out;
	}
	outcome = db_value(r, 0, 0);
	status = db_value(r, 0, 1);
	body = db_value(r, 0, 2);
	if (outcome == NULL || status == NULL) {
		rc = PAY_EINTERNAL;
		goto out;
	}
	out->status = atoi(status);
	if (strcmp(outcome, "created") == 0)
		out->outcome = DB_CHARGE_CREATED;
	else if (strcmp(outcome, "replayed") == 0)
		out->outcome = DB_CHARGE_REPLAYED;
	else
		out->outcome = DB_CHARGE_MISMATCH;
	if (body != NULL) {
		out->body_len = (size_t)db_value_length(r, 0, 2);
		out->body = malloc(out->body_len + 1);
		if (out->body == NULL) {
			rc = PAY_ENOMEM;
			goto out;
		}
		memcpy(out->body, body, out->body_len + 1);
	}
	rc = PAY_OK;
out:
	db_result_free(r);
	return rc;
}

void db_charge_result_fini(struct db_charge_result *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int db_charge_get(struct db_conn *c, const char *user_id, const char *id, char **json)
{
	struct db_params p = { 0 };

	db_param_text(&p, id);
	db_param_text(&p, user_id);
	return db_query_text(c, DB_STMT_GET_CHARGE, &p, json);
}

/* db_idem.c - idempotency rows: running an idempotent create and reading its answer, and the batched purge. */
#include "db_idem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_stmt.h"
#include "err.h"

int db_idem_purge(struct db_conn *c, int batch, long long *deleted)
{
	struct db_params p = { 0 };
	char *v = NULL;
	char limit[16];
	int rc;

	*deleted = 0;
	snprintf(limit, sizeof(limit), "%d", batch);
	db_param_text(&p, limit);
	rc = db_query_text(c, DB_STMT_IDEM_PURGE, &p, &v);
	if (rc == PAY_OK)
		*deleted = atoll(v);
	free(v);
	return rc;
}

void db_idem_bind(struct db_params *p, char nums[2][24], const struct db_idem_key *k)
{
	snprintf(nums[0], 24, "%lld", k->ttl_ms);
	snprintf(nums[1], 24, "%lld", k->wait_ms);
	db_param_text(p, k->user_id);
	db_param_text(p, k->idempotency_key);
	db_param_binary(p, k->fingerprint, 32);
	db_param_text(p, nums[0]);
	db_param_text(p, nums[1]);
}

int db_idem_exec(struct db_conn *c, enum db_stmt stmt, const struct db_params *p,
		 struct db_idem_result *out)
{
	struct db_result *r = NULL;
	const char *outcome, *status, *body;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = db_exec(c, stmt, p, false, &r);
	if (rc != PAY_OK) {
		/* lock_not_available: the first request with this key is still running. */
		if (strcmp(db_conn_sqlstate(c), "55P03") == 0)
			rc = PAY_EIDEM_IN_USE;
		goto out;
	}
	outcome = db_result_rows(r) == 1 ? db_value(r, 0, 0) : NULL;
	status = outcome ? db_value(r, 0, 1) : NULL;
	body = outcome ? db_value(r, 0, 2) : NULL;
	if (outcome == NULL || status == NULL) {
		rc = PAY_EINTERNAL;
		goto out;
	}
	out->status = atoi(status);
	out->expires_in_ms = -1;
	if (db_result_fields(r) > 3 && db_value(r, 0, 3) != NULL)
		out->expires_in_ms = atoll(db_value(r, 0, 3));
	if (strcmp(outcome, "created") == 0)
		out->outcome = DB_IDEM_CREATED;
	else if (strcmp(outcome, "replayed") == 0)
		out->outcome = DB_IDEM_REPLAYED;
	else
		out->outcome = DB_IDEM_MISMATCH;
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

void db_idem_result_fini(struct db_idem_result *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

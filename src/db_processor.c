/* db_processor.c - processor mode's queries: the pending create, claiming, recording outcomes, status. */
#include "db_processor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_stmt.h"
#include "err.h"

int db_processor_create(struct db_conn *c, const struct db_charge_new *in,
			struct db_idem_result *out)
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
	db_param_text(&p, in->request_id);
	return db_idem_exec(c, DB_STMT_PROCESSOR_CREATE, &p, out);
}

static void db_processor_job_fini(struct db_processor_job *j)
{
	free(j->charge_id);
	free(j->user_id);
	free(j->currency);
	free(j->source);
	free(j->description);
	free(j->metadata);
	memset(j, 0, sizeof(*j));
}

void db_processor_jobs_free(struct db_processor_job *jobs, int n)
{
	int i;

	for (i = 0; jobs != NULL && i < n; i++)
		db_processor_job_fini(&jobs[i]);
	free(jobs);
}

/* strdup of a value that may be NULL; sets *bad when a non-NULL copy failed. */
static char *db_processor_dup(const char *v, int *bad)
{
	char *s;

	if (v == NULL)
		return NULL;
	s = strdup(v);
	if (s == NULL)
		*bad = 1;
	return s;
}

int db_processor_claim(struct db_conn *c, int batch, long long lease_ms,
		       struct db_processor_job **jobs, int *n)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	struct db_processor_job *js = NULL;
	char b[16], l[24];
	int i, rows, bad = 0, rc;

	*jobs = NULL;
	*n = 0;
	snprintf(b, sizeof(b), "%d", batch);
	snprintf(l, sizeof(l), "%lld", lease_ms);
	db_param_text(&p, b);
	db_param_text(&p, l);
	rc = db_exec(c, DB_STMT_PROCESSOR_CLAIM, &p, false, &r);
	if (rc != PAY_OK)
		goto out;
	rows = db_result_rows(r);
	if (rows == 0)
		goto out;
	js = calloc((size_t)rows, sizeof(*js));
	if (js == NULL) {
		rc = PAY_ENOMEM;
		goto out;
	}
	for (i = 0; i < rows; i++) {
		js[i].charge_id = db_processor_dup(db_value(r, i, 0), &bad);
		js[i].user_id = db_processor_dup(db_value(r, i, 1), &bad);
		js[i].amount = atoll(db_value(r, i, 2));
		js[i].currency = db_processor_dup(db_value(r, i, 3), &bad);
		js[i].source = db_processor_dup(db_value(r, i, 4), &bad);
		js[i].description = db_processor_dup(db_value(r, i, 5), &bad);
		js[i].metadata = db_processor_dup(db_value(r, i, 6), &bad);
		js[i].attempts = atoi(db_value(r, i, 7));
		js[i].age_ms = atoll(db_value(r, i, 8));
		js[i].flagged = strcmp(db_value(r, i, 9), "t") == 0;
	}
	if (bad) {
		/* The leases run out on their own: nothing to give back. */
		db_processor_jobs_free(js, rows);
		js = NULL;
		rc = PAY_ENOMEM;
		goto out;
	}
	*jobs = js;   /* ownership passes to the caller */
	*n = rows;
out:
	db_result_free(r);
	return rc;
}

int db_processor_resolve(struct db_conn *c, const char *charge_id, const char *status,
			 const char *failure_code, const char *decline_code, const char *ref,
			 const char *event_id, char now_status[16])
{
	struct db_params p = { 0 };
	char *v = NULL;
	int rc;

	now_status[0] = '\0';
	db_param_text(&p, charge_id);
	db_param_text(&p, status);
	db_param_text(&p, failure_code);
	db_param_text(&p, decline_code);
	db_param_text(&p, ref);
	db_param_text(&p, event_id);
	rc = db_query_text(c, DB_STMT_PROCESSOR_RESOLVE, &p, &v);
	if (rc == PAY_ENOT_FOUND)
		rc = PAY_OK;   /* NULL: no such charge */
	else if (rc == PAY_OK)
		snprintf(now_status, 16, "%s", v);
	free(v);
	return rc;
}

int db_processor_defer(struct db_conn *c, const char *charge_id, long long delay_ms,
		       const char *error, long long max_wait_ms, const char *event_id,
		       bool *flagged)
{
	struct db_params p = { 0 };
	char d[24], w[24], *v = NULL;
	int rc;

	*flagged = false;
	snprintf(d, sizeof(d), "%lld", delay_ms);
	snprintf(w, sizeof(w), "%lld", max_wait_ms);
	db_param_text(&p, charge_id);
	db_param_text(&p, d);
	db_param_text(&p, error);
	db_param_text(&p, w);
	db_param_text(&p, event_id);
	rc = db_query_text(c, DB_STMT_PROCESSOR_DEFER, &p, &v);
	if (rc == PAY_OK)
		*flagged = strcmp(v, "true") == 0;
	free(v);
	return rc;
}

int db_processor_status(struct db_conn *c, struct db_processor_status *st)
{
	struct db_result *r = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = db_exec(c, DB_STMT_PROCESSOR_STATUS, NULL, false, &r);
	if (rc != PAY_OK)
		goto out;
	st->pending = atoll(db_value(r, 0, 0));
	st->oldest_pending_s = atof(db_value(r, 0, 1));
	st->flagged = atoll(db_value(r, 0, 2));
out:
	db_result_free(r);
	return rc;
}

int db_processor_ours(struct db_conn *c, long long since, const char *ids_json,
		      struct db_processor_ours **rows, int *n)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	struct db_processor_ours *out = NULL;
	char s[24];
	int i, count, rc;

	*rows = NULL;
	*n = 0;
	snprintf(s, sizeof(s), "%lld", since);
	db_param_text(&p, s);
	db_param_text(&p, ids_json);
	rc = db_exec(c, DB_STMT_PROCESSOR_OURS, &p, false, &r);
	if (rc != PAY_OK)
		goto out;
	count = db_result_rows(r);
	if (count == 0)
		goto out;
	out = calloc((size_t)count, sizeof(*out));
	if (out == NULL) {
		rc = PAY_ENOMEM;
		goto out;
	}
	for (i = 0; i < count; i++) {
		snprintf(out[i].id, sizeof(out[i].id), "%s", db_value(r, i, 0));
		snprintf(out[i].status, sizeof(out[i].status), "%s", db_value(r, i, 1));
		out[i].amount = atoll(db_value(r, i, 2));
		snprintf(out[i].ref, sizeof(out[i].ref), "%s", db_value(r, i, 3));
	}
	*rows = out;   /* ownership passes to the caller */
	*n = count;
out:
	db_result_free(r);
	return rc;
}

/* db_relay.c - the relay's queries: fan-out, claiming, recording attempts, replay, status. */
#include "db_relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db_stmt.h"
#include "err.h"

int db_relay_fanout(struct db_conn *c, int batch, int *n)
{
	struct db_params p = { 0 };
	char limit[16], *v = NULL;
	int rc;

	*n = 0;
	snprintf(limit, sizeof(limit), "%d", batch);
	db_param_text(&p, limit);
	rc = db_query_text(c, DB_STMT_RELAY_FANOUT, &p, &v);
	if (rc == PAY_OK)
		*n = atoi(v);
	free(v);
	return rc;
}

void db_relay_job_fini(struct db_delivery_job *job)
{
	free(job->url);
	free(job->secret);
	free(job->body);
	job->url = job->secret = job->body = NULL;
}

void db_relay_jobs_free(struct db_delivery_job *jobs, int n)
{
	int i;

	for (i = 0; jobs != NULL && i < n; i++)
		db_relay_job_fini(&jobs[i]);
	free(jobs);
}

/* Fills one claimed element from row i of r. Returns PAY_OK or PAY_ENOMEM; what it did allocate is left for the fini. */
typedef int (*db_claim_fill_fn)(void *elem, const struct db_result *r, int i);
/* Frees what a fill allocated in one element (safe on a zeroed or half-filled one). */
typedef void (*db_claim_fini_fn)(void *elem);

/*
 * Runs a claim statement with parameters p and copies its rows out into a
 * new array of elements of size bytes, one fill per row. On PAY_OK *rows
 * (NULL when nothing was due) holds *n elements and belongs to the caller;
 * on failure nothing is kept.
 */
static int db_relay_claim_rows(struct db_conn *c, enum db_stmt stmt, const struct db_params *p,
			       size_t size, db_claim_fill_fn fill, db_claim_fini_fn fini, void **rows,
			       int *n)
{
	struct db_result *r = NULL;
	char *elems = NULL;
	int i, count = 0, rc;

	*rows = NULL;
	*n = 0;
	rc = db_exec(c, stmt, p, false, &r);
	if (rc != PAY_OK)
		goto out;
	count = db_result_rows(r);
	if (count == 0)
		goto out;
	elems = calloc((size_t)count, size);
	if (elems == NULL) {
		rc = PAY_ENOMEM;
		goto out;
	}
	for (i = 0; i < count && rc == PAY_OK; i++)
		rc = fill(elems + (size_t)i * size, r, i);
	if (rc != PAY_OK)
		goto out;
	*rows = elems;   /* ownership passes to the caller */
	*n = count;
	elems = NULL;
out:
	for (i = 0; elems != NULL && i < count; i++)
		fini(elems + (size_t)i * size);
	free(elems);
	db_result_free(r);
	return rc;
}

/* The columns of DB_STMT_RELAY_CLAIM, into a struct db_delivery_job. */
static int db_relay_delivery_fill(void *elem, const struct db_result *r, int i)
{
	struct db_delivery_job *j = elem;

	snprintf(j->delivery_id, IDS_MAX, "%s", db_value(r, i, 0));
	snprintf(j->event_id, IDS_MAX, "%s", db_value(r, i, 1));
	snprintf(j->endpoint_id, IDS_MAX, "%s", db_value(r, i, 2));
	j->attempts = atoi(db_value(r, i, 3));
	j->url = strdup(db_value(r, i, 4));
	j->secret = strdup(db_value(r, i, 5));
	j->body = strdup(db_value(r, i, 6));
	j->body_len = (size_t)db_value_length(r, i, 6);
	snprintf(j->lease, sizeof(j->lease), "%s", db_value(r, i, 7));
	j->created = atof(db_value(r, i, 8));
	return j->url != NULL && j->secret != NULL && j->body != NULL ? PAY_OK : PAY_ENOMEM;
}

static void db_relay_delivery_fini(void *elem)
{
	db_relay_job_fini(elem);
}

int db_relay_claim(struct db_conn *c, int batch, int per_endpoint, const struct db_endpoint_load *load,
		   int nload, long long lease_ms, struct db_delivery_job **jobs, int *n)
{
	struct db_params p = { 0 };
	char limit[16], lease[24], share[16], *in_flight = NULL;
	json_t *obj = json_object();
	void *rows = NULL;
	int i, rc = PAY_ENOMEM;

	*jobs = NULL;
	*n = 0;
	/* {"we_...": attempts in flight}: the endpoints that already hold part of their share. */
	for (i = 0; obj != NULL && i < nload; i++) {
		if (json_object_set_new(obj, load[i].endpoint_id, json_integer(load[i].in_flight)) != 0)
			goto out;
	}
	in_flight = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	if (in_flight == NULL)
		goto out;
	snprintf(limit, sizeof(limit), "%d", batch);
	snprintf(lease, sizeof(lease), "%lld", lease_ms);
	snprintf(share, sizeof(share), "%d", per_endpoint);
	db_param_text(&p, limit);
	db_param_text(&p, lease);
	db_param_text(&p, share);
	db_param_text(&p, in_flight);
	rc = db_relay_claim_rows(c, DB_STMT_RELAY_CLAIM, &p, sizeof(**jobs), db_relay_delivery_fill,
				 db_relay_delivery_fini, &rows, n);
	*jobs = rows;
out:
	free(in_flight);
	json_decref(obj);
	return rc;
}

int db_relay_record(struct db_conn *c, const struct db_delivery_outcome *o, int n)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	json_t *arr = json_array();
	char *text = NULL;
	int i, rc = PAY_ENOMEM;

	if (arr == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		json_t *row = json_pack("{s:s, s:s, s:b, s:o, s:s?, s:i, s:I, s:b}",
					"id", o[i].delivery_id, "lease", o[i].lease, "ok", o[i].ok,
					"code", o[i].status_code ? json_integer(o[i].status_code) : json_null(),
					"error", o[i].error, "duration_ms", o[i].duration_ms,
					"delay_ms", (json_int_t)o[i].delay_ms, "dead", o[i].dead);

		if (row == NULL || json_array_append_new(arr, row) != 0)
			goto out;
	}
	text = json_dumps(arr, JSON_COMPACT);
	if (text == NULL)
		goto out;
	db_param_text(&p, text);
	rc = db_exec(c, DB_STMT_RELAY_RECORD, &p, false, &r);
out:
	db_result_free(r);
	free(text);
	json_decref(arr);
	return rc;
}

int db_relay_release(struct db_conn *c, const struct db_delivery_job *const *jobs, int n)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	json_t *arr = json_array();
	char *text = NULL;
	int i, rc = PAY_ENOMEM;

	for (i = 0; arr != NULL && i < n; i++) {
		if (json_array_append_new(arr, json_pack("{s:s, s:s}", "id", jobs[i]->delivery_id,
							 "lease", jobs[i]->lease)) != 0)
			goto out;
	}
	text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	if (text == NULL)
		goto out;
	db_param_text(&p, text);
	rc = db_exec(c, DB_STMT_RELAY_RELEASE, &p, false, &r);
out:
	db_result_free(r);
	free(text);
	json_decref(arr);
	return rc;
}

int db_relay_replay_dead(struct db_conn *c, const char *endpoint_id, long long *n)
{
	struct db_params p = { 0 };
	char *v = NULL;
	int rc;

	*n = 0;
	db_param_text(&p, endpoint_id);
	rc = db_query_text(c, DB_STMT_RELAY_REPLAY_DEAD, &p, &v);
	if (rc == PAY_OK)
		*n = atoll(v);
	free(v);
	return rc;
}

int db_relay_status(struct db_conn *c, struct db_relay_status *st)
{
	struct db_result *r = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = db_exec(c, DB_STMT_RELAY_STATUS, NULL, false, &r);
	if (rc != PAY_OK)
		goto out;
	st->unpublished = atoll(db_value(r, 0, 0));
	st->oldest_unpublished_s = atof(db_value(r, 0, 1));
	st->pending_deliveries = atoll(db_value(r, 0, 2));
	st->oldest_due_s = atof(db_value(r, 0, 3));
	st->dead_deliveries = atoll(db_value(r, 0, 4));
out:
	db_result_free(r);
	return rc;
}

/* Runs one of the purge statements (retention_ms, batch); *n is how many events were deleted. */
static int db_event_purge_with(struct db_conn *c, enum db_stmt stmt, long long retention_ms, int batch,
			       long long *n)
{
	struct db_params p = { 0 };
	char *v = NULL;
	char ret[24], limit[16];
	int rc;

	*n = 0;
	snprintf(ret, sizeof(ret), "%lld", retention_ms);
	snprintf(limit, sizeof(limit), "%d", batch);
	db_param_text(&p, ret);
	db_param_text(&p, limit);
	rc = db_query_text(c, stmt, &p, &v);
	if (rc == PAY_OK)
		*n = atoll(v);
	free(v);
	return rc;
}

int db_event_purge(struct db_conn *c, long long retention_ms, int batch, long long *n)
{
	return db_event_purge_with(c, DB_STMT_EVENT_PURGE, retention_ms, batch, n);
}

int db_event_purge_nats(struct db_conn *c, long long retention_ms, int batch, long long *n)
{
	return db_event_purge_with(c, DB_STMT_EVENT_PURGE_NATS, retention_ms, batch, n);
}

/* The columns of DB_STMT_RELAY_NATS_CLAIM, into a struct db_nats_job. */
static int db_relay_nats_fill(void *elem, const struct db_result *r, int i)
{
	struct db_nats_job *j = elem;

	j->seq = atoll(db_value(r, i, 0));
	snprintf(j->event_id, IDS_MAX, "%s", db_value(r, i, 1));
	j->type = strdup(db_value(r, i, 2));
	j->body = strdup(db_value(r, i, 3));
	j->body_len = (size_t)db_value_length(r, i, 3);
	return j->type != NULL && j->body != NULL ? PAY_OK : PAY_ENOMEM;
}

static void db_relay_nats_fini(void *elem)
{
	struct db_nats_job *j = elem;

	free(j->type);
	free(j->body);
}

void db_relay_nats_jobs_free(struct db_nats_job *jobs, int n)
{
	int i;

	for (i = 0; jobs != NULL && i < n; i++)
		db_relay_nats_fini(&jobs[i]);
	free(jobs);
}

int db_relay_nats_claim(struct db_conn *c, int batch, long long lease_ms, struct db_nats_job **jobs,
			int *n)
{
	struct db_params p = { 0 };
	char limit[16], lease[24];
	void *rows = NULL;
	int rc;

	snprintf(limit, sizeof(limit), "%d", batch);
	snprintf(lease, sizeof(lease), "%lld", lease_ms);
	db_param_text(&p, limit);
	db_param_text(&p, lease);
	rc = db_relay_claim_rows(c, DB_STMT_RELAY_NATS_CLAIM, &p, sizeof(**jobs), db_relay_nats_fill,
				 db_relay_nats_fini, &rows, n);
	*jobs = rows;
	return rc;
}

/* Formats n numbers as a PostgreSQL array literal, e.g. "{1,2,3}". Returns a malloc'd string or NULL. */
static char *db_bigint_array(const long long *v, int n)
{
	size_t size = (size_t)n * 21 + 3, len = 1;
	char *s = malloc(size);
	int i;

	if (s == NULL)
		return NULL;
	s[0] = '{';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, size - len, i ? ",%lld" : "%lld", v[i]);
	snprintf(s + len, size - len, "}");
	return s;
}

int db_relay_nats_record(struct db_conn *c, const long long *published, int npub,
			 const long long *failed, int nfail)
{
	struct db_params p = { 0 };
	char *pub = db_bigint_array(published, npub), *fail = db_bigint_array(failed, nfail), *v = NULL;
	int rc = PAY_ENOMEM;

	if (pub == NULL || fail == NULL)
		goto out;
	db_param_text(&p, pub);
	db_param_text(&p, fail);
	rc = db_query_text(c, DB_STMT_RELAY_NATS_RECORD, &p, &v);
out:
	free(v);
	free(pub);
	free(fail);
	return rc;
}

int db_relay_nats_status(struct db_conn *c, long long *unpublished, double *oldest_s)
{
	struct db_result *r = NULL;
	int rc;

	*unpublished = 0;
	*oldest_s = 0;
	rc = db_exec(c, DB_STMT_RELAY_NATS_STATUS, NULL, false, &r);
	if (rc != PAY_OK)
		goto out;
	*unpublished = atoll(db_value(r, 0, 0));
	*oldest_s = atof(db_value(r, 0, 1));
out:
	db_result_free(r);
	return rc;
}

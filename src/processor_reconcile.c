/*
 * processor_reconcile.c - 'payments processor reconcile': our processor-mode
 * charges against the processor's list of charges for the same period,
 * matched by our charge id (the processor charge's metadata[payments_charge]).
 */
#include "processor.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "db_processor.h"
#include "err.h"
#include "ids.h"

/* Pages are fetched until has_more is false; this bounds a runaway processor. */
#define RECONCILE_MAX_PAGES 100000

static int reconcile_by_our_id(const void *a, const void *b)
{
	return strcmp(((const struct processor_listed *)a)->our_id,
		      ((const struct processor_listed *)b)->our_id);
}

static int reconcile_by_id(const void *a, const void *b)
{
	return strcmp(((const struct db_processor_ours *)a)->id,
		      ((const struct db_processor_ours *)b)->id);
}

/* Every charge the processor lists since since, into *all (*n of them; free()). */
static int reconcile_fetch(void *ctx, long long since, struct processor_listed **all, int *n)
{
	struct processor_page page = { 0 };
	struct processor_listed *grown;
	char after[128] = "";
	int pages = 0, rc;

	*all = NULL;
	*n = 0;
	do {
		rc = processor_stripe.list(ctx, since, after[0] ? after : NULL, &page);
		if (rc != PAY_OK)
			break;
		if (page.n > 0) {
			grown = realloc(*all, (size_t)(*n + page.n) * sizeof(**all));
			if (grown == NULL) {
				rc = PAY_ENOMEM;
				break;
			}
			*all = grown;
			memcpy(*all + *n, page.items, (size_t)page.n * sizeof(**all));
			*n += page.n;
			snprintf(after, sizeof(after), "%s", page.items[page.n - 1].ref);
		}
		free(page.items);
		page.items = NULL;
	} while (page.has_more && page.n > 0 && ++pages < RECONCILE_MAX_PAGES);
	free(page.items);
	return rc;
}

/* The ids of ours the processor names, as a JSON array text (free()), or NULL on ENOMEM. */
static char *reconcile_ids_json(const struct processor_listed *all, int n)
{
	json_t *arr = json_array();
	char *text = NULL;
	int i;

	for (i = 0; arr != NULL && i < n; i++) {
		if (ids_valid(all[i].our_id, "ch_") &&
		    json_array_append_new(arr, json_string(all[i].our_id)) != 0)
			goto out;
	}
	text = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
out:
	json_decref(arr);
	return text;
}

/* Records the processor's outcome for a charge still pending here. Returns PAY_OK or a db error. */
static int reconcile_fix(struct db_conn *conn, const struct db_processor_ours *o,
			 const struct processor_listed *t, bool *fixed)
{
	char event_id[IDS_MAX], now_status[16];
	int rc;

	*fixed = false;
	if (strcmp(t->status, "succeeded") != 0 && strcmp(t->status, "failed") != 0)
		return PAY_OK;
	ids_generate(event_id, sizeof(event_id), "evt_");
	rc = db_processor_resolve(conn, o->id, t->status,
				  strcmp(t->status, "failed") == 0 ?
				  (t->failure_code[0] ? t->failure_code : "card_declined") : NULL,
				  t->decline_code[0] ? t->decline_code : NULL, t->ref, event_id,
				  now_status);
	*fixed = rc == PAY_OK && strcmp(now_status, t->status) == 0;
	return rc;
}

/* Compares one of ours with the processor's charges for it (k of them from t). */
static int reconcile_one(struct db_conn *conn, bool fix, FILE *out,
			 const struct db_processor_ours *o, const struct processor_listed *t, int k,
			 struct processor_figures *fig)
{
	const struct processor_listed *best = t;
	bool fixed = false;
	int i, rc = PAY_OK;

	if (k == 0) {
		if (strcmp(o->status, "succeeded") == 0) {
			fig->missing_at_processor++;
			fprintf(out, "missing_at_processor %s (succeeded here, ref %s)\n", o->id, o->ref);
		} else if (strcmp(o->status, "pending") == 0) {
			fig->pending_unknown++;
		}
		return PAY_OK;
	}
	for (i = 0; i < k; i++) {
		if (strcmp(t[i].status, "succeeded") == 0)
			best = &t[i];
	}
	if (k > 1) {
		fig->duplicates++;
		fprintf(out, "duplicate_at_processor %s (%d charges there)\n", o->id, k);
	}
	if (best->amount != o->amount) {
		fig->amount_mismatches++;
		fprintf(out, "amount_mismatch %s (here %lld, processor %lld on %s)\n", o->id, o->amount,
			best->amount, best->ref);
	}
	if (strcmp(best->status, o->status) != 0) {
		fig->status_mismatches++;
		if (fix && strcmp(o->status, "pending") == 0)
			rc = reconcile_fix(conn, o, best, &fixed);
		if (fixed)
			fig->fixed++;
		fprintf(out, "status_mismatch %s (here %s, processor %s on %s)%s\n", o->id, o->status,
			best->status, best->ref, fixed ? " fixed" : "");
	}
	return rc;
}

int processor_reconcile(const struct cfg *cfg, long long since, bool fix, FILE *out,
			struct processor_figures *fig)
{
	struct processor_listed *all = NULL, key;
	struct db_processor_ours *ours = NULL, probe;
	struct db_conn *conn = NULL;
	void *ctx = NULL;
	char *ids = NULL;
	int n = 0, nours = 0, i, lo, hi, rc = PAY_ENOMEM;

	memset(fig, 0, sizeof(*fig));
	ctx = processor_stripe.create(cfg);
	if (ctx == NULL)
		goto out;
	rc = reconcile_fetch(ctx, since, &all, &n);
	if (rc != PAY_OK) {
		fprintf(stderr, "payments processor reconcile: the processor's list could not be read\n");
		goto out;
	}
	fig->theirs = n;
	qsort(all, (size_t)n, sizeof(*all), reconcile_by_our_id);
	ids = reconcile_ids_json(all, n);
	rc = PAY_ENOMEM;
	if (ids == NULL)
		goto out;
	rc = db_conn_open(cfg->database_url, cfg->db_connect_timeout_ms, &conn);
	if (rc != PAY_OK) {
		fprintf(stderr, "payments processor reconcile: cannot connect to the database\n");
		goto out;
	}
	rc = db_processor_ours(conn, since, ids, &ours, &nours);
	if (rc != PAY_OK)
		goto out;
	fig->ours = nours;
	qsort(ours, (size_t)nours, sizeof(*ours), reconcile_by_id);
	/* Walk ours, each with the run of the processor's charges that name it. */
	for (i = 0; i < nours && rc == PAY_OK; i++) {
		memset(&key, 0, sizeof(key));
		snprintf(key.our_id, sizeof(key.our_id), "%s", ours[i].id);
		for (lo = 0, hi = n; lo < hi;) {
			int mid = lo + (hi - lo) / 2;

			if (reconcile_by_our_id(&all[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (hi = lo; hi < n && strcmp(all[hi].our_id, ours[i].id) == 0; hi++)
			;
		rc = reconcile_one(conn, fix, out, &ours[i], all + lo, hi - lo, fig);
	}
	/* The processor's charges for ids we do not have. */
	for (i = 0; i < n && rc == PAY_OK; i++) {
		if (all[i].our_id[0] == '\0')
			continue;   /* not made by this service */
		snprintf(probe.id, sizeof(probe.id), "%s", all[i].our_id);
		if (bsearch(&probe, ours, (size_t)nours, sizeof(*ours), reconcile_by_id) == NULL) {
			fig->missing_here++;
			fprintf(out, "missing_here %s (processor %s, %s, %lld)\n", all[i].our_id,
				all[i].ref, all[i].status, all[i].amount);
		}
	}
out:
	db_conn_close(conn);
	if (ctx != NULL)
		processor_stripe.destroy(ctx);
	free(all);
	free(ours);
	free(ids);
	return rc;
}

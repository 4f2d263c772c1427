/* migplan.c - planning migrations: the files on disk against the history, what is pending and what is wrong (pure). */
#include "migplan.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

const struct migplan_row *migplan_find_row(const struct migplan_history *h, int version)
{
	int i;

	for (i = 0; i < h->n; i++) {
		if (!h->rows[i].repeatable && h->rows[i].version == version)
			return &h->rows[i];
	}
	return NULL;
}

const struct migplan_row *migplan_find_repeatable_row(const struct migplan_history *h,
						      const char *name)
{
	const struct migplan_row *last = NULL;
	int i;

	for (i = 0; i < h->n; i++) {
		const struct migplan_row *r = &h->rows[i];

		if (r->repeatable && strcmp(r->name, name) == 0 && (last == NULL || r->rank > last->rank))
			last = r;
	}
	return last;
}

const struct migfile *migplan_find_file(const struct migfile_set *s, const struct migplan_row *row)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		const struct migfile *f = &s->files[i];

		if (f->repeatable != row->repeatable)
			continue;
		if (f->repeatable ? strcmp(f->name, row->name) == 0 : f->version == row->version)
			return f;
	}
	return NULL;
}

enum migplan_state migplan_state(const struct migplan_history *h, const struct migfile *f)
{
	const struct migplan_row *row = f->repeatable ? migplan_find_repeatable_row(h, f->name) :
					migplan_find_row(h, f->version);

	if (row == NULL)
		return MIGPLAN_PENDING;
	if (strcmp(row->status, "applied") != 0)
		return MIGPLAN_FAILED;
	if (strcmp(row->checksum, f->checksum) == 0)
		return MIGPLAN_APPLIED;
	return f->repeatable ? MIGPLAN_CHANGED : MIGPLAN_MODIFIED;
}

const char *migplan_state_name(enum migplan_state st)
{
	switch (st) {
	case MIGPLAN_APPLIED:
		return "applied";
	case MIGPLAN_FAILED:
		return "FAILED";
	case MIGPLAN_MODIFIED:
		return "MODIFIED";
	case MIGPLAN_CHANGED:
		return "changed";
	case MIGPLAN_PENDING:
		break;
	}
	return "pending";
}

bool migplan_state_runs(enum migplan_state st)
{
	return st == MIGPLAN_PENDING || st == MIGPLAN_FAILED || st == MIGPLAN_CHANGED;
}

int migplan_max_applied(const struct migplan_history *h)
{
	int i, max = 0;

	for (i = 0; i < h->n; i++) {
		if (!h->rows[i].repeatable && strcmp(h->rows[i].status, "applied") == 0 &&
		    h->rows[i].version > max)
			max = h->rows[i].version;
	}
	return max;
}

bool migplan_row_is_current(const struct migplan_history *h, const struct migplan_row *row)
{
	return !row->repeatable || migplan_find_repeatable_row(h, row->name) == row;
}

int migplan_check_applied(const struct migplan_history *h, const struct migfile_set *s)
{
	const struct migfile *f;
	int i, rc = PAY_OK;

	for (i = 0; i < h->n; i++) {
		const struct migplan_row *r = &h->rows[i];

		/* A repeatable may change (it runs again) and its file may go (its objects stay). */
		if (r->repeatable || strcmp(r->status, "applied") != 0)
			continue;
		f = migplan_find_file(s, r);
		if (f == NULL) {
			fprintf(stderr, "payments migrate: applied migration %04d_%s.sql is missing from"
				" the migrations directory\n", r->version, r->name);
			rc = PAY_ESTATE;
		} else if (strcmp(f->checksum, r->checksum) != 0) {
			fprintf(stderr, "payments migrate: applied migration %s was modified"
				" (checksum %.12s... applied, %.12s... on disk); restore the file"
				" and put the change in a new migration (functions, triggers and"
				" views: in their R__ file)\n", f->filename, r->checksum, f->checksum);
			rc = PAY_ESTATE;
		}
	}
	return rc;
}

int migplan_pending(const struct migplan_history *h, const struct migfile_set *s, int target,
		    bool allow_out_of_order, const struct migfile **pending, int *n)
{
	int max_applied = migplan_max_applied(h);
	bool reaches_end = true;
	size_t k;

	*n = 0;
	if (migplan_check_applied(h, s) != PAY_OK)
		return PAY_ESTATE;
	for (k = 0; k < s->n; k++) {
		const struct migfile *f = &s->files[k];

		if (f->repeatable)
			continue;
		if (migplan_state(h, f) == MIGPLAN_APPLIED)
			continue;
		if (target > 0 && f->version > target) {
			reaches_end = false;
			continue;
		}
		if (f->version < max_applied && !allow_out_of_order) {
			fprintf(stderr, "payments migrate: %s is numbered below the last applied"
				" migration (%04d); renumber it or pass --allow-out-of-order\n",
				f->filename, max_applied);
			return PAY_ESTATE;
		}
		pending[(*n)++] = f;
	}
	for (k = 0; reaches_end && k < s->n; k++) {
		const struct migfile *f = &s->files[k];

		if (f->repeatable && migplan_state_runs(migplan_state(h, f)))
			pending[(*n)++] = f;
	}
	return PAY_OK;
}

/* migplan.h - planning migrations: the files on disk against the history, what is pending and what is wrong (pure). */
#ifndef PAYMENTS_MIGPLAN_H
#define PAYMENTS_MIGPLAN_H

#include <stdbool.h>

#include "migfile.h"

/* One row of payments_schema_history. */
struct migplan_row {
	long long rank;                      /* installed_rank: the order rows were written */
	int version;                         /* 0 for a repeatable */
	bool repeatable;
	char name[MIGFILE_NAME_MAX];
	char checksum[MIGFILE_CHECKSUM_HEX];
	char status[16];                     /* "applied" or "failed" */
	char installed_at[40];
	int execution_ms;
	char error[300];                     /* "SQLSTATE: message" of a failure, or "" */
};

/*
 * The history: one row per versioned migration, one row per run of a
 * repeatable (the last one counts), ordered by rank.
 */
struct migplan_history {
	struct migplan_row *rows;
	int n;
};

/* Where one file stands against the history. */
enum migplan_state {
	MIGPLAN_PENDING = 0,    /* never applied */
	MIGPLAN_APPLIED,        /* applied with this checksum */
	MIGPLAN_FAILED,         /* the last run failed */
	MIGPLAN_MODIFIED,       /* versioned, applied, and the file changed since: an error */
	MIGPLAN_CHANGED         /* repeatable, applied, and the file changed since: runs again */
};

/* The row of versioned migration version, or NULL. */
const struct migplan_row *migplan_find_row(const struct migplan_history *h, int version);

/* The last row of the repeatable called name, or NULL. */
const struct migplan_row *migplan_find_repeatable_row(const struct migplan_history *h,
						      const char *name);

/* The file of row's migration (versioned by version, repeatable by name), or NULL. */
const struct migfile *migplan_find_file(const struct migfile_set *s, const struct migplan_row *row);

enum migplan_state migplan_state(const struct migplan_history *h, const struct migfile *f);

/* "pending", "applied", "FAILED", "MODIFIED" or "changed" (what status prints). */
const char *migplan_state_name(enum migplan_state st);

/* True when state is one that up acts on (pending, failed, or a changed repeatable). */
bool migplan_state_runs(enum migplan_state st);

/* The highest applied version (0 when none). */
int migplan_max_applied(const struct migplan_history *h);

/* True when row is the last row of its repeatable (older runs are superseded). */
bool migplan_row_is_current(const struct migplan_history *h, const struct migplan_row *row);

/*
 * Refuses to go on when an applied versioned migration's file is missing or
 * changed. Returns PAY_OK or PAY_ESTATE after printing each problem.
 */
int migplan_check_applied(const struct migplan_history *h, const struct migfile_set *s);

/*
 * Fills pending (room for s->n files) with the files up would run, in order,
 * and their count in *n: the versioned migrations not applied yet (up to
 * target when target > 0), then the repeatables whose file is new, changed,
 * or failed last time. Repeatables run only when the plan reaches the last
 * versioned file on disk: they define the current schema's functions, which
 * may need its newest tables. Returns PAY_OK, or PAY_ESTATE after printing
 * why when an applied file changed or vanished, or a new file is numbered
 * below the last applied one without allow_out_of_order.
 */
int migplan_pending(const struct migplan_history *h, const struct migfile_set *s, int target,
		    bool allow_out_of_order, const struct migfile **pending, int *n)
	__attribute__((warn_unused_result));

#endif

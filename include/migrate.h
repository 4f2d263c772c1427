/* migrate.h - the migrate commands: applying and inspecting schema migrations (versioned and repeatable). */
#ifndef PAYMENTS_MIGRATE_H
#define PAYMENTS_MIGRATE_H

#include <stdbool.h>

struct cfg;

struct migrate_opts {
	int target;               /* apply up to this version; 0 = all */
	bool allow_out_of_order;
};

/*
 * Applies pending versioned migrations, then every repeatable one that is
 * new, changed or failed (unless opts->target stops before the last
 * versioned file), under an advisory lock, each in its own transaction with
 * lock_timeout and statement_timeout, recording each in
 * payments_schema_history. Returns the exit code: 0 on success.
 */
int migrate_up(const struct cfg *cfg, const struct migrate_opts *opts);

/*
 * Prints applied (with time, checksum, duration), failed, modified, missing
 * and pending migrations, and each repeatable's state (its version column
 * is "R"; "changed" when its file changed since it was applied). Returns 0
 * when everything is applied and unchanged, 1 when something is pending,
 * changed, failed, modified or missing.
 */
int migrate_status(const struct cfg *cfg);

/* Prints the SQL that migrate_up would run, without running it. Returns 0, or 1 on a refusal. */
int migrate_plan(const struct cfg *cfg, const struct migrate_opts *opts);

/*
 * Checks that every applied versioned migration matches its file, that no
 * migration's last run failed, no applied repeatable's file is missing and
 * no index is invalid; a repeatable changed since it was applied is named as
 * pending, not counted. Then, when the server has pgTAP, runs every .sql
 * file of cfg->sql_tests_dir in a transaction that is rolled back. Returns
 * 0 when all is well, else 1.
 */
int migrate_verify(const struct cfg *cfg);

/*
 * Records an operator's decision about a failed migration: applied (it was
 * finished by hand) or rolled back (it left nothing; up runs it again).
 * Returns the exit code.
 */
int migrate_resolve(const struct cfg *cfg, int version, bool applied);

#endif

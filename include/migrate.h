/* migrate.h - applying and inspecting schema migrations (the database layer's DBA side). */
#ifndef PAYMENTS_MIGRATE_H
#define PAYMENTS_MIGRATE_H

#include <stdbool.h>

struct cfg;

struct migrate_opts {
	int target;               /* apply up to this version; 0 = all */
	bool allow_out_of_order;
};

/*
 * Applies pending migrations under an advisory lock, each in its own
 * transaction with lock_timeout and statement_timeout, recording each in
 * payments_schema_history. Returns the exit code: 0 on success.
 */
int migrate_up(const struct cfg *cfg, const struct migrate_opts *opts);

/*
 * Prints applied (with time, checksum, duration), failed, modified, missing
 * and pending migrations. Returns 0 when everything is applied and
 * unchanged, 1 when something is pending, failed, modified or missing.
 */
int migrate_status(const struct cfg *cfg);

/* Prints the SQL that migrate_up would run, without running it. Returns 0, or 1 on a refusal. */
int migrate_plan(const struct cfg *cfg, const struct migrate_opts *opts);

/*
 * Checks that every applied migration matches its file, that none failed and
 * no index is invalid; then, when the server has pgTAP, runs every
 * .sql file of cfg->sql_tests_dir in a transaction that is rolled back.
 * Returns 0 when all is well, else 1.
 */
int migrate_verify(const struct cfg *cfg);

/*
 * Records an operator's decision about a failed migration: applied (it was
 * finished by hand) or rolled back (it left nothing; up runs it again).
 * Returns the exit code.
 */
int migrate_resolve(const struct cfg *cfg, int version, bool applied);

#endif

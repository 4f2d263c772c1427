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

#endif

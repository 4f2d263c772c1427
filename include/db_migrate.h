/* db_migrate.h - the migrator's SQL: the advisory lock, the history table, running a migration, invalid indexes, pgTAP. */
#ifndef PAYMENTS_DB_MIGRATE_H
#define PAYMENTS_DB_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "migfile.h"
#include "migplan.h"

/* Transaction control of a migration. */
enum db_migrate_tx {
	DB_MIGRATE_BEGIN = 0,
	DB_MIGRATE_COMMIT,
	DB_MIGRATE_ROLLBACK
};

/* What a failed statement left: its SQLSTATE ("" if none) and primary message. */
struct db_migrate_error {
	char sqlstate[6];
	char message[1024];
};

/* An index a failed CREATE INDEX CONCURRENTLY left invalid. */
struct db_migrate_index {
	char name[160];
	char table[160];
};

/*
 * Takes the session advisory lock every migrator takes, waiting up to
 * wait_ms. Returns PAY_OK; PAY_ESTATE when another session kept it, with
 * who holds it (pid, user, application, address) in holder (holder_len
 * bytes, "" when unknown); or PAY_EINTERNAL with the error in holder.
 */
int db_migrate_lock(struct db_conn *c, long long wait_ms, char *holder, size_t holder_len)
	__attribute__((warn_unused_result));

/*
 * Creates payments_schema_history in its first shape when it does not exist
 * (migration 0007 brings it to the current one, like every other table).
 * Returns PAY_OK or PAY_EINTERNAL (error in db_conn_error).
 */
int db_migrate_history_create(struct db_conn *c) __attribute__((warn_unused_result));

/*
 * Reads the history into h (rows ordered by rank; free with
 * db_migrate_history_fini). A missing table reads as an empty history, so
 * read-only commands create nothing; a table older than 0007 reads as
 * versioned rows only. Returns PAY_OK, PAY_ENOMEM or PAY_EINTERNAL.
 */
int db_migrate_history_load(struct db_conn *c, struct migplan_history *h)
	__attribute__((warn_unused_result));
void db_migrate_history_fini(struct migplan_history *h);

/* Sets the session's lock_timeout and statement_timeout (ms; 0: none). Returns PAY_OK or PAY_EINTERNAL. */
int db_migrate_set_timeouts(struct db_conn *c, long long lock_ms, long long statement_ms)
	__attribute__((warn_unused_result));

/* BEGIN, COMMIT or ROLLBACK. Returns PAY_OK or PAY_EINTERNAL (error in db_conn_error). */
int db_migrate_tx(struct db_conn *c, enum db_migrate_tx tx);

/*
 * Runs the text of migration f (its statements in one simple-query
 * message). Returns PAY_OK, or PAY_EINTERNAL with the failure in *err.
 */
int db_migrate_exec(struct db_conn *c, const struct migfile *f, struct db_migrate_error *err)
	__attribute__((warn_unused_result));

/*
 * Records the outcome of f ("applied" or "failed", ms, and for a failure
 * sqlstate and message, else NULL): a versioned migration has one row,
 * rewritten by a later run; each run of a repeatable adds a row. Returns
 * PAY_OK or PAY_EINTERNAL (error in db_conn_error).
 */
int db_migrate_record(struct db_conn *c, const struct migfile *f, const char *status, long long ms,
		      const char *sqlstate, const char *message) __attribute__((warn_unused_result));

/*
 * Records an operator's decision on failed versioned migration version:
 * applied (finished by hand; checksum is the file's) or rolled back (the
 * row goes and up runs it again). Returns PAY_OK or PAY_EINTERNAL.
 */
int db_migrate_resolve(struct db_conn *c, int version, const char *checksum, bool applied)
	__attribute__((warn_unused_result));

/*
 * The invalid indexes of schema public, in *out (caller frees with free())
 * and their count in *n. Returns PAY_OK, PAY_ENOMEM or PAY_EINTERNAL (then
 * *n is 0).
 */
int db_migrate_invalid_indexes(struct db_conn *c, struct db_migrate_index **out, int *n)
	__attribute__((warn_unused_result));

/* Sets *available to whether the server can CREATE EXTENSION pgtap. Returns PAY_OK or PAY_EINTERNAL. */
int db_migrate_pgtap_available(struct db_conn *c, bool *available)
	__attribute__((warn_unused_result));

/*
 * Runs the pgTAP script sql in a transaction that is rolled back (creating
 * the extension inside it), handing each single-column output row to
 * line(arg, text, false) and each failed statement's message to
 * line(arg, message, true). Returns PAY_OK, or PAY_EINTERNAL when the script
 * could not be started.
 */
int db_migrate_run_tap(struct db_conn *c, const char *sql,
		       void (*line)(void *arg, const char *text, bool error), void *arg)
	__attribute__((warn_unused_result));

#endif

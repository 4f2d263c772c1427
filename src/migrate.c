/* migrate.c - the migrate commands: up, plan, status, verify and resolve (what runs, in what order, and what is said). */
#include "migrate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "db.h"
#include "db_migrate.h"
#include "err.h"
#include "migfile.h"
#include "migplan.h"
#include "migtap.h"

/* Everything a migrate command works on: the files, the connection and the history. */
struct migrate_session {
	struct db_conn *conn;
	struct migfile_set files;
	struct migplan_history h;
};

static long long migrate_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Prints a database error that the db layer kept (it ends with a newline). */
static void migrate_print_db_error(const struct db_conn *c)
{
	const char *e = db_conn_error(c);

	fprintf(stderr, "payments migrate: %s%s", e, e[0] && e[strlen(e) - 1] == '\n' ? "" : "\n");
}

/*
 * Prints every invalid index (what a failed CREATE INDEX CONCURRENTLY
 * leaves behind) with what to do about it. Returns how many there are.
 */
static int migrate_report_invalid_indexes(struct db_conn *c)
{
	struct db_migrate_index *list = NULL;
	int i, n = 0;

	if (db_migrate_invalid_indexes(c, &list, &n) != PAY_OK)
		migrate_print_db_error(c);
	for (i = 0; i < n; i++)
		fprintf(stderr, "payments migrate: index %s on %s is INVALID (left by a failed"
			" CREATE INDEX CONCURRENTLY); run 'DROP INDEX CONCURRENTLY %s;' and"
			" then 'payments migrate up' again\n", list[i].name, list[i].table, list[i].name);
	free(list);
	return n;
}

/*
 * Loads the files, connects (waiting for the database), takes the migration
 * lock when lock is set, and reads the history. Returns PAY_OK or an error
 * after printing it; migrate_close is safe either way.
 */
static int migrate_open(const struct cfg *cfg, struct migrate_session *s, bool lock)
{
	char message[512];
	int rc;

	memset(s, 0, sizeof(*s));
	rc = migfile_load_dir(cfg->migrations_dir, &s->files);
	if (rc != PAY_OK)
		return rc;
	rc = db_conn_open_tool(cfg->database_url, cfg->db_connect_timeout_ms, cfg->migrate_wait_ms,
			       "payments-migrate", message, sizeof(message), &s->conn);
	if (rc != PAY_OK) {
		fprintf(stderr, "payments migrate: cannot connect to the database: %s", message);
		return rc;
	}
	if (lock) {
		rc = db_migrate_lock(s->conn, cfg->migrate_wait_ms, message, sizeof(message));
		if (rc == PAY_ESTATE)
			fprintf(stderr, "payments migrate: another migration holds the lock%s%s\n",
				message[0] ? ": " : "", message);
		else if (rc != PAY_OK)
			fprintf(stderr, "payments migrate: %s", message);
		if (rc != PAY_OK)
			return rc;
	}
	/*
	 * Only commands that change the database create the history table:
	 * status, plan and verify stay read-only (they run on a standby or as a
	 * read-only role), and read a missing table as an empty history.
	 */
	if ((lock && db_migrate_history_create(s->conn) != PAY_OK) ||
	    db_migrate_history_load(s->conn, &s->h) != PAY_OK) {
		migrate_print_db_error(s->conn);
		return PAY_EINTERNAL;
	}
	return PAY_OK;
}

static void migrate_close(struct migrate_session *s)
{
	db_conn_close(s->conn);   /* ends the session, releasing the advisory lock */
	db_migrate_history_fini(&s->h);
	migfile_set_fini(&s->files);
	memset(s, 0, sizeof(*s));
}

/*
 * Runs f's text and records it: in one transaction with its history row
 * unless it is marked no-transaction. Returns PAY_OK, or PAY_EINTERNAL with
 * the failure in *err (and, in a transaction, everything rolled back).
 */
static int migrate_run_once(struct db_conn *c, const struct migfile *f, struct db_migrate_error *err)
{
	long long start = migrate_now_ms();
	int rc;

	memset(err, 0, sizeof(*err));
	if (!f->no_transaction && db_migrate_tx(c, DB_MIGRATE_BEGIN) != PAY_OK) {
		snprintf(err->message, sizeof(err->message), "%s", db_conn_error(c));
		return PAY_EINTERNAL;
	}
	rc = db_migrate_exec(c, f, err);
	/* A no-transaction statement can "succeed" past an invalid index (IF NOT EXISTS). */
	if (rc == PAY_OK && f->no_transaction && migrate_report_invalid_indexes(c) > 0) {
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", "55000");
		snprintf(err->message, sizeof(err->message), "an invalid index is left behind");
		rc = PAY_EINTERNAL;
	}
	if (rc == PAY_OK) {
		rc = db_migrate_record(c, f, "applied", migrate_now_ms() - start, NULL, NULL);
		if (rc != PAY_OK) {
			snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", db_conn_sqlstate(c));
			snprintf(err->message, sizeof(err->message), "cannot record it: %s",
				 db_conn_error(c));
		}
	}
	if (!f->no_transaction && rc == PAY_OK)
		rc = db_migrate_tx(c, DB_MIGRATE_COMMIT);
	else if (!f->no_transaction)
		(void)db_migrate_tx(c, DB_MIGRATE_ROLLBACK);
	return rc;
}

/*
 * Runs one migration; a lock timeout is retried with backoff. Returns
 * PAY_OK, or an error after recording and printing the failure.
 */
static int migrate_apply(struct db_conn *c, const struct cfg *cfg, const struct migfile *f)
{
	struct db_migrate_error err;
	long long start = migrate_now_ms();
	int attempt, rc = PAY_EINTERNAL;

	if (f->no_transaction && migfile_count_statements(f->sql) != 1) {
		fprintf(stderr, "payments migrate: %s is marked payments:no-transaction but holds %d"
			" statements; such a migration must be exactly one statement (split it)\n",
			f->filename, migfile_count_statements(f->sql));
		return PAY_ECONFIG;
	}
	for (attempt = 0; attempt <= cfg->migrate_lock_retries; attempt++) {
		if (attempt > 0) {
			fprintf(stderr, "payments migrate: %s hit lock_timeout; retry %d of %d\n",
				f->filename, attempt, cfg->migrate_lock_retries);
			usleep((useconds_t)(500000 << (attempt - 1)));
		}
		start = migrate_now_ms();
		rc = migrate_run_once(c, f, &err);
		if (rc == PAY_OK || strcmp(err.sqlstate, "55P03") != 0)
			break;
		/*
		 * A no-transaction statement that timed out may have left an invalid
		 * index: running it again would fail on (or, with IF NOT EXISTS, skip)
		 * that index and hide the real error. Stop and say so instead.
		 */
		if (f->no_transaction && migrate_report_invalid_indexes(c) > 0)
			break;
	}
	if (rc != PAY_OK) {
		fprintf(stderr, "payments migrate: %s failed: %s %s%s\n", f->filename, err.sqlstate,
			err.message, strcmp(err.sqlstate, "55P03") == 0 ?
			" (another session holds a lock on the table; retry when it is quiet)" :
			f->no_transaction ? "" : " (rolled back: the database is unchanged)");
		if (db_migrate_record(c, f, "failed", migrate_now_ms() - start,
				      err.sqlstate[0] ? err.sqlstate : NULL, err.message) != PAY_OK)
			migrate_print_db_error(c);
		if (f->no_transaction && strcmp(err.sqlstate, "55000") != 0)
			migrate_report_invalid_indexes(c);   /* what the failure left behind */
	}
	return rc;
}

int migrate_up(const struct cfg *cfg, const struct migrate_opts *opts)
{
	struct migrate_session s;
	const struct migfile **pending = NULL;
	int i, n = 0, repeatables = 0, code = 1;

	if (migrate_open(cfg, &s, true) != PAY_OK)
		goto out;
	if (db_migrate_set_timeouts(s.conn, cfg->migrate_lock_timeout_ms,
				    cfg->migrate_statement_timeout_ms) != PAY_OK) {
		migrate_print_db_error(s.conn);
		goto out;
	}
	pending = calloc(s.files.n + 1, sizeof(*pending));
	if (pending == NULL ||
	    migplan_pending(&s.h, &s.files, opts->target, opts->allow_out_of_order, pending, &n) != PAY_OK)
		goto out;
	/* An invalid index is unfinished work of an earlier run: settle it before anything new. */
	if (migrate_report_invalid_indexes(s.conn) > 0)
		goto out;
	for (i = 0; i < n; i++) {
		printf("applying %s%s\n", pending[i]->filename, pending[i]->no_transaction ?
		       " (no transaction)" : pending[i]->repeatable ? " (repeatable)" : "");
		fflush(stdout);
		if (migrate_apply(s.conn, cfg, pending[i]) != PAY_OK)
			goto out;
		repeatables += pending[i]->repeatable;
	}
	printf("%d migration(s) applied, %d repeatable(s) applied; database is up to date%s\n",
	       n - repeatables, repeatables, opts->target > 0 ? " to the target" : "");
	code = 0;
out:
	free(pending);
	migrate_close(&s);
	return code;
}

int migrate_plan(const struct cfg *cfg, const struct migrate_opts *opts)
{
	struct migrate_session s;
	const struct migfile **pending = NULL;
	int i, n = 0, repeatables = 0, code = 1;

	if (migrate_open(cfg, &s, false) != PAY_OK)
		goto out;
	pending = calloc(s.files.n + 1, sizeof(*pending));
	if (pending == NULL ||
	    migplan_pending(&s.h, &s.files, opts->target, opts->allow_out_of_order, pending, &n) != PAY_OK)
		goto out;
	for (i = 0; i < n; i++)
		repeatables += pending[i]->repeatable;
	printf("-- payments migrate plan: %d pending migration(s) and %d repeatable(s) to run;"
	       " nothing has been run.\n", n - repeatables, repeatables);
	printf("SET lock_timeout = '%lldms';\nSET statement_timeout = '%lldms';\n",
	       cfg->migrate_lock_timeout_ms, cfg->migrate_statement_timeout_ms);
	for (i = 0; i < n; i++) {
		const struct migfile *f = pending[i];

		if (f->repeatable)
			printf("\n-- %s (checksum %s), repeatable: %s\n", f->filename, f->checksum,
			       migplan_state(&s.h, f) == MIGPLAN_PENDING ? "new" :
			       migplan_state(&s.h, f) == MIGPLAN_FAILED ? "failed last time" :
			       "changed since it was applied");
		else
			printf("\n-- %s (checksum %s)%s\n", f->filename, f->checksum,
			       f->no_transaction ? ", outside a transaction" : "");
		if (!f->no_transaction)
			printf("BEGIN;\n");
		printf("%s%s", f->sql, f->sql[0] && f->sql[strlen(f->sql) - 1] == '\n' ? "" : "\n");
		if (f->repeatable)
			printf("-- then recorded in payments_schema_history as repeatable %s, applied\n",
			       f->name);
		else
			printf("-- then recorded in payments_schema_history as version %d, applied\n",
			       f->version);
		if (!f->no_transaction)
			printf("COMMIT;\n");
	}
	code = 0;
out:
	free(pending);
	migrate_close(&s);
	return code;
}

/* Prints one status line; version 0 is a repeatable ("R"). */
static void migrate_status_line(int version, const char *name, const char *state,
				const struct migplan_row *row, const char *checksum)
{
	if (version > 0)
		printf("%04d     ", version);
	else
		printf("%-8s ", "R");
	printf("%-32s %-9s %-21s %7dms %.12s\n", name, state, row ? row->installed_at : "-",
	       row ? row->execution_ms : 0, checksum);
	if (row != NULL && row->error[0] != '\0' && strcmp(row->status, "failed") == 0)
		printf("         error: %s\n", row->error);
}

int migrate_status(const struct cfg *cfg)
{
	struct migrate_session s;
	const struct migplan_row *row;
	const struct migfile *f;
	int i, problems = 0, code = 1;
	size_t k;

	if (migrate_open(cfg, &s, false) != PAY_OK)
		goto out;
	printf("%-8s %-32s %-9s %-21s %9s %s\n", "VERSION", "NAME", "STATE", "APPLIED AT",
	       "DURATION", "CHECKSUM");
	for (k = 0; k < s.files.n; k++) {
		enum migplan_state st;

		f = &s.files.files[k];
		st = migplan_state(&s.h, f);
		row = f->repeatable ? migplan_find_repeatable_row(&s.h, f->name) :
		      migplan_find_row(&s.h, f->version);
		if (st != MIGPLAN_APPLIED)
			problems++;
		migrate_status_line(f->version, f->name, migplan_state_name(st), row, f->checksum);
	}
	for (i = 0; i < s.h.n; i++) {
		row = &s.h.rows[i];
		if (migplan_row_is_current(&s.h, row) && migplan_find_file(&s.files, row) == NULL) {
			migrate_status_line(row->version, row->name, "MISSING", row, row->checksum);
			problems++;
		}
	}
	problems += migrate_report_invalid_indexes(s.conn);
	printf("%d problem(s): %s\n", problems,
	       problems ? "pending, failed, modified or missing migrations, or invalid indexes" :
	       "up to date");
	code = problems ? 1 : 0;
out:
	migrate_close(&s);
	return code;
}

/* Adapts db_migrate_run_tap's line callback to the tally. */
static void migrate_tap_line(void *arg, const char *text, bool error)
{
	migtap_line(arg, text, error);
}

/*
 * Runs one pgTAP file in a transaction that is rolled back. Returns the
 * number of failed tests (at least 1 when the file itself failed).
 */
static int migrate_run_tap(struct db_conn *c, const char *path)
{
	struct migtap tally = { .out = stdout };
	char *sql = NULL;
	size_t len = 0;
	int failed = 1;

	if (migfile_read(path, &sql, &len) != PAY_OK)
		goto out;
	if (db_migrate_run_tap(c, sql, migrate_tap_line, &tally) != PAY_OK) {
		printf("  error: %s", db_conn_error(c));
		goto out;
	}
	failed = migtap_failures(&tally);
out:
	free(sql);
	return failed;
}

/*
 * The history's own problems for verify: applied files changed or gone,
 * failed runs, and repeatables whose file is gone. Repeatables changed since
 * they were applied are pending work for up, named but not counted.
 */
static int migrate_verify_history(const struct migrate_session *s)
{
	const struct migplan_row *r;
	size_t k;
	int i, problems = 0;

	if (migplan_check_applied(&s->h, &s->files) != PAY_OK)
		problems++;
	for (i = 0; i < s->h.n; i++) {
		r = &s->h.rows[i];
		if (!migplan_row_is_current(&s->h, r))
			continue;
		if (strcmp(r->status, "failed") == 0) {
			if (r->repeatable)
				fprintf(stderr, "payments migrate: repeatable migration R__%s failed: %s\n",
					r->name, r->error);
			else
				fprintf(stderr, "payments migrate: migration %04d_%s failed: %s\n",
					r->version, r->name, r->error);
			problems++;
		} else if (r->repeatable && migplan_find_file(&s->files, r) == NULL) {
			fprintf(stderr, "payments migrate: applied repeatable migration R__%s.sql is"
				" missing from the migrations directory\n", r->name);
			problems++;
		}
	}
	for (k = 0; k < s->files.n; k++) {
		const struct migfile *f = &s->files.files[k];
		enum migplan_state st = migplan_state(&s->h, f);

		if (f->repeatable && (st == MIGPLAN_PENDING || st == MIGPLAN_CHANGED))
			printf("pending: %s (%s; 'migrate up' runs it)\n", f->filename,
			       st == MIGPLAN_PENDING ? "never applied" : "changed since it was applied");
	}
	return problems;
}

int migrate_verify(const struct cfg *cfg)
{
	struct migrate_session s;
	struct dirent **names = NULL;
	char path[4096];
	bool pgtap = false;
	int i, n = 0, problems = 0, failed, code = 1;

	if (migrate_open(cfg, &s, false) != PAY_OK)
		goto out;
	problems += migrate_verify_history(&s);
	problems += migrate_report_invalid_indexes(s.conn);
	printf("checksums: %s\n", problems ? "PROBLEMS (see above)" : "every applied migration matches its file");

	if (db_migrate_pgtap_available(s.conn, &pgtap) != PAY_OK || !pgtap) {
		printf("pgTAP: not installed on the server; database tests skipped\n");
	} else if ((n = scandir(cfg->sql_tests_dir, &names, NULL, alphasort)) < 0) {
		printf("pgTAP: no test directory '%s'; database tests skipped\n", cfg->sql_tests_dir);
		n = 0;
	} else {
		for (i = 0; i < n; i++) {
			size_t l = strlen(names[i]->d_name);

			if (l < 5 || strcmp(names[i]->d_name + l - 4, ".sql") != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", cfg->sql_tests_dir, names[i]->d_name);
			failed = migrate_run_tap(s.conn, path);
			printf("pgTAP %s: %s\n", names[i]->d_name, failed ? "FAILED" : "ok");
			problems += failed;
		}
	}
	printf("%d problem(s)\n", problems);
	code = problems ? 1 : 0;
out:
	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	migrate_close(&s);
	return code;
}

int migrate_resolve(const struct cfg *cfg, int version, bool applied)
{
	struct migrate_session s;
	const struct migplan_row *row;
	const struct migfile *f = NULL;
	int code = 1;

	if (migrate_open(cfg, &s, true) != PAY_OK)
		goto out;
	row = migplan_find_row(&s.h, version);
	if (row != NULL)
		f = migplan_find_file(&s.files, row);
	if (row == NULL || strcmp(row->status, "failed") != 0 || f == NULL) {
		fprintf(stderr, "payments migrate: version %d has no failed migration to resolve"
			" (and its file must exist)\n", version);
		goto out;
	}
	/* --applied: the operator finished it by hand; --rolled-back: it left nothing, run it again. */
	if (db_migrate_resolve(s.conn, version, f->checksum, applied) != PAY_OK) {
		migrate_print_db_error(s.conn);
		goto out;
	}
	printf("migration %s recorded as %s\n", f->filename,
	       applied ? "applied" : "rolled back (it will run again on the next up)");
	code = 0;
out:
	migrate_close(&s);
	return code;
}

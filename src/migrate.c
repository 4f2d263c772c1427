/* migrate.c - applying and inspecting schema migrations (the database layer's DBA side). */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cfg.h"
#include "err.h"
#include "migfile.h"

/* The advisory lock every migrator takes: the first 8 bytes of "payments-migrate". */
#define MIGRATE_LOCK_KEY "7022365813316468590"

#define MIGRATE_HISTORY_DDL \
	"CREATE TABLE IF NOT EXISTS payments_schema_history (" \
	" version integer PRIMARY KEY," \
	" name text NOT NULL," \
	" checksum text NOT NULL," \
	" status text NOT NULL CHECK (status IN ('applied', 'failed'))," \
	" installed_by text NOT NULL DEFAULT current_user," \
	" installed_at timestamptz NOT NULL DEFAULT now()," \
	" execution_ms integer NOT NULL DEFAULT 0," \
	" error_sqlstate text," \
	" error_message text)"

#define MIGRATE_RECORD_SQL \
	"INSERT INTO payments_schema_history AS h (version, name, checksum, status," \
	" execution_ms, error_sqlstate, error_message) VALUES ($1, $2, $3, $4, $5, $6, $7)" \
	" ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, checksum = EXCLUDED.checksum," \
	" status = EXCLUDED.status, installed_by = current_user, installed_at = now()," \
	" execution_ms = EXCLUDED.execution_ms, error_sqlstate = EXCLUDED.error_sqlstate," \
	" error_message = EXCLUDED.error_message"

/* One row of the history table. */
struct migrate_row {
	int version;
	char name[MIGFILE_NAME_MAX];
	char checksum[MIGFILE_CHECKSUM_HEX];
	char status[16];
	char installed_at[40];
	int execution_ms;
	char error[300];
};

struct migrate_history {
	struct migrate_row *rows;
	int n;
};

static long long migrate_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void migrate_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Connects, retrying until wait_ms has passed, so migrate can start before the database. */
static PGconn *migrate_connect(const struct cfg *cfg)
{
	const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	char timeout[24];
	const char *vals[] = { cfg->database_url, timeout, "payments-migrate", NULL };
	long long deadline = migrate_now_ms() + cfg->migrate_wait_ms;
	PGconn *pg = NULL;

	snprintf(timeout, sizeof(timeout), "%lld", (cfg->db_connect_timeout_ms + 999) / 1000);

	for (;;) {
		pg = PQconnectdbParams(keys, vals, 1);
		if (PQstatus(pg) == CONNECTION_OK)
			break;
		if (migrate_now_ms() >= deadline) {
			fprintf(stderr, "payments migrate: cannot connect to the database: %s",
				PQerrorMessage(pg));
			PQfinish(pg);
			return NULL;
		}
		PQfinish(pg);
		usleep(500 * 1000);
	}
	PQsetNoticeProcessor(pg, migrate_quiet, NULL);
	return pg;
}

/* Runs a parameterless command; returns PAY_OK or PAY_EINTERNAL after printing the error. */
static int migrate_command(PGconn *pg, const char *sql)
{
	PGresult *res = PQexec(pg, sql);
	int rc = PAY_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "payments migrate: %s", PQresultErrorMessage(res));
		rc = PAY_EINTERNAL;
	}
	PQclear(res);
	return rc;
}

/* Prints who holds the migration lock. */
static void migrate_print_holder(PGconn *pg)
{
	PGresult *res = PQexec(pg,
		"SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''),"
		" coalesce(host(a.client_addr), 'local'), a.backend_start"
		" FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
		" WHERE l.locktype = 'advisory' AND l.granted"
		" AND ((l.classid::bigint << 32) | l.objid::bigint) = " MIGRATE_LOCK_KEY);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		fprintf(stderr, "payments migrate: another migration holds the lock: pid %s, user %s,"
			" application '%s', from %s, connected since %s\n",
			PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
			PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
	else
		fprintf(stderr, "payments migrate: another migration holds the lock\n");
	PQclear(res);
}

/* Takes the advisory lock, waiting up to wait_ms. Returns PAY_OK or PAY_ESTATE. */
static int migrate_lock(PGconn *pg, long long wait_ms)
{
	long long deadline = migrate_now_ms() + wait_ms;
	PGresult *res = NULL;
	int rc = PAY_ESTATE;

	for (;;) {
		res = PQexec(pg, "SELECT pg_try_advisory_lock(" MIGRATE_LOCK_KEY ")");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "payments migrate: %s", PQresultErrorMessage(res));
			rc = PAY_EINTERNAL;
			break;
		}
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
			rc = PAY_OK;
			break;
		}
		if (migrate_now_ms() >= deadline) {
			migrate_print_holder(pg);
			break;
		}
		PQclear(res);
		res = NULL;
		usleep(200 * 1000);
	}
	PQclear(res);
	return rc;
}

static int migrate_load_history(PGconn *pg, struct migrate_history *h)
{
	PGresult *res = PQexec(pg,
		"SELECT version, name, checksum, status,"
		" to_char(installed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z',"
		" execution_ms, coalesce(error_sqlstate || ': ' || error_message, '')"
		" FROM payments_schema_history ORDER BY version");
	int i, rc = PAY_EINTERNAL;

	memset(h, 0, sizeof(*h));
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "payments migrate: %s", PQresultErrorMessage(res));
		goto out;
	}
	h->n = PQntuples(res);
	h->rows = calloc((size_t)h->n + 1, sizeof(*h->rows));
	if (h->rows == NULL) {
		rc = PAY_ENOMEM;
		goto out;
	}
	for (i = 0; i < h->n; i++) {
		struct migrate_row *r = &h->rows[i];

		r->version = atoi(PQgetvalue(res, i, 0));
		snprintf(r->name, sizeof(r->name), "%s", PQgetvalue(res, i, 1));
		snprintf(r->checksum, sizeof(r->checksum), "%s", PQgetvalue(res, i, 2));
		snprintf(r->status, sizeof(r->status), "%s", PQgetvalue(res, i, 3));
		snprintf(r->installed_at, sizeof(r->installed_at), "%s", PQgetvalue(res, i, 4));
		r->execution_ms = atoi(PQgetvalue(res, i, 5));
		snprintf(r->error, sizeof(r->error), "%s", PQgetvalue(res, i, 6));
	}
	rc = PAY_OK;
out:
	PQclear(res);
	return rc;
}

static const struct migrate_row *migrate_find_row(const struct migrate_history *h, int version)
{
	int i;

	for (i = 0; i < h->n; i++) {
		if (h->rows[i].version == version)
			return &h->rows[i];
	}
	return NULL;
}

static const struct migfile *migrate_find_file(const struct migfile_set *s, int version)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->files[i].version == version)
			return &s->files[i];
	}
	return NULL;
}

/*
 * Refuses to go on when an applied migration's file is missing or changed.
 * Returns PAY_OK or PAY_ESTATE after printing each problem.
 */
static int migrate_check_applied(const struct migrate_history *h, const struct migfile_set *s)
{
	const struct migfile *f;
	int i, rc = PAY_OK;

	for (i = 0; i < h->n; i++) {
		if (strcmp(h->rows[i].status, "applied") != 0)
			continue;
		f = migrate_find_file(s, h->rows[i].version);
		if (f == NULL) {
			fprintf(stderr, "payments migrate: applied migration %04d_%s.sql is missing from"
				" the migrations directory\n", h->rows[i].version, h->rows[i].name);
			rc = PAY_ESTATE;
		} else if (strcmp(f->checksum, h->rows[i].checksum) != 0) {
			fprintf(stderr, "payments migrate: applied migration %s was modified"
				" (checksum %.12s... applied, %.12s... on disk); restore the file"
				" and put the change in a new migration\n", f->filename,
				h->rows[i].checksum, f->checksum);
			rc = PAY_ESTATE;
		}
	}
	return rc;
}

/* Records the outcome of one migration in the history (outside its transaction). */
static int migrate_record(PGconn *pg, const struct migfile *f, const char *status, long long ms,
			  const char *sqlstate, const char *message)
{
	char version[16], dur[24];
	const char *vals[7];
	PGresult *res;
	int rc = PAY_OK;

	snprintf(version, sizeof(version), "%d", f->version);
	snprintf(dur, sizeof(dur), "%lld", ms);
	vals[0] = version;
	vals[1] = f->name;
	vals[2] = f->checksum;
	vals[3] = status;
	vals[4] = dur;
	vals[5] = sqlstate;
	vals[6] = message;
	res = PQexecParams(pg, MIGRATE_RECORD_SQL, 7, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "payments migrate: cannot record %s: %s", f->filename,
			PQresultErrorMessage(res));
		rc = PAY_EINTERNAL;
	}
	PQclear(res);
	return rc;
}

/* Sets the session's lock and statement timeouts (SET takes no parameters; set_config does). */
static int migrate_set_timeouts(PGconn *pg, const struct cfg *cfg)
{
	char lock[32], stmt[32];
	const char *vals[2] = { lock, stmt };
	PGresult *res;
	int rc = PAY_OK;

	snprintf(lock, sizeof(lock), "%lldms", cfg->migrate_lock_timeout_ms);
	snprintf(stmt, sizeof(stmt), "%lldms", cfg->migrate_statement_timeout_ms);
	res = PQexecParams(pg, "SELECT set_config('lock_timeout', $1, false),"
			   " set_config('statement_timeout', $2, false)", 2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = PAY_EINTERNAL;
	PQclear(res);
	return rc;
}

static int migrate_report_invalid_indexes(PGconn *pg);

/*
 * Runs one migration: in a transaction (with its history row) unless marked
 * no-transaction. A lock timeout is retried with backoff. Returns PAY_OK or
 * PAY_EINTERNAL after recording and printing the failure.
 */
static int migrate_apply(PGconn *pg, const struct cfg *cfg, const struct migfile *f)
{
	PGresult *res = NULL;
	char state[6] = "", message[1024] = "";
	long long start = 0;
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
		if (!f->no_transaction && migrate_command(pg, "BEGIN") != PAY_OK)
			break;
		PQclear(res);
		res = PQexec(pg, f->sql);
		if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK) {
			/* A no-transaction statement can "succeed" past an invalid index (IF NOT EXISTS). */
			if (f->no_transaction && migrate_report_invalid_indexes(pg) > 0) {
				snprintf(state, sizeof(state), "%s", "55000");
				snprintf(message, sizeof(message), "an invalid index is left behind");
				break;
			}
			rc = migrate_record(pg, f, "applied", migrate_now_ms() - start, NULL, NULL);
			if (!f->no_transaction)
				rc = rc == PAY_OK ? migrate_command(pg, "COMMIT") : migrate_command(pg, "ROLLBACK");
			break;
		}
		snprintf(state, sizeof(state), "%s", PQresultErrorField(res, PG_DIAG_SQLSTATE) ?
			 PQresultErrorField(res, PG_DIAG_SQLSTATE) : "");
		snprintf(message, sizeof(message), "%s",
			 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
			 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "unknown error");
		if (!f->no_transaction)
			migrate_command(pg, "ROLLBACK");
		if (strcmp(state, "55P03") != 0)
			break;
		/*
		 * A no-transaction statement that timed out may have left an invalid
		 * index: running it again would fail on (or, with IF NOT EXISTS, skip)
		 * that index and hide the real error. Stop and say so instead.
		 */
		if (f->no_transaction && migrate_report_invalid_indexes(pg) > 0)
			break;
	}
	if (rc != PAY_OK && message[0] != '\0') {
		fprintf(stderr, "payments migrate: %s failed: %s %s%s\n", f->filename, state, message,
			strcmp(state, "55P03") == 0 ?
			" (another session holds a lock on the table; retry when it is quiet)" :
			f->no_transaction ? "" : " (rolled back: the database is unchanged)");
		migrate_record(pg, f, "failed", migrate_now_ms() - start, state[0] ? state : NULL,
			       message);
		if (f->no_transaction && strcmp(state, "55000") != 0)
			migrate_report_invalid_indexes(pg);   /* what the failure left behind */
	}
	PQclear(res);
	return rc;
}

/* True when payments_schema_history exists. */
static bool migrate_history_exists(PGconn *pg)
{
	PGresult *res = PQexec(pg, "SELECT to_regclass('payments_schema_history') IS NOT NULL");
	bool exists = PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	PQclear(res);
	return exists;
}

/* Everything a migrate command works on: the files, the connection and the history. */
struct migrate_session {
	PGconn *pg;
	struct migfile_set files;
	struct migrate_history h;
	int max_applied;
};

/*
 * Loads the files, connects (waiting for the database), takes the migration
 * lock when lock is set, and reads the history. Returns PAY_OK or an error
 * after printing it; migrate_close is safe either way.
 */
static int migrate_open(const struct cfg *cfg, struct migrate_session *s, bool lock)
{
	int i, rc;

	memset(s, 0, sizeof(*s));
	rc = migfile_load_dir(cfg->migrations_dir, &s->files);
	if (rc != PAY_OK)
		return rc;
	s->pg = migrate_connect(cfg);
	if (s->pg == NULL)
		return PAY_EUNAVAILABLE;
	if (lock && migrate_lock(s->pg, cfg->migrate_wait_ms) != PAY_OK)
		return PAY_ESTATE;
	/*
	 * Only commands that change the database create the history table:
	 * status, plan and verify stay read-only (they run on a standby or as a
	 * read-only role), and read a missing table as an empty history.
	 */
	if (lock && migrate_command(s->pg, MIGRATE_HISTORY_DDL) != PAY_OK)
		return PAY_EINTERNAL;
	if (migrate_history_exists(s->pg) && migrate_load_history(s->pg, &s->h) != PAY_OK)
		return PAY_EINTERNAL;
	for (i = 0; i < s->h.n; i++) {
		if (strcmp(s->h.rows[i].status, "applied") == 0 && s->h.rows[i].version > s->max_applied)
			s->max_applied = s->h.rows[i].version;
	}
	return PAY_OK;
}

static void migrate_close(struct migrate_session *s)
{
	if (s->pg != NULL)
		PQfinish(s->pg);   /* ends the session, releasing the advisory lock */
	free(s->h.rows);
	migfile_set_fini(&s->files);
	memset(s, 0, sizeof(*s));
}

/*
 * Fills pending (room for every file) with the files up would apply, in
 * order, and their count in *n. Returns PAY_OK, or PAY_ESTATE after printing
 * why when an applied file changed or vanished, or a new file is numbered
 * below the last applied one without allow_out_of_order.
 */
static int migrate_pending(const struct migrate_session *s, const struct migrate_opts *opts,
			   const struct migfile **pending, int *n)
{
	const struct migrate_row *row;
	size_t k;

	*n = 0;
	if (migrate_check_applied(&s->h, &s->files) != PAY_OK)
		return PAY_ESTATE;
	for (k = 0; k < s->files.n; k++) {
		const struct migfile *f = &s->files.files[k];

		row = migrate_find_row(&s->h, f->version);
		if (row != NULL && strcmp(row->status, "applied") == 0)
			continue;
		if (opts->target > 0 && f->version > opts->target)
			break;
		if (f->version < s->max_applied && !opts->allow_out_of_order) {
			fprintf(stderr, "payments migrate: %s is numbered below the last applied"
				" migration (%04d); renumber it or pass --allow-out-of-order\n",
				f->filename, s->max_applied);
			return PAY_ESTATE;
		}
		pending[(*n)++] = f;
	}
	return PAY_OK;
}

/*
 * Prints every invalid index (what a failed CREATE INDEX CONCURRENTLY
 * leaves behind) with what to do about it. Returns how many there are.
 */
static int migrate_report_invalid_indexes(PGconn *pg)
{
	PGresult *res = PQexec(pg,
		"SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text"
		" FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
		" WHERE NOT i.indisvalid AND c.relnamespace = 'public'::regnamespace ORDER BY 1");
	int i, n = 0;

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		n = PQntuples(res);
		for (i = 0; i < n; i++)
			fprintf(stderr, "payments migrate: index %s on %s is INVALID (left by a failed"
				" CREATE INDEX CONCURRENTLY); run 'DROP INDEX CONCURRENTLY %s;' and"
				" then 'payments migrate up' again\n", PQgetvalue(res, i, 0),
				PQgetvalue(res, i, 1), PQgetvalue(res, i, 0));
	}
	PQclear(res);
	return n;
}

int migrate_up(const struct cfg *cfg, const struct migrate_opts *opts)
{
	struct migrate_session s;
	const struct migfile **pending = NULL;
	int i, n = 0, code = 1;

	if (migrate_open(cfg, &s, true) != PAY_OK || migrate_set_timeouts(s.pg, cfg) != PAY_OK)
		goto out;
	pending = calloc(s.files.n + 1, sizeof(*pending));
	if (pending == NULL || migrate_pending(&s, opts, pending, &n) != PAY_OK)
		goto out;
	/* An invalid index is unfinished work of an earlier run: settle it before anything new. */
	if (migrate_report_invalid_indexes(s.pg) > 0)
		goto out;
	for (i = 0; i < n; i++) {
		printf("applying %s%s\n", pending[i]->filename,
		       pending[i]->no_transaction ? " (no transaction)" : "");
		fflush(stdout);
		if (migrate_apply(s.pg, cfg, pending[i]) != PAY_OK)
			goto out;
	}
	printf("%d migration(s) applied; database is up to date%s\n", n,
	       opts->target > 0 ? " to the target" : "");
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
	int i, n = 0, code = 1;

	if (migrate_open(cfg, &s, false) != PAY_OK)
		goto out;
	pending = calloc(s.files.n + 1, sizeof(*pending));
	if (pending == NULL || migrate_pending(&s, opts, pending, &n) != PAY_OK)
		goto out;
	printf("-- payments migrate plan: %d pending migration(s); nothing has been run.\n", n);
	printf("SET lock_timeout = '%lldms';\nSET statement_timeout = '%lldms';\n",
	       cfg->migrate_lock_timeout_ms, cfg->migrate_statement_timeout_ms);
	for (i = 0; i < n; i++) {
		const struct migfile *f = pending[i];

		printf("\n-- %s (checksum %s)%s\n", f->filename, f->checksum,
		       f->no_transaction ? ", outside a transaction" : "");
		if (!f->no_transaction)
			printf("BEGIN;\n");
		printf("%s%s", f->sql, f->sql[0] && f->sql[strlen(f->sql) - 1] == '\n' ? "" : "\n");
		printf("-- then recorded in payments_schema_history as version %d, applied\n", f->version);
		if (!f->no_transaction)
			printf("COMMIT;\n");
	}
	code = 0;
out:
	free(pending);
	migrate_close(&s);
	return code;
}

int migrate_status(const struct cfg *cfg)
{
	struct migrate_session s;
	const struct migrate_row *row;
	const struct migfile *f;
	int i, problems = 0, code = 1;
	size_t k;

	if (migrate_open(cfg, &s, false) != PAY_OK)
		goto out;
	printf("%-8s %-32s %-9s %-21s %9s %s\n", "VERSION", "NAME", "STATE", "APPLIED AT",
	       "DURATION", "CHECKSUM");
	for (k = 0; k < s.files.n; k++) {
		const char *state = "pending";

		f = &s.files.files[k];
		row = migrate_find_row(&s.h, f->version);
		if (row != NULL && strcmp(row->status, "applied") == 0)
			state = strcmp(row->checksum, f->checksum) == 0 ? "applied" : "MODIFIED";
		else if (row != NULL)
			state = "FAILED";
		if (strcmp(state, "applied") != 0)
			problems++;
		printf("%04d     %-32s %-9s %-21s %7dms %.12s\n", f->version, f->name, state,
		       row ? row->installed_at : "-", row ? row->execution_ms : 0, f->checksum);
		if (row != NULL && row->error[0] != '\0' && strcmp(row->status, "failed") == 0)
			printf("         error: %s\n", row->error);
	}
	for (i = 0; i < s.h.n; i++) {
		if (migrate_find_file(&s.files, s.h.rows[i].version) == NULL) {
			printf("%04d     %-32s %-9s %-21s %7dms %.12s\n", s.h.rows[i].version,
			       s.h.rows[i].name, "MISSING", s.h.rows[i].installed_at,
			       s.h.rows[i].execution_ms, s.h.rows[i].checksum);
			problems++;
		}
	}
	problems += migrate_report_invalid_indexes(s.pg);
	printf("%d problem(s): %s\n", problems,
	       problems ? "pending, failed, modified or missing migrations, or invalid indexes" :
	       "up to date");
	code = problems ? 1 : 0;
out:
	migrate_close(&s);
	return code;
}

/*
 * Runs one pgTAP file inside a transaction that is rolled back, creating the
 * extension inside it too. Returns the number of failed tests (or 1 when the
 * file itself failed).
 */
static int migrate_run_tap(PGconn *pg, const char *path)
{
	char *sql = NULL;
	size_t len = 0;
	PGresult *res;
	int i, failed = 0, planned = 0, ran = 0;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return 1;
	if (fseek(f, 0, SEEK_END) == 0 && (len = (size_t)ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (sql = malloc(len + 1)) != NULL && fread(sql, 1, len, f) == len)
		sql[len] = '\0';
	else
		failed = 1;
	fclose(f);
	if (failed || migrate_command(pg, "BEGIN") != PAY_OK ||
	    migrate_command(pg, "CREATE EXTENSION IF NOT EXISTS pgtap") != PAY_OK ||
	    !PQsendQuery(pg, sql)) {
		failed = 1;
		goto out;
	}
	while ((res = PQgetResult(pg)) != NULL) {
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == 1) {
			for (i = 0; i < PQntuples(res); i++) {
				const char *line = PQgetvalue(res, i, 0);

				if (strncmp(line, "not ok", 6) == 0) {
					failed++;
					printf("  %s\n", line);
				} else if (strncmp(line, "ok", 2) == 0) {
					ran++;
				} else if (strncmp(line, "1..", 3) == 0) {
					planned = atoi(line + 3);
				}
			}
		} else if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
			printf("  error: %s", PQresultErrorMessage(res));
			failed++;
		}
		PQclear(res);
	}
	if (planned > 0 && ran + failed != planned)
		failed++;
out:
	migrate_command(pg, "ROLLBACK");
	free(sql);
	return failed;
}

int migrate_verify(const struct cfg *cfg)
{
	struct migrate_session s;
	struct dirent **names = NULL;
	PGresult *res = NULL;
	char path[4096];
	int i, n = 0, problems = 0, failed, code = 1;

	if (migrate_open(cfg, &s, false) != PAY_OK)
		goto out;
	if (migrate_check_applied(&s.h, &s.files) != PAY_OK)
		problems++;
	for (i = 0; i < s.h.n; i++) {
		if (strcmp(s.h.rows[i].status, "failed") == 0) {
			fprintf(stderr, "payments migrate: migration %04d_%s failed: %s\n",
				s.h.rows[i].version, s.h.rows[i].name, s.h.rows[i].error);
			problems++;
		}
	}
	problems += migrate_report_invalid_indexes(s.pg);
	printf("checksums: %s\n", problems ? "PROBLEMS (see above)" : "every applied migration matches its file");

	res = PQexec(s.pg, "SELECT 1 FROM pg_available_extensions WHERE name = 'pgtap'");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) == 0) {
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
			failed = migrate_run_tap(s.pg, path);
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
	PQclear(res);
	migrate_close(&s);
	return code;
}

int migrate_resolve(const struct cfg *cfg, int version, bool applied)
{
	struct migrate_session s;
	const struct migrate_row *row;
	const struct migfile *f;
	char v[16];
	const char *vals[2];
	PGresult *res = NULL;
	int code = 1;

	if (migrate_open(cfg, &s, true) != PAY_OK)
		goto out;
	row = migrate_find_row(&s.h, version);
	f = migrate_find_file(&s.files, version);
	if (row == NULL || strcmp(row->status, "failed") != 0 || f == NULL) {
		fprintf(stderr, "payments migrate: version %d has no failed migration to resolve"
			" (and its file must exist)\n", version);
		goto out;
	}
	snprintf(v, sizeof(v), "%d", version);
	vals[0] = v;
	vals[1] = f->checksum;
	/* --applied: the operator finished it by hand; --rolled-back: it left nothing, run it again. */
	res = applied ?
		PQexecParams(s.pg, "UPDATE payments_schema_history SET status = 'applied',"
			     " checksum = $2, installed_by = current_user, installed_at = now(),"
			     " error_sqlstate = NULL, error_message = 'resolved as applied by an operator'"
			     " WHERE version = $1::int", 2, NULL, vals, NULL, NULL, 0) :
		PQexecParams(s.pg, "DELETE FROM payments_schema_history WHERE version = $1::int"
			     " AND status = 'failed'", 1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "payments migrate: %s", PQresultErrorMessage(res));
		goto out;
	}
	printf("migration %s recorded as %s\n", f->filename,
	       applied ? "applied" : "rolled back (it will run again on the next up)");
	code = 0;
out:
	PQclear(res);
	migrate_close(&s);
	return code;
}

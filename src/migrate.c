/* migrate.c - applying and inspecting schema migrations (the database layer's DBA side). */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
	const char *vals[] = { cfg->database_url, "5", "payments-migrate", NULL };
	long long deadline = migrate_now_ms() + cfg->migrate_wait_ms;
	PGconn *pg = NULL;

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

/*
 * Runs one migration: in a transaction (with its history row) unless marked
 * no-transaction. A lock timeout is retried with backoff. Returns PAY_OK or
 * PAY_EINTERNAL after recording and printing the failure.
 */
static int migrate_apply(PGconn *pg, const struct cfg *cfg, const struct migfile *f)
{
	PGresult *res = NULL;
	const char *state = NULL;
	char message[1024] = "";
	long long start = 0;
	int attempt, rc = PAY_EINTERNAL;

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
			rc = migrate_record(pg, f, "applied", migrate_now_ms() - start, NULL, NULL);
			if (!f->no_transaction)
				rc = rc == PAY_OK ? migrate_command(pg, "COMMIT") : migrate_command(pg, "ROLLBACK");
			break;
		}
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		snprintf(message, sizeof(message), "%s",
			 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
			 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "unknown error");
		if (!f->no_transaction)
			migrate_command(pg, "ROLLBACK");
		if (state == NULL || strcmp(state, "55P03") != 0)
			break;
	}
	if (rc != PAY_OK && message[0] != '\0') {
		fprintf(stderr, "payments migrate: %s failed: %s %s%s\n", f->filename,
			state ? state : "", message,
			state && strcmp(state, "55P03") == 0 ?
			" (another session holds a lock on the table; retry when it is quiet)" :
			f->no_transaction ? "" : " (rolled back: the database is unchanged)");
		migrate_record(pg, f, "failed", migrate_now_ms() - start, state, message);
	}
	PQclear(res);
	return rc;
}

int migrate_up(const struct cfg *cfg, const struct migrate_opts *opts)
{
	struct migfile_set files = { 0 };
	struct migrate_history h = { 0 };
	const struct migrate_row *row;
	PGconn *pg = NULL;
	int max_applied = 0, applied = 0, i, code = 1;
	size_t k;

	if (migfile_load_dir(cfg->migrations_dir, &files) != PAY_OK)
		goto out;
	pg = migrate_connect(cfg);
	if (pg == NULL)
		goto out;
	if (migrate_lock(pg, cfg->migrate_wait_ms) != PAY_OK)
		goto out;
	if (migrate_command(pg, MIGRATE_HISTORY_DDL) != PAY_OK ||
	    migrate_load_history(pg, &h) != PAY_OK ||
	    migrate_check_applied(&h, &files) != PAY_OK ||
	    migrate_set_timeouts(pg, cfg) != PAY_OK)
		goto out;
	for (i = 0; i < h.n; i++) {
		if (strcmp(h.rows[i].status, "applied") == 0 && h.rows[i].version > max_applied)
			max_applied = h.rows[i].version;
	}
	for (k = 0; k < files.n; k++) {
		const struct migfile *f = &files.files[k];

		row = migrate_find_row(&h, f->version);
		if (row != NULL && strcmp(row->status, "applied") == 0)
			continue;
		if (opts->target > 0 && f->version > opts->target)
			break;
		if (f->version < max_applied && !opts->allow_out_of_order) {
			fprintf(stderr, "payments migrate: %s is numbered below the last applied"
				" migration (%04d); renumber it or pass --allow-out-of-order\n",
				f->filename, max_applied);
			goto out;
		}
		printf("applying %s%s\n", f->filename, f->no_transaction ? " (no transaction)" : "");
		fflush(stdout);
		if (migrate_apply(pg, cfg, f) != PAY_OK)
			goto out;
		applied++;
	}
	printf("%d migration(s) applied; database is up to date%s\n", applied,
	       opts->target > 0 ? " to the target" : "");
	code = 0;
out:
	if (pg != NULL)
		PQfinish(pg);   /* ends the session, releasing the advisory lock */
	free(h.rows);
	migfile_set_fini(&files);
	return code;
}

int migrate_status(const struct cfg *cfg)
{
	struct migfile_set files = { 0 };
	struct migrate_history h = { 0 };
	const struct migrate_row *row;
	const struct migfile *f;
	PGconn *pg = NULL;
	int i, problems = 0, code = 1;
	size_t k;

	if (migfile_load_dir(cfg->migrations_dir, &files) != PAY_OK)
		goto out;
	pg = migrate_connect(cfg);
	if (pg == NULL)
		goto out;
	if (migrate_command(pg, MIGRATE_HISTORY_DDL) != PAY_OK || migrate_load_history(pg, &h) != PAY_OK)
		goto out;
	printf("%-8s %-32s %-9s %-21s %9s %s\n", "VERSION", "NAME", "STATE", "APPLIED AT",
	       "DURATION", "CHECKSUM");
	for (k = 0; k < files.n; k++) {
		const char *state = "pending";

		f = &files.files[k];
		row = migrate_find_row(&h, f->version);
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
	for (i = 0; i < h.n; i++) {
		if (migrate_find_file(&files, h.rows[i].version) == NULL) {
			printf("%04d     %-32s %-9s %-21s %7dms %.12s\n", h.rows[i].version,
			       h.rows[i].name, "MISSING", h.rows[i].installed_at,
			       h.rows[i].execution_ms, h.rows[i].checksum);
			problems++;
		}
	}
	printf("%d problem(s): %s\n", problems,
	       problems ? "pending, failed, modified or missing migrations" : "up to date");
	code = problems ? 1 : 0;
out:
	if (pg != NULL)
		PQfinish(pg);
	free(h.rows);
	migfile_set_fini(&files);
	return code;
}

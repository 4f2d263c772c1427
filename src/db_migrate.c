/* db_migrate.c - the migrator's SQL: the advisory lock, the history table, running a migration, invalid indexes, pgTAP. */
#include "db_migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db_conn.h"
#include "err.h"

/* The advisory lock every migrator takes: the first 8 bytes of "payments-migrate". */
#define DB_MIGRATE_LOCK_KEY "7022365813316468590"

/* The history table's first shape; migration 0007 adds installed_rank and type. */
#define DB_MIGRATE_HISTORY_DDL \
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

/*
 * The history in either shape: before 0007 there is no installed_rank nor
 * type, and to_jsonb reads a missing column as NULL instead of failing, so
 * one statement serves a database at any version (status runs before up).
 */
#define DB_MIGRATE_HISTORY_SQL \
	"SELECT coalesce((to_jsonb(h) ->> 'installed_rank')::bigint, 0), coalesce(h.version, 0)," \
	" coalesce(to_jsonb(h) ->> 'type', 'versioned') = 'repeatable', h.name, h.checksum, h.status," \
	" to_char(h.installed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z'," \
	" h.execution_ms, coalesce(h.error_sqlstate || ': ' || h.error_message, '')" \
	" FROM payments_schema_history h" \
	" ORDER BY (to_jsonb(h) ->> 'installed_rank')::bigint NULLS FIRST, h.version"

/* A versioned migration has one row, which a retry after a failure rewrites. */
#define DB_MIGRATE_RECORD_SQL \
	"INSERT INTO payments_schema_history AS h (version, name, checksum, status," \
	" execution_ms, error_sqlstate, error_message) VALUES ($1, $2, $3, $4, $5, $6, $7)" \
	" ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, checksum = EXCLUDED.checksum," \
	" status = EXCLUDED.status, installed_by = current_user, installed_at = now()," \
	" execution_ms = EXCLUDED.execution_ms, error_sqlstate = EXCLUDED.error_sqlstate," \
	" error_message = EXCLUDED.error_message"

/* Every run of a repeatable adds a row: the history keeps each definition's checksum. */
#define DB_MIGRATE_RECORD_REPEATABLE_SQL \
	"INSERT INTO payments_schema_history (version, type, name, checksum, status," \
	" execution_ms, error_sqlstate, error_message)" \
	" VALUES (NULL, 'repeatable', $1, $2, $3, $4, $5, $6)"

static long long db_migrate_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Keeps res's error in c for db_conn_error; returns PAY_EINTERNAL. */
static int db_migrate_fail(struct db_conn *c, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	snprintf(c->message, sizeof(c->message), "%s",
		 res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
	return PAY_EINTERNAL;
}

/* Runs a fixed parameterless statement. Returns PAY_OK or PAY_EINTERNAL (error in c). */
static int db_migrate_command(struct db_conn *c, const char *sql)
{
	PGresult *res = PQexec(c->pg, sql);
	int rc = PAY_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = db_migrate_fail(c, res);
	PQclear(res);
	return rc;
}

/* Runs a fixed parameterless query whose answer is one boolean. Returns PAY_OK or PAY_EINTERNAL. */
static int db_migrate_bool(struct db_conn *c, const char *sql, bool *out)
{
	PGresult *res = PQexec(c->pg, sql);
	int rc = PAY_OK;

	*out = false;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		rc = db_migrate_fail(c, res);
	else
		*out = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return rc;
}

/* Describes who holds the migration lock into holder, or "" when it cannot tell. */
static void db_migrate_holder(struct db_conn *c, char *holder, size_t len)
{
	PGresult *res = PQexec(c->pg,
		"SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''),"
		" coalesce(host(a.client_addr), 'local'), a.backend_start"
		" FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
		" WHERE l.locktype = 'advisory' AND l.granted"
		" AND ((l.classid::bigint << 32) | l.objid::bigint) = " DB_MIGRATE_LOCK_KEY);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		snprintf(holder, len, "pid %s, user %s, application '%s', from %s, connected since %s",
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
			 PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
	else
		snprintf(holder, len, "%s", "");
	PQclear(res);
}

int db_migrate_lock(struct db_conn *c, long long wait_ms, char *holder, size_t holder_len)
{
	long long deadline = db_migrate_now_ms() + wait_ms;
	bool got = false;
	int rc;

	snprintf(holder, holder_len, "%s", "");
	for (;;) {
		rc = db_migrate_bool(c, "SELECT pg_try_advisory_lock(" DB_MIGRATE_LOCK_KEY ")", &got);
		if (rc != PAY_OK) {
			snprintf(holder, holder_len, "%s", c->message);
			break;
		}
		if (got)
			break;
		if (db_migrate_now_ms() >= deadline) {
			db_migrate_holder(c, holder, holder_len);
			rc = PAY_ESTATE;
			break;
		}
		usleep(200 * 1000);
	}
	return rc;
}

int db_migrate_history_create(struct db_conn *c)
{
	return db_migrate_command(c, DB_MIGRATE_HISTORY_DDL);
}

int db_migrate_history_load(struct db_conn *c, struct migplan_history *h)
{
	PGresult *res = NULL;
	bool exists = false;
	int i, rc;

	memset(h, 0, sizeof(*h));
	rc = db_migrate_bool(c, "SELECT to_regclass('payments_schema_history') IS NOT NULL", &exists);
	if (rc != PAY_OK || !exists)
		goto out;
	res = PQexec(c->pg, DB_MIGRATE_HISTORY_SQL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = db_migrate_fail(c, res);
		goto out;
	}
	h->rows = calloc((size_t)PQntuples(res) + 1, sizeof(*h->rows));
	if (h->rows == NULL) {
		rc = PAY_ENOMEM;
		goto out;
	}
	h->n = PQntuples(res);
	for (i = 0; i < h->n; i++) {
		struct migplan_row *r = &h->rows[i];

		r->rank = atoll(PQgetvalue(res, i, 0));
		r->version = atoi(PQgetvalue(res, i, 1));
		r->repeatable = strcmp(PQgetvalue(res, i, 2), "t") == 0;
		snprintf(r->name, sizeof(r->name), "%s", PQgetvalue(res, i, 3));
		snprintf(r->checksum, sizeof(r->checksum), "%s", PQgetvalue(res, i, 4));
		snprintf(r->status, sizeof(r->status), "%s", PQgetvalue(res, i, 5));
		snprintf(r->installed_at, sizeof(r->installed_at), "%s", PQgetvalue(res, i, 6));
		r->execution_ms = atoi(PQgetvalue(res, i, 7));
		snprintf(r->error, sizeof(r->error), "%s", PQgetvalue(res, i, 8));
	}
out:
	PQclear(res);
	return rc;
}

void db_migrate_history_fini(struct migplan_history *h)
{
	free(h->rows);
	memset(h, 0, sizeof(*h));
}

int db_migrate_set_timeouts(struct db_conn *c, long long lock_ms, long long statement_ms)
{
	char lock[32], stmt[32];
	const char *vals[2] = { lock, stmt };
	PGresult *res;
	int rc = PAY_OK;

	/* SET takes no parameters; set_config does. */
	snprintf(lock, sizeof(lock), "%lldms", lock_ms);
	snprintf(stmt, sizeof(stmt), "%lldms", statement_ms);
	res = PQexecParams(c->pg, "SELECT set_config('lock_timeout', $1, false),"
			   " set_config('statement_timeout', $2, false)", 2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = db_migrate_fail(c, res);
	PQclear(res);
	return rc;
}

int db_migrate_tx(struct db_conn *c, enum db_migrate_tx tx)
{
	static const char *const sql[] = { "BEGIN", "COMMIT", "ROLLBACK" };

	return db_migrate_command(c, sql[tx]);
}

int db_migrate_exec(struct db_conn *c, const struct migfile *f, struct db_migrate_error *err)
{
	/* A migration is its author's SQL, run as written: the one place with text not ours. */
	PGresult *res = PQexec(c->pg, f->sql);
	ExecStatusType st = PQresultStatus(res);
	const char *state, *message;
	int rc = PAY_OK;

	memset(err, 0, sizeof(*err));
	/* A comment-only file (a retired repeatable) is an empty query: nothing to do. */
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		message = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state ? state : "");
		snprintf(err->message, sizeof(err->message), "%s",
			 message ? message : PQerrorMessage(c->pg));
		if (err->message[0] == '\0')
			snprintf(err->message, sizeof(err->message), "%s", "unknown error");
		rc = PAY_EINTERNAL;
	}
	PQclear(res);
	return rc;
}

int db_migrate_record(struct db_conn *c, const struct migfile *f, const char *status, long long ms,
		      const char *sqlstate, const char *message)
{
	char version[16], dur[24];
	const char *vals[7];
	PGresult *res;
	int n = 0, rc = PAY_OK;

	snprintf(version, sizeof(version), "%d", f->version);
	snprintf(dur, sizeof(dur), "%lld", ms);
	if (!f->repeatable)
		vals[n++] = version;
	vals[n++] = f->name;
	vals[n++] = f->checksum;
	vals[n++] = status;
	vals[n++] = dur;
	vals[n++] = sqlstate;
	vals[n++] = message;
	res = PQexecParams(c->pg, f->repeatable ? DB_MIGRATE_RECORD_REPEATABLE_SQL :
			   DB_MIGRATE_RECORD_SQL, n, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = db_migrate_fail(c, res);
	PQclear(res);
	return rc;
}

int db_migrate_resolve(struct db_conn *c, int version, const char *checksum, bool applied)
{
	char v[16];
	const char *vals[2] = { v, checksum };
	PGresult *res;
	int rc = PAY_OK;

	snprintf(v, sizeof(v), "%d", version);
	res = applied ?
		PQexecParams(c->pg, "UPDATE payments_schema_history SET status = 'applied',"
			     " checksum = $2, installed_by = current_user, installed_at = now(),"
			     " error_sqlstate = NULL, error_message = 'resolved as applied by an operator'"
			     " WHERE version = $1::int", 2, NULL, vals, NULL, NULL, 0) :
		PQexecParams(c->pg, "DELETE FROM payments_schema_history WHERE version = $1::int"
			     " AND status = 'failed'", 1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = db_migrate_fail(c, res);
	PQclear(res);
	return rc;
}

int db_migrate_invalid_indexes(struct db_conn *c, struct db_migrate_index **out, int *n)
{
	PGresult *res = PQexec(c->pg,
		"SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text"
		" FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
		" WHERE NOT i.indisvalid AND c.relnamespace = 'public'::regnamespace ORDER BY 1");
	struct db_migrate_index *list = NULL;
	int i, rc = PAY_OK;

	*out = NULL;
	*n = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = db_migrate_fail(c, res);
		goto out;
	}
	list = calloc((size_t)PQntuples(res) + 1, sizeof(*list));
	if (list == NULL) {
		rc = PAY_ENOMEM;
		goto out;
	}
	for (i = 0; i < PQntuples(res); i++) {
		snprintf(list[i].name, sizeof(list[i].name), "%s", PQgetvalue(res, i, 0));
		snprintf(list[i].table, sizeof(list[i].table), "%s", PQgetvalue(res, i, 1));
	}
	*n = PQntuples(res);
	*out = list;   /* ownership passes to the caller */
	list = NULL;
out:
	free(list);
	PQclear(res);
	return rc;
}

int db_migrate_pgtap_available(struct db_conn *c, bool *available)
{
	return db_migrate_bool(c, "SELECT EXISTS (SELECT FROM pg_available_extensions"
			       " WHERE name = 'pgtap')", available);
}

int db_migrate_run_tap(struct db_conn *c, const char *sql,
		       void (*line)(void *arg, const char *text, bool error), void *arg)
{
	PGresult *res;
	int i, rc;

	rc = db_migrate_tx(c, DB_MIGRATE_BEGIN);
	if (rc == PAY_OK)
		rc = db_migrate_command(c, "CREATE EXTENSION IF NOT EXISTS pgtap");
	if (rc == PAY_OK && !PQsendQuery(c->pg, sql))
		rc = db_migrate_fail(c, NULL);
	if (rc != PAY_OK)
		goto out;
	while ((res = PQgetResult(c->pg)) != NULL) {
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == 1) {
			for (i = 0; i < PQntuples(res); i++)
				line(arg, PQgetvalue(res, i, 0), false);
		} else if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
			line(arg, PQresultErrorMessage(res), true);
		}
		PQclear(res);
	}
out:
	/* Whatever the script did, nothing of it stays. */
	(void)db_migrate_tx(c, DB_MIGRATE_ROLLBACK);
	return rc;
}

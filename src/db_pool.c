/* db_pool.c - connections, prepared statements and a fixed-size pool (libpq). */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db_conn.h"
#include "db_stmt.h"
#include "err.h"
#include "log.h"
#include "timing.h"

/* The session statement_timeout and lock_timeout of every connection (db_set_statement_timeout). */
static long long db_statement_timeout_ms = 10000;

void db_set_statement_timeout(long long ms)
{
	db_statement_timeout_ms = ms;
}

struct db_pool {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	char *url;
	long long wait_ms;
	long long connect_timeout_ms;
	int size;
	int in_use;
	unsigned long long waits;   /* acquisitions that found no free connection */
	unsigned long epoch;         /* bumped whenever a connection breaks: older ones are suspect */
	struct db_conn *conns;       /* size slots; pg is NULL until connected */
	struct db_conn *free_list;
};

void db_param_binary(struct db_params *p, const void *v, int len)
{
	/* One too many is remembered, and db_exec refuses the call. */
	if (p->n >= DB_PARAMS_MAX) {
		p->overflow = true;
		return;
	}
	p->values[p->n] = v;
	p->lengths[p->n] = len;
	p->n++;
}

void db_param_text(struct db_params *p, const char *v)
{
	db_param_binary(p, v, -1);
}

static void db_notice_quiet(void *arg, const PGresult *res)
{
	(void)arg;
	(void)res;
}

/*
 * Connects c->pg as application app. A service connection (service true)
 * prepares every statement, and no statement of the service may wait
 * forever behind a lock or run away: the session gets statement_timeout and
 * lock_timeout (functions may tighten them); its failures are logged. A
 * tool's connection (migrate) gets neither, since it brings the schema and
 * sets its own timeouts; its failure is left in c->message. Returns PAY_OK or
 * PAY_EUNAVAILABLE.
 */
static int db_connect_as(struct db_conn *c, const char *url, long long timeout_ms, const char *app,
			 bool service)
{
	const char *keys[] = { "dbname", "connect_timeout", "application_name", "options", NULL };
	char timeout[32], options[128];
	const char *vals[5];
	PGresult *res = NULL;
	int i, rc = PAY_EUNAVAILABLE;

	snprintf(timeout, sizeof(timeout), "%lld", (timeout_ms + 999) / 1000);
	vals[0] = url;   /* expand_dbname: a URI or conninfo string */
	vals[1] = timeout;
	vals[2] = app;
	snprintf(options, sizeof(options), "-c statement_timeout=%lld -c lock_timeout=%lld",
		 db_statement_timeout_ms, db_statement_timeout_ms);
	vals[3] = service ? options : NULL;
	vals[4] = NULL;
	if (c->pg != NULL)
		PQfinish(c->pg);
	c->message[0] = '\0';
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		snprintf(c->message, sizeof(c->message), "%s",
			 c->pg ? PQerrorMessage(c->pg) : "out of memory\n");
		if (service)
			log_printf(LOG_WARN, "database connection failed: %s", c->message);
		goto out;
	}
	PQsetNoticeReceiver(c->pg, db_notice_quiet, NULL);
	for (i = 0; service && i < DB_STMT_COUNT; i++) {
		res = PQprepare(c->pg, db_stmt_defs[i].name, db_stmt_defs[i].sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_printf(LOG_ERROR, "preparing %s failed (is the database migrated?): %s",
				   db_stmt_defs[i].name, PQresultErrorMessage(res));
			goto out;
		}
		PQclear(res);
		/* The server's count of $n must be the one db_stmt.c declares (and db_exec checks). */
		res = PQdescribePrepared(c->pg, db_stmt_defs[i].name);
		if (PQresultStatus(res) != PGRES_COMMAND_OK ||
		    PQnparams(res) != db_stmt_defs[i].nparams) {
			log_printf(LOG_ERROR, "statement %s takes %d parameters, db_stmt.c declares %d",
				   db_stmt_defs[i].name, PQnparams(res), db_stmt_defs[i].nparams);
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	c->broken = false;
	rc = PAY_OK;
out:
	PQclear(res);
	if (rc != PAY_OK && c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	return rc;
}

static int db_connect(struct db_conn *c, const char *url, long long timeout_ms)
{
	return db_connect_as(c, url, timeout_ms, "payments", true);
}

static long long db_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int db_conn_open_tool(const char *url, long long connect_timeout_ms, long long wait_ms,
		      const char *app, char *error, size_t error_len, struct db_conn **out)
{
	struct db_conn *c = calloc(1, sizeof(*c));
	long long deadline = db_now_ms() + wait_ms;
	int rc = PAY_ENOMEM;

	*out = NULL;
	if (c == NULL)
		goto out;
	while ((rc = db_connect_as(c, url, connect_timeout_ms, app, false)) != PAY_OK &&
	       db_now_ms() < deadline)
		usleep(500 * 1000);
	if (rc != PAY_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	if (rc != PAY_OK && error_len > 0)
		snprintf(error, error_len, "%s", c != NULL ? c->message : "out of memory\n");
	free(c);
	return rc;
}

int db_conn_open(const char *url, long long connect_timeout_ms, struct db_conn **out)
{
	struct db_conn *c = calloc(1, sizeof(*c));
	int rc = PAY_ENOMEM;

	*out = NULL;
	if (c == NULL)
		goto out;
	rc = db_connect(c, url, connect_timeout_ms);
	if (rc != PAY_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	free(c);
	return rc;
}

void db_conn_close(struct db_conn *c)
{
	if (c == NULL)
		return;
	if (c->pg != NULL)
		PQfinish(c->pg);
	free(c);
}

const char *db_conn_sqlstate(const struct db_conn *c)
{
	return c->sqlstate;
}

const char *db_conn_error(const struct db_conn *c)
{
	return c->message;
}

/*
 * Failures the client may simply retry on another connection: connection
 * exceptions (08xxx), the server shutting down or starting (57P01-57P03),
 * too many connections (53300), and read_only_sql_transaction (25006: a
 * standby, e.g. the old primary after a failover, until the pool reconnects).
 */
static bool db_sqlstate_unavailable(const char *s)
{
	return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
	       strcmp(s, "57P03") == 0 || strcmp(s, "53300") == 0 || strcmp(s, "25006") == 0;
}

/* A statement that waited too long (statement_timeout, lock_timeout): retryable, connection fine. */
static bool db_sqlstate_timeout(const char *s)
{
	return strcmp(s, "57014") == 0 || strcmp(s, "55P03") == 0;
}

int db_exec(struct db_conn *c, enum db_stmt stmt, const struct db_params *p, bool binary_result,
	    struct db_result **out)
{
	int formats[DB_PARAMS_MAX];
	struct db_result *r = NULL;
	PGresult *res = NULL;
	const char *state;
	ExecStatusType st;
	int i, rc = PAY_EINTERNAL;

	*out = NULL;
	c->sqlstate[0] = '\0';
	c->message[0] = '\0';
	if ((p != NULL && p->overflow) || (p ? p->n : 0) != db_stmt_defs[stmt].nparams) {
		/* A binding that does not match db_stmt.c is a bug: never send it. */
		log_printf(LOG_ERROR, "statement %s called with %d parameters, it takes %d",
			   db_stmt_defs[stmt].name, p ? p->n + (p->overflow ? 1 : 0) : 0,
			   db_stmt_defs[stmt].nparams);
		goto out;
	}
	for (i = 0; p != NULL && i < p->n; i++)
		formats[i] = p->lengths[i] >= 0 ? 1 : 0;
	res = PQexecPrepared(c->pg, db_stmt_defs[stmt].name, p ? p->n : 0, p ? p->values : NULL,
			     p ? p->lengths : NULL, p ? formats : NULL, binary_result ? 1 : 0);
	st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		r = malloc(sizeof(*r));
		if (r == NULL) {
			rc = PAY_ENOMEM;
			goto out;
		}
		r->res = res;   /* ownership passes to the db_result */
		res = NULL;
		*out = r;
		rc = PAY_OK;
		goto out;
	}
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	snprintf(c->message, sizeof(c->message), "%s",
		 res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
		 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "");
	/* Refusals raised on purpose by our SQL functions (class PR) are answers, not faults. */
	if (strncmp(c->sqlstate, "PR", 2) == 0) {
		rc = err_from_refusal(c->sqlstate);
		goto out;
	}
	if (PQstatus(c->pg) != CONNECTION_OK || db_sqlstate_unavailable(c->sqlstate)) {
		c->broken = true;
		rc = PAY_EUNAVAILABLE;
	} else if (db_sqlstate_timeout(c->sqlstate)) {
		rc = PAY_EUNAVAILABLE;
	}
	log_write(rc == PAY_EUNAVAILABLE ? LOG_WARN : LOG_ERROR, "database statement failed",
		  json_pack("{s:s, s:s, s:s}", "statement", db_stmt_defs[stmt].name,
			    "sqlstate", c->sqlstate,
			    "error", res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg)));
out:
	PQclear(res);
	return rc;
}

int db_ping(struct db_conn *c)
{
	struct db_result *r = NULL;
	const char *standby, *read_only;
	int rc = db_exec(c, DB_STMT_PING, NULL, false, &r);

	db_result_free(r);
	if (rc != PAY_OK)
		return rc;
	/*
	 * The server reports both whenever they change (PostgreSQL 14 and
	 * later), so after the round trip above they are current: a standby,
	 * or a server that refuses writes, cannot take charges.
	 */
	standby = PQparameterStatus(c->pg, "in_hot_standby");
	read_only = PQparameterStatus(c->pg, "default_transaction_read_only");
	if ((standby != NULL && strcmp(standby, "on") == 0) ||
	    (read_only != NULL && strcmp(read_only, "on") == 0)) {
		snprintf(c->message, sizeof(c->message), "the server is a standby or read-only");
		c->broken = true;   /* redial: target_session_attrs=read-write finds the primary */
		rc = PAY_EUNAVAILABLE;
	}
	return rc;
}

int db_server_is_standby(const char *url, long long connect_timeout_ms, bool *standby)
{
	const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	char timeout[32];
	const char *vals[] = { url, timeout, "payments", NULL };
	PGresult *res = NULL;
	PGconn *pg = NULL;
	int rc = PAY_EUNAVAILABLE;

	*standby = false;
	snprintf(timeout, sizeof(timeout), "%lld", (connect_timeout_ms + 999) / 1000);
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
		goto out;
	res = PQexecParams(pg, "SELECT pg_is_in_recovery()", 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = PAY_EINTERNAL;
		goto out;
	}
	*standby = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	rc = PAY_OK;
out:
	PQclear(res);
	PQfinish(pg);
	return rc;
}

int db_query_text(struct db_conn *c, enum db_stmt stmt, const struct db_params *p, char **out)
{
	struct db_result *r = NULL;
	const char *v;
	int rc;

	*out = NULL;
	rc = db_exec(c, stmt, p, false, &r);
	if (rc != PAY_OK)
		goto out;
	v = db_result_rows(r) > 0 ? db_value(r, 0, 0) : NULL;
	if (v == NULL) {
		rc = PAY_ENOT_FOUND;
		goto out;
	}
	*out = strdup(v);
	rc = *out ? PAY_OK : PAY_ENOMEM;
out:
	db_result_free(r);
	return rc;
}

int db_result_rows(const struct db_result *r)
{
	return PQntuples(r->res);
}

int db_result_fields(const struct db_result *r)
{
	return PQnfields(r->res);
}

const char *db_value(const struct db_result *r, int row, int col)
{
	if (PQgetisnull(r->res, row, col))
		return NULL;
	return PQgetvalue(r->res, row, col);
}

int db_value_length(const struct db_result *r, int row, int col)
{
	return PQgetlength(r->res, row, col);
}

long long db_result_affected(const struct db_result *r)
{
	return atoll(PQcmdTuples(r->res));
}

void db_result_free(struct db_result *r)
{
	if (r == NULL)
		return;
	PQclear(r->res);
	free(r);
}

struct db_pool *db_pool_create(const char *url, int size, long long wait_ms,
			       long long connect_timeout_ms)
{
	struct db_pool *p = calloc(1, sizeof(*p));
	int i;

	if (p == NULL)
		goto fail;
	p->url = strdup(url);
	p->conns = calloc((size_t)size, sizeof(*p->conns));
	if (p->url == NULL || p->conns == NULL)
		goto fail;
	p->size = size;
	p->wait_ms = wait_ms;
	p->connect_timeout_ms = connect_timeout_ms;
	for (i = size - 1; i >= 0; i--) {
		p->conns[i].next_free = p->free_list;
		p->free_list = &p->conns[i];
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	return p;
fail:
	if (p != NULL) {
		free(p->url);
		free(p->conns);
		free(p);
	}
	return NULL;
}

void db_pool_destroy(struct db_pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->size; i++) {
		if (p->conns[i].pg != NULL)
			PQfinish(p->conns[i].pg);
	}
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	free(p->conns);
	free(p->url);
	free(p);
}

/*
 * False when c can no longer be used without a round trip telling us so:
 * it was made before another connection of the pool broke (after a
 * failover, every connection to the old primary is gone, whether or not its
 * socket says so yet), or the server has closed its socket (a dead backend
 * or server). PQconsumeInput reads what is waiting without blocking; it
 * reads twice because a terminated backend sends an error before it closes,
 * and the end of the stream shows only on a read after that message.
 */
static bool db_conn_usable(struct db_conn *c, unsigned long epoch)
{
	return c->pg != NULL && !c->broken && c->epoch == epoch && PQconsumeInput(c->pg) == 1 &&
	       PQconsumeInput(c->pg) == 1 && PQstatus(c->pg) == CONNECTION_OK;
}

int db_pool_acquire(struct db_pool *p, struct db_conn **out)
{
	struct timespec deadline;
	struct db_conn *c = NULL;
	unsigned long epoch = 0;
	int rc = PAY_OK, wrc = 0;

	*out = NULL;
	timing_deadline(&deadline, p->wait_ms);
	pthread_mutex_lock(&p->lock);
	if (p->free_list == NULL)
		p->waits++;
	while (p->free_list == NULL && wrc != ETIMEDOUT)
		wrc = pthread_cond_timedwait(&p->freed, &p->lock, &deadline);
	if (p->free_list != NULL) {
		c = p->free_list;
		p->free_list = c->next_free;
		p->in_use++;
	}
	epoch = p->epoch;
	pthread_mutex_unlock(&p->lock);
	if (c == NULL) {
		log_printf(LOG_WARN, "no database connection free after %lld ms", p->wait_ms);
		return PAY_EUNAVAILABLE;
	}
	/*
	 * Connect outside the lock: a slow server must not stall other threads.
	 * With a multi-host URL and target_session_attrs=read-write, libpq
	 * tries each host and keeps only a writable one: after a failover this
	 * is how the pool finds the new primary.
	 */
	if (!db_conn_usable(c, epoch)) {
		rc = db_connect(c, p->url, p->connect_timeout_ms);
		c->epoch = epoch;
	}
	if (rc != PAY_OK) {
		db_pool_release(p, c);
		return rc;
	}
	*out = c;
	return PAY_OK;
}

void db_pool_release(struct db_pool *p, struct db_conn *c)
{
	bool broke = c->broken && c->pg != NULL;

	if (broke) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	pthread_mutex_lock(&p->lock);
	/* One broken connection (the server went away, or became read-only): redial them all. */
	if (broke)
		p->epoch++;
	c->next_free = p->free_list;
	p->free_list = c;
	p->in_use--;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

void db_pool_stats(struct db_pool *p, int *in_use, int *size, unsigned long long *waits)
{
	pthread_mutex_lock(&p->lock);
	*in_use = p->in_use;
	*size = p->size;
	*waits = p->waits;
	pthread_mutex_unlock(&p->lock);
}

/* db.h - the database layer: connections, the pool and prepared statements (libpq). */
#ifndef PAYMENTS_DB_H
#define PAYMENTS_DB_H

#include <stdbool.h>
#include <stddef.h>

/* Every prepared statement the service runs; the SQL is in db_stmt.c. */
enum db_stmt {
	DB_STMT_CREATE_CHARGE = 0,
	DB_STMT_GET_CHARGE,
	DB_STMT_FIND_API_KEY,
	DB_STMT_INSERT_API_KEY,
	DB_STMT_REVOKE_API_KEY,
	DB_STMT_PURGE_IDEMPOTENCY,
	DB_STMT_PING,
	DB_STMT_WEBHOOK_CREATE,
	DB_STMT_WEBHOOK_LIST,
	DB_STMT_WEBHOOK_GET,
	DB_STMT_WEBHOOK_DELETE,
	DB_STMT_DELIVERY_LIST,
	DB_STMT_DELIVERY_REPLAY,
	DB_STMT_RELAY_FANOUT,
	DB_STMT_RELAY_CLAIM,
	DB_STMT_RELAY_RECORD,
	DB_STMT_RELAY_REPLAY_DEAD,
	DB_STMT_RELAY_STATUS,
	DB_STMT_EVENT_PURGE,
	DB_STMT_CREATE_REFUND,
	DB_STMT_GET_REFUND,
	DB_STMT_GET_EVENT,
	DB_STMT_LIST_PAGE,
	DB_STMT_RELAY_NATS_CLAIM,
	DB_STMT_RELAY_NATS_RECORD,
	DB_STMT_RELAY_NATS_STATUS,
	DB_STMT_EVENT_PURGE_NATS,
	DB_STMT_RELAY_RELEASE,
	DB_STMT_COUNT
};

struct db_conn;
struct db_pool;

/* The parameters of one statement call: text values, or binary where lengths[i] >= 0. */
struct db_params {
	int n;
	const char *values[24];
	int lengths[24];     /* -1 (text) unless binary */
};

/* A result row set copied out of libpq is not offered: callers read through db_value. */
struct db_result;

/*
 * Sets the statement_timeout and lock_timeout (ms) of connections opened
 * from now on; call before opening any. A statement past it fails with
 * PAY_EUNAVAILABLE (the client retries). Default 10 s.
 */
void db_set_statement_timeout(long long ms);

/*
 * Opens one connection (connect_timeout_ms per attempt) and prepares every
 * statement. Returns PAY_OK or PAY_EUNAVAILABLE. Close with db_conn_close.
 */
int db_conn_open(const char *url, long long connect_timeout_ms, struct db_conn **out)
	__attribute__((warn_unused_result));
void db_conn_close(struct db_conn *c);

/*
 * Opens one connection for a tool that brings the schema itself (migrate):
 * application_name app, no prepared statements (the schema may not exist
 * yet) and the server's own timeouts. A failed attempt (connect_timeout_ms
 * each) is retried every 500 ms until wait_ms has passed, so the tool may
 * start before the database. Returns PAY_OK, or PAY_EUNAVAILABLE (or
 * PAY_ENOMEM) with libpq's last message in error (error_len bytes). Close
 * with db_conn_close.
 */
int db_conn_open_tool(const char *url, long long connect_timeout_ms, long long wait_ms,
		      const char *app, char *error, size_t error_len, struct db_conn **out)
	__attribute__((warn_unused_result));

/*
 * Runs a prepared statement. On PAY_OK *res is a result the caller frees with
 * db_result_free. On failure *res is NULL and the return is
 * PAY_EUNAVAILABLE (connection lost, server shutting down, timeout:
 * the connection is marked broken and the pool reconnects it) or
 * PAY_EINTERNAL; db_conn_sqlstate() then tells the SQLSTATE ("" if none).
 */
int db_exec(struct db_conn *c, enum db_stmt stmt, const struct db_params *p, bool binary_result,
	    struct db_result **res) __attribute__((warn_unused_result));

/* The SQLSTATE and primary message of the last failed db_exec on c, or "". */
const char *db_conn_sqlstate(const struct db_conn *c);
const char *db_conn_error(const struct db_conn *c);

int db_result_rows(const struct db_result *r);
/* Borrowed value of row, col; NULL for SQL NULL. Valid until db_result_free. */
const char *db_value(const struct db_result *r, int row, int col);
int db_value_length(const struct db_result *r, int row, int col);
/* Rows touched by an INSERT, UPDATE or DELETE. */
long long db_result_affected(const struct db_result *r);
void db_result_free(struct db_result *r);

/*
 * Runs stmt and copies the first column of its first row into *out (caller
 * frees with free()). Returns PAY_OK, PAY_ENOT_FOUND when there is no row or
 * the value is NULL, or a db_exec error.
 */
int db_query_text(struct db_conn *c, enum db_stmt stmt, const struct db_params *p, char **out)
	__attribute__((warn_unused_result));

/* Adds a text parameter (NULL for SQL NULL) or a binary one. */
void db_param_text(struct db_params *p, const char *v);
void db_param_binary(struct db_params *p, const void *v, int len);

/*
 * A fixed-size pool. db_pool_acquire waits up to wait_ms for a free
 * connection, (re)connecting it if needed; returns PAY_OK or
 * PAY_EUNAVAILABLE. Every acquired connection goes back with db_pool_release.
 */
struct db_pool *db_pool_create(const char *url, int size, long long wait_ms,
			       long long connect_timeout_ms);
void db_pool_destroy(struct db_pool *p);
int db_pool_acquire(struct db_pool *p, struct db_conn **out) __attribute__((warn_unused_result));
void db_pool_release(struct db_pool *p, struct db_conn *c);

/* Connections lent out now, the pool's size, and acquisitions that had to wait (for metrics). */
void db_pool_stats(struct db_pool *p, int *in_use, int *size, unsigned long long *waits);

#endif

/* db.h - the database layer: connections, the pool and prepared statements (libpq). */
#ifndef PAYMENTS_DB_H
#define PAYMENTS_DB_H

#include <stdbool.h>
#include <stddef.h>

struct db_conn;
struct db_pool;

/*
 * Sets the statement_timeout and lock_timeout (ms) of connections opened
 * from now on; call before opening any. A statement past it fails with
 * PAY_EUNAVAILABLE (the client retries). Default 10 s.
 */
void db_set_statement_timeout(long long ms);

/*
 * Opens one connection (connect_timeout_ms per attempt) and prepares every
 * statement. Returns PAY_OK, PAY_EUNAVAILABLE or PAY_ENOMEM. Close with db_conn_close.
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
 * Checks that c answers (SELECT 1) and that its server takes writes (not a
 * standby, not read-only). Returns PAY_OK, or PAY_EUNAVAILABLE (the
 * connection is then marked broken, so the pool redials it) or PAY_EINTERNAL.
 */
int db_ping(struct db_conn *c) __attribute__((warn_unused_result));

/*
 * Connects once to url, without preparing statements, and asks whether the
 * server is a standby (SELECT pg_is_in_recovery()). Returns PAY_OK with
 * *standby set, PAY_EUNAVAILABLE when no server accepted the connection, or
 * PAY_EINTERNAL.
 */
int db_server_is_standby(const char *url, long long connect_timeout_ms, bool *standby)
	__attribute__((warn_unused_result));

/* The SQLSTATE and primary message of the last failed statement on c, or "". */
const char *db_conn_sqlstate(const struct db_conn *c);
const char *db_conn_error(const struct db_conn *c);

/*
 * A fixed-size pool. db_pool_acquire waits up to wait_ms for a free
 * connection, (re)connecting it if needed; returns PAY_OK or
 * PAY_EUNAVAILABLE. Every acquired connection goes back with db_pool_release.
 * A connection that broke (connection lost, server shutting down, read-only)
 * is closed on release, and every other connection made before it is
 * redialled on its next acquisition; an idle connection whose server closed
 * it is noticed before use. Dialling a multi-host URL with
 * target_session_attrs=read-write reaches only a writable server, so after a
 * failover the pool finds the new primary by itself.
 */
struct db_pool *db_pool_create(const char *url, int size, long long wait_ms,
			       long long connect_timeout_ms);
void db_pool_destroy(struct db_pool *p);
int db_pool_acquire(struct db_pool *p, struct db_conn **out) __attribute__((warn_unused_result));
void db_pool_release(struct db_pool *p, struct db_conn *c);

/* Connections lent out now, the pool's size, and acquisitions that had to wait (for metrics). */
void db_pool_stats(struct db_pool *p, int *in_use, int *size, unsigned long long *waits);

#endif

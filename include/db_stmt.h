/*
 * db_stmt.h - internal to the database layer (the db_*.c files): the
 * prepared statements, their parameters and results. Nothing above that
 * layer runs a statement by name; it calls the db_<module> functions.
 */
#ifndef PAYMENTS_DB_STMT_H
#define PAYMENTS_DB_STMT_H

#include <stdbool.h>

#include "db.h"
#include "db_idem.h"

/* Every prepared statement the service runs; the SQL is in db_stmt.c. */
enum db_stmt {
	DB_STMT_CHARGE_CREATE = 0,
	DB_STMT_CHARGE_GET,
	DB_STMT_APIKEY_FIND,
	DB_STMT_APIKEY_INSERT,
	DB_STMT_APIKEY_REVOKE,
	DB_STMT_IDEM_PURGE,
	DB_STMT_PING,
	DB_STMT_WEBHOOK_CREATE,
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
	DB_STMT_REFUND_CREATE,
	DB_STMT_REFUND_GET,
	DB_STMT_EVENT_GET,
	DB_STMT_LIST_PAGE,
	DB_STMT_RELAY_NATS_CLAIM,
	DB_STMT_RELAY_NATS_RECORD,
	DB_STMT_RELAY_NATS_STATUS,
	DB_STMT_EVENT_PURGE_NATS,
	DB_STMT_RELAY_RELEASE,
	DB_STMT_CHARGE_CAPTURE,
	DB_STMT_CHARGE_EXPIRE,
	DB_STMT_PROCESSOR_CREATE,
	DB_STMT_PROCESSOR_CLAIM,
	DB_STMT_PROCESSOR_RESOLVE,
	DB_STMT_PROCESSOR_DEFER,
	DB_STMT_PROCESSOR_STATUS,
	DB_STMT_PROCESSOR_OURS,
	DB_STMT_CHARGE_UPDATE,
	DB_STMT_REFUND_UPDATE,
	DB_STMT_COUNT
};

/* The most parameters a statement takes. */
#define DB_PARAMS_MAX 24

/*
 * The parameters of one statement call, bound in the $n order of its SQL in
 * db_stmt.c: text values, or binary where lengths[i] >= 0. Binding more
 * than DB_PARAMS_MAX sets overflow, and db_exec then refuses the call.
 */
struct db_params {
	int n;
	bool overflow;
	const char *values[DB_PARAMS_MAX];
	int lengths[DB_PARAMS_MAX];     /* -1 (text) unless binary */
};

/* A result row set copied out of libpq is not offered: callers read through db_value. */
struct db_result;

/*
 * Runs a prepared statement. On PAY_OK *res is a result the caller frees with
 * db_result_free. On failure *res is NULL and the return is
 * PAY_EUNAVAILABLE (connection lost, server shutting down or read-only: the
 * connection is marked broken and the pool reconnects it; or a statement or
 * lock timeout, the connection kept), PAY_ESTATE (a refusal our SQL
 * functions raise on purpose, SQLSTATE class PR), PAY_ENOMEM or
 * PAY_EINTERNAL (also, without a round trip, when p does not hold exactly the
 * statement's parameters); db_conn_sqlstate() then tells the SQLSTATE ("" if
 * none).
 */
int db_exec(struct db_conn *c, enum db_stmt stmt, const struct db_params *p, bool binary_result,
	    struct db_result **res) __attribute__((warn_unused_result));


int db_result_rows(const struct db_result *r);
/* The number of columns of r. */
int db_result_fields(const struct db_result *r);
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

/* Adds the next text parameter (NULL for SQL NULL) or binary one; see struct db_params. */
void db_param_text(struct db_params *p, const char *v);
void db_param_binary(struct db_params *p, const void *v, int len);

/*
 * Runs an idempotent write statement (create_charge, create_refund,
 * capture_charge, update_charge, update_refund: all return outcome,
 * status_code, body) and reads its row into out. Returns
 * PAY_OK, PAY_EIDEM_IN_USE when a concurrent request with the same key held
 * it too long, or a db_exec error (then db_conn_sqlstate tells more).
 */
int db_idem_exec(struct db_conn *c, enum db_stmt stmt, const struct db_params *p,
		 struct db_idem_result *out) __attribute__((warn_unused_result));

/* The five parameters every idempotent create takes first, in its $1..$5 order. */
struct db_idem_key {
	const char *user_id;
	const char *idempotency_key;
	const unsigned char *fingerprint;   /* 32 bytes */
	long long ttl_ms;
	long long wait_ms;
};

/*
 * Binds k as $1..$5 (p_user_id, p_key, p_fingerprint, p_ttl_ms, p_wait_ms)
 * of an empty p. The two numbers are written into nums, which must outlive
 * the call of the statement.
 */
void db_idem_bind(struct db_params *p, char nums[2][24], const struct db_idem_key *k);


struct db_stmt_def {
	const char *name;
	const char *sql;
	int nparams;         /* the $n it takes: checked when prepared and on every call */
};

extern const struct db_stmt_def db_stmt_defs[DB_STMT_COUNT];

#endif

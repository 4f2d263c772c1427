/* db_stmt.c - the SQL of every prepared statement, prepared on each new connection. */
#include "db_stmt.h"

const struct db_stmt_def db_stmt_defs[DB_STMT_COUNT] = {
	[DB_STMT_CREATE_CHARGE] = { "create_charge",
		"SELECT outcome, status_code, body FROM create_charge("
		"$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)" },
	[DB_STMT_GET_CHARGE] = { "get_charge",
		"SELECT charge_object(c)::text FROM charges c WHERE c.id = $1 AND c.user_id = $2" },
	[DB_STMT_FIND_API_KEY] = { "find_api_key",
		"SELECT user_id, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL" },
	[DB_STMT_INSERT_API_KEY] = { "insert_api_key",
		"INSERT INTO api_keys (id, user_id, secret_hash) VALUES ($1, $2, $3)" },
	[DB_STMT_REVOKE_API_KEY] = { "revoke_api_key",
		"UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL" },
	[DB_STMT_PURGE_IDEMPOTENCY] = { "purge_idempotency",
		/* Small batches, skipping rows a retry is reading or replacing right now. */
		"DELETE FROM idempotency_keys WHERE ctid IN ("
		" SELECT ctid FROM idempotency_keys WHERE expires_at <= now()"
		" ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)" },
	[DB_STMT_PING] = { "ping", "SELECT 1" },
};

/* db_apikey.c - API key rows: lookup by public id, insert, revoke. */
#include "db_apikey.h"

#include <stdlib.h>
#include <string.h>

#include "db_stmt.h"
#include "err.h"

int db_apikey_find(struct db_conn *c, const char *key_id, char *user, unsigned char *hash)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	int rc;

	db_param_text(&p, key_id);
	rc = db_exec(c, DB_STMT_APIKEY_FIND, &p, true, &r);
	if (rc != PAY_OK)
		goto out;
	if (db_result_rows(r) == 0) {
		rc = PAY_ENOT_FOUND;
		goto out;
	}
	/* Binary results: text is its raw bytes, bytea the bytes themselves. */
	if (db_value_length(r, 0, 0) > APIKEY_USER_MAX ||
	    db_value_length(r, 0, 1) != APIKEY_HASH_BYTES) {
		rc = PAY_EINTERNAL;
		goto out;
	}
	memcpy(user, db_value(r, 0, 0), (size_t)db_value_length(r, 0, 0));
	user[db_value_length(r, 0, 0)] = '\0';
	memcpy(hash, db_value(r, 0, 1), APIKEY_HASH_BYTES);
	rc = PAY_OK;
out:
	db_result_free(r);
	return rc;
}

int db_apikey_insert(struct db_conn *c, const char *key_id, const char *user,
		     const unsigned char *hash)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	int rc;

	db_param_text(&p, key_id);
	db_param_text(&p, user);
	db_param_binary(&p, hash, APIKEY_HASH_BYTES);
	rc = db_exec(c, DB_STMT_APIKEY_INSERT, &p, false, &r);
	db_result_free(r);
	return rc;
}

int db_apikey_revoke(struct db_conn *c, const char *key_id)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	int rc;

	db_param_text(&p, key_id);
	rc = db_exec(c, DB_STMT_APIKEY_REVOKE, &p, false, &r);
	if (rc == PAY_OK && db_result_affected(r) == 0)
		rc = PAY_ENOT_FOUND;
	db_result_free(r);
	return rc;
}

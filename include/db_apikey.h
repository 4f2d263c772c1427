/* db_apikey.h - API key rows: lookup by public id, insert, revoke. */
#ifndef PAYMENTS_DB_APIKEY_H
#define PAYMENTS_DB_APIKEY_H

#include "apikey.h"
#include "db.h"

/*
 * Finds the active key with public id key_id. Returns PAY_OK with user
 * (APIKEY_USER_MAX + 1 bytes) and hash (APIKEY_HASH_BYTES) filled,
 * PAY_ENOT_FOUND when there is none (or it is revoked), or a db error.
 */
int db_apikey_find(struct db_conn *c, const char *key_id, char *user, unsigned char *hash)
	__attribute__((warn_unused_result));

/* Stores a new key's id, user and hash. Returns PAY_OK or a db error. */
int db_apikey_insert(struct db_conn *c, const char *key_id, const char *user,
		     const unsigned char *hash) __attribute__((warn_unused_result));

/* Revokes the key with public id key_id. Returns PAY_OK or PAY_ENOT_FOUND. */
int db_apikey_revoke(struct db_conn *c, const char *key_id) __attribute__((warn_unused_result));

#endif

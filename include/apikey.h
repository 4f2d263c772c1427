/* apikey.h - secret API keys: format, generation and hashing (libsodium). */
#ifndef PAYMENTS_APIKEY_H
#define PAYMENTS_APIKEY_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A key is "sk_test_" + 12 base62 characters of public key id + 32 base62
 * characters of secret (~190 bits). Only the id and a BLAKE2b hash of the
 * whole key are stored; the key itself is shown once.
 */
#define APIKEY_PREFIX "sk_test_"
#define APIKEY_ID_CHARS 12
#define APIKEY_SECRET_CHARS 32
#define APIKEY_LEN (sizeof(APIKEY_PREFIX) - 1 + APIKEY_ID_CHARS + APIKEY_SECRET_CHARS)
#define APIKEY_HASH_BYTES 32
#define APIKEY_USER_MAX 64

/* Fills key (APIKEY_LEN + 1 bytes) with a new random key. */
void apikey_generate(char *key);

/*
 * Checks that key has the exact format and copies its public id into
 * id (APIKEY_ID_CHARS + 1 bytes). Returns PAY_OK or PAY_EAUTH_INVALID.
 */
int apikey_parse(const char *key, char *id);

/* Room for a key's public name, "sk_test_" and its id (with the NUL). */
#define APIKEY_PUBLIC_LEN (sizeof(APIKEY_PREFIX) - 1 + APIKEY_ID_CHARS + 1)

/*
 * Reads a key's public name: "sk_test_" and its APIKEY_ID_CHARS-character
 * id (what 'keys create' prints to stderr), or the id alone, never the
 * whole secret. Copies the id into id (APIKEY_ID_CHARS + 1 bytes).
 * Returns PAY_OK or PAY_EAUTH_INVALID.
 */
int apikey_parse_public(const char *name, char *id);

/*
 * Extracts the key from an Authorization header value ("Bearer sk_test_...").
 * Returns a pointer into header, or NULL when the scheme is not Bearer.
 */
const char *apikey_from_bearer(const char *header);

/* Hashes the whole key into out (APIKEY_HASH_BYTES). */
void apikey_hash(const char *key, unsigned char *out);

/* Constant-time comparison of two hashes (sodium_memcmp). */
bool apikey_hash_equal(const unsigned char *a, const unsigned char *b);

/* True when name is a valid user name: 1..64 of [A-Za-z0-9_.-]. */
bool apikey_user_valid(const char *name);

#endif

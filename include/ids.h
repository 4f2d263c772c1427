/* ids.h - random, unguessable object ids and request ids (libsodium). */
#ifndef PAYMENTS_IDS_H
#define PAYMENTS_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define IDS_RANDOM_CHARS 24      /* base62 characters after the prefix: ~143 bits */
#define IDS_MAX 40               /* room for any prefix + random part + NUL */
#define IDS_REQUEST_ID_MAX 128   /* longest client-sent X-Request-Id we echo */

/*
 * Writes prefix + IDS_RANDOM_CHARS random base62 characters into out
 * (outlen >= strlen(prefix) + IDS_RANDOM_CHARS + 1). sodium_init() must have run.
 */
void ids_generate(char *out, size_t outlen, const char *prefix);

/* Writes n random base62 characters and a NUL into out (n + 1 bytes). */
void ids_random_base62(char *out, size_t n);

/* True when id is prefix followed by exactly IDS_RANDOM_CHARS base62 characters. */
bool ids_valid(const char *id, const char *prefix);

/* True when a client-sent X-Request-Id is safe to echo and log: 1..IDS_REQUEST_ID_MAX of [A-Za-z0-9._:-]. */
bool ids_request_id_sane(const char *s);

#endif

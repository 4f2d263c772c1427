/* keycache.h - API keys verified recently, kept in the process for at most a bounded time. */
#ifndef PAYMENTS_KEYCACHE_H
#define PAYMENTS_KEYCACHE_H

#include <stdbool.h>

#include "apikey.h"

/*
 * A fixed number of slots, one key each (a new key takes its slot over).
 * An entry answers for ttl_ms after the time it was read from the database,
 * and never longer: a key revoked in the database stops working in every
 * process within ttl_ms, with no message between them. Thread-safe.
 */
struct keycache;

/* Returns NULL when out of memory. ttl_ms 0 makes a cache that never finds anything. */
struct keycache *keycache_create(long long ttl_ms);
void keycache_destroy(struct keycache *kc);

/*
 * True when key_id was put with this same hash (APIKEY_HASH_BYTES) at a
 * time read_ms with now_ms - read_ms < ttl_ms; user (APIKEY_USER_MAX + 1
 * bytes) is then filled. Times are CLOCK_MONOTONIC milliseconds.
 */
bool keycache_find(struct keycache *kc, const char *key_id, const unsigned char *hash,
		   long long now_ms, char *user);

/*
 * Remembers that key_id with hash belongs to user, as read from the
 * database by a query that started at read_ms (never later: the entry's
 * age must not be understated).
 */
void keycache_put(struct keycache *kc, const char *key_id, const unsigned char *hash,
		  const char *user, long long read_ms);

#endif

/* replaycache.h - completed idempotent responses of POST /v1/charges, kept in the process for at most a bounded time. */
#ifndef PAYMENTS_REPLAYCACHE_H
#define PAYMENTS_REPLAYCACHE_H

#include <stdbool.h>
#include <stddef.h>

/* Slots (one user and key each; a new one takes its slot over) and the largest body kept. */
#define REPLAYCACHE_SLOTS 4096
#define REPLAYCACHE_BODY_MAX 4096

/*
 * A response stored under an Idempotency-Key never changes once its
 * transaction committed, until the key expires: so a retry can be answered
 * from memory, without the database. An entry answers only a request of the
 * same user, key and fingerprint (anything else asks the database, which
 * decides 409s), for less than ttl_ms after the read that returned it, and
 * never at or past the key's expiry as that read reported it. Memory is
 * bounded: REPLAYCACHE_SLOTS entries of at most REPLAYCACHE_BODY_MAX bytes of
 * body. Thread-safe.
 */
struct replaycache;

/* A response found: body is owned by the caller (free()), NUL-terminated. */
struct replaycache_hit {
	int status;
	char *body;
	size_t body_len;
};

/* Returns NULL when out of memory. ttl_ms 0 makes a cache that never finds anything. */
struct replaycache *replaycache_create(long long ttl_ms);
void replaycache_destroy(struct replaycache *rc);

/*
 * True when (user, key) was put with this fingerprint (32 bytes) and is
 * still fresh at now_ms (CLOCK_MONOTONIC milliseconds); *hit is then filled.
 * False also when out of memory.
 */
bool replaycache_find(struct replaycache *rc, const char *user, const char *key,
		      const unsigned char *fingerprint, long long now_ms, struct replaycache_hit *hit);

/*
 * Remembers the committed response (status, body of body_len bytes) stored
 * under (user, key) for fingerprint, as returned by a database call that
 * started at read_ms (never later) and said the key had expires_in_ms left.
 * A body over REPLAYCACHE_BODY_MAX, or expires_in_ms <= 0, is not kept.
 */
void replaycache_put(struct replaycache *rc, const char *user, const char *key,
		     const unsigned char *fingerprint, int status, const char *body, size_t body_len,
		     long long read_ms, long long expires_in_ms);

#endif

/* ratelimit.h - token buckets per user (or per client address), per instance. */
#ifndef PAYMENTS_RATELIMIT_H
#define PAYMENTS_RATELIMIT_H

#include <stdbool.h>

struct ratelimit;

/* What the X-RateLimit-* headers and a 429 need to say. */
struct ratelimit_state {
	int limit;               /* the bucket size (burst) */
	int remaining;           /* whole tokens left after this request */
	long long reset_s;       /* seconds until the bucket is full again */
	long long retry_after_s; /* when refused: seconds until one token is back */
};

/*
 * Creates a limiter refilling rate tokens per second into buckets of burst
 * tokens. rate 0 means no limit (ratelimit_take always allows). Returns NULL
 * when out of memory.
 */
struct ratelimit *ratelimit_create(int rate, int burst);
void ratelimit_destroy(struct ratelimit *rl);

/*
 * Takes one token from key's bucket at time now (seconds, monotonic). Returns
 * true when allowed. Fills *st either way. Thread-safe. Idle full buckets are
 * forgotten, so memory stays bounded by the number of recently active keys.
 */
bool ratelimit_take(struct ratelimit *rl, const char *key, double now, struct ratelimit_state *st);

/*
 * Whether key's bucket holds a token at time now, without taking it: for
 * costs known only afterwards (a key that fails is charged with
 * ratelimit_take once it has failed). Fills *st as ratelimit_take does.
 * Thread-safe.
 */
bool ratelimit_peek(struct ratelimit *rl, const char *key, double now, struct ratelimit_state *st);

#endif

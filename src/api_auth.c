/* api_auth.c - Bearer API key authentication. */
#include "api.h"

#include <stdio.h>
#include <time.h>

#include <sodium.h>

#include "db.h"
#include "db_apikey.h"
#include "err.h"
#include "keycache.h"
#include "metrics.h"
#include "ratelimit.h"

/* Seconds on CLOCK_MONOTONIC, the rate limiters' clock. */
static double api_auth_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + now.tv_nsec / 1e9;
}

/*
 * Charges a request without a verified key to its client address's bucket
 * (take: a token is spent; otherwise only looked at). Returns PAY_OK or
 * PAY_ERATE_LIMITED (the 429's headers set).
 */
static int api_auth_limit(struct http_req *r, bool take)
{
	char bucket[96];
	bool ok;

	snprintf(bucket, sizeof(bucket), "addr:%s", r->client);
	ok = take ? ratelimit_take(r->app->auth_limiter, bucket, api_auth_now(), &r->rl) :
		    ratelimit_peek(r->app->auth_limiter, bucket, api_auth_now(), &r->rl);
	if (ok)
		return PAY_OK;
	r->limited = true;
	metrics_rate_limited();
	return PAY_ERATE_LIMITED;
}

/*
 * A key verified within PAYMENTS_KEY_CACHE_TTL is taken from the process's
 * cache; otherwise it is read from the database (a second round trip on
 * the way to the handler's) and, when valid, cached as of the request's
 * start, which came before that read. Requests without a valid key spend a
 * token of their client address's bucket (PAYMENTS_AUTH_RATE_LIMIT), and
 * once it is empty a key is no longer read at all: a flood of made-up keys
 * is refused before it costs a database read. A valid key spends nothing,
 * however many requests of one client miss the cache at once.
 */
int api_authenticate(struct http_req *r)
{
	unsigned char want[APIKEY_HASH_BYTES], stored[APIKEY_HASH_BYTES];
	char key_id[APIKEY_ID_CHARS + 1], user[APIKEY_USER_MAX + 1], bucket[96];
	const char *header = http_header(r, "Authorization"), *key;
	struct db_conn *conn = NULL;
	long long started_ms;
	int rc;

	key = header != NULL ? apikey_from_bearer(header) : NULL;
	if (key == NULL || apikey_parse(key, key_id) != PAY_OK) {
		rc = api_auth_limit(r, true);
		if (rc == PAY_OK)
			rc = header == NULL ? PAY_EAUTH_MISSING : PAY_EAUTH_INVALID;
		goto out;
	}
	apikey_hash(key, want);
	started_ms = (long long)r->start.tv_sec * 1000 + r->start.tv_nsec / 1000000;
	if (keycache_find(r->app->keys, key_id, want, started_ms, r->user_id)) {
		rc = PAY_OK;
		goto out;
	}
	rc = api_auth_limit(r, false);
	if (rc != PAY_OK)
		goto out;
	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc != PAY_OK)
		goto out;
	rc = db_apikey_find(conn, key_id, user, stored);
	db_pool_release(r->app->pool, conn);
	if (rc == PAY_ENOT_FOUND || (rc == PAY_OK && !apikey_hash_equal(want, stored))) {
		rc = PAY_EAUTH_INVALID;
		/* Spent now; the 401 follows either way, and the next one meets the empty bucket. */
		snprintf(bucket, sizeof(bucket), "addr:%s", r->client);
		ratelimit_take(r->app->auth_limiter, bucket, api_auth_now(), &r->rl);
	}
	if (rc == PAY_OK) {
		snprintf(r->user_id, sizeof(r->user_id), "%s", user);
		keycache_put(r->app->keys, key_id, want, user, started_ms);
	}
out:
	sodium_memzero(want, sizeof(want));
	return rc;
}

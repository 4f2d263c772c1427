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

/*
 * Takes a token from the client address's bucket of requests without a
 * verified key, into *bucket (its name, for giving it back). Returns PAY_OK
 * or PAY_ERATE_LIMITED (the 429's headers set).
 */
static int api_auth_limit(struct http_req *r, char *bucket, size_t len)
{
	struct timespec now;

	snprintf(bucket, len, "addr:%s", r->client);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (ratelimit_take(r->app->auth_limiter, bucket, (double)now.tv_sec + now.tv_nsec / 1e9,
			   &r->rl))
		return PAY_OK;
	r->limited = true;
	metrics_rate_limited();
	return PAY_ERATE_LIMITED;
}

/*
 * A key verified within PAYMENTS_KEY_CACHE_TTL is taken from the process's
 * cache; otherwise it is read from the database (a second round trip on
 * the way to the handler's) and, when valid, cached as of the request's
 * start, which came before that read. Every request without a cached key
 * first takes a token from its client address's bucket
 * (PAYMENTS_AUTH_RATE_LIMIT), so a flood of made-up keys is refused before
 * it costs a database read; a key that proves valid gives its token back.
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
		rc = api_auth_limit(r, bucket, sizeof(bucket));
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
	rc = api_auth_limit(r, bucket, sizeof(bucket));
	if (rc != PAY_OK)
		goto out;
	rc = db_pool_acquire(r->app->pool, &conn);
	if (rc != PAY_OK)
		goto out;
	rc = db_apikey_find(conn, key_id, user, stored);
	db_pool_release(r->app->pool, conn);
	if (rc == PAY_ENOT_FOUND || (rc == PAY_OK && !apikey_hash_equal(want, stored)))
		rc = PAY_EAUTH_INVALID;
	if (rc == PAY_OK) {
		snprintf(r->user_id, sizeof(r->user_id), "%s", user);
		keycache_put(r->app->keys, key_id, want, user, started_ms);
		ratelimit_give(r->app->auth_limiter, bucket);
	}
out:
	sodium_memzero(want, sizeof(want));
	return rc;
}

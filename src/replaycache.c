/* replaycache.c - completed idempotent responses of POST /v1/charges, kept in the process for at most a bounded time. */
#include "replaycache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "canon.h"
#include "fnv.h"
#include "idem.h"

/* Locks, each guarding the slots whose index is equal modulo this: 128 HTTP threads seldom meet. */
#define REPLAYCACHE_LOCKS 64

struct replaycache_entry {
	char user[APIKEY_USER_MAX + 1];   /* "" when empty */
	char key[IDEM_KEY_MAX + 1];
	unsigned char fingerprint[CANON_FINGERPRINT_BYTES];
	int status;
	char *body;                       /* owned; NUL-terminated */
	size_t body_len;
	long long read_ms;
	long long until_ms;               /* the key's expiry as its read saw it */
};

struct replaycache {
	long long ttl_ms;
	pthread_mutex_t locks[REPLAYCACHE_LOCKS];
	struct replaycache_entry slots[REPLAYCACHE_SLOTS];
};

struct replaycache *replaycache_create(long long ttl_ms)
{
	struct replaycache *rc = calloc(1, sizeof(*rc));

	if (rc == NULL)
		return NULL;
	for (int i = 0; i < REPLAYCACHE_LOCKS; i++)
		pthread_mutex_init(&rc->locks[i], NULL);
	rc->ttl_ms = ttl_ms;
	return rc;
}

void replaycache_destroy(struct replaycache *rc)
{
	if (rc == NULL)
		return;
	for (int i = 0; i < REPLAYCACHE_SLOTS; i++)
		free(rc->slots[i].body);
	for (int i = 0; i < REPLAYCACHE_LOCKS; i++)
		pthread_mutex_destroy(&rc->locks[i]);
	free(rc);
}

/* The slot of (user, key): FNV-1a over both, with the NUL between them. */
static size_t replaycache_index(const char *user, const char *key)
{
	return fnv_hash(fnv_hash(FNV_OFFSET, user, strlen(user) + 1), key, strlen(key)) %
	       REPLAYCACHE_SLOTS;
}

bool replaycache_find(struct replaycache *rc, const char *user, const char *key,
		      const unsigned char *fingerprint, long long now_ms, struct replaycache_hit *hit)
{
	size_t i;
	struct replaycache_entry *e;
	bool found = false;

	memset(hit, 0, sizeof(*hit));
	if (rc->ttl_ms <= 0)
		return false;
	i = replaycache_index(user, key);
	e = &rc->slots[i];
	pthread_mutex_lock(&rc->locks[i % REPLAYCACHE_LOCKS]);
	if (e->body != NULL && strcmp(e->user, user) == 0 && strcmp(e->key, key) == 0 &&
	    memcmp(e->fingerprint, fingerprint, CANON_FINGERPRINT_BYTES) == 0 &&
	    now_ms >= e->read_ms && now_ms - e->read_ms < rc->ttl_ms && now_ms < e->until_ms) {
		hit->body = malloc(e->body_len + 1);
		if (hit->body != NULL) {
			memcpy(hit->body, e->body, e->body_len + 1);
			hit->body_len = e->body_len;
			hit->status = e->status;
			found = true;
		}
	}
	pthread_mutex_unlock(&rc->locks[i % REPLAYCACHE_LOCKS]);
	return found;
}

void replaycache_put(struct replaycache *rc, const char *user, const char *key,
		     const unsigned char *fingerprint, int status, const char *body, size_t body_len,
		     long long read_ms, long long expires_in_ms)
{
	size_t i;
	struct replaycache_entry *e;
	char *copy;

	if (rc->ttl_ms <= 0 || expires_in_ms <= 0 || body == NULL || body_len > REPLAYCACHE_BODY_MAX ||
	    strlen(user) > APIKEY_USER_MAX || strlen(key) > IDEM_KEY_MAX)
		return;
	copy = malloc(body_len + 1);
	if (copy == NULL)
		return;
	memcpy(copy, body, body_len);
	copy[body_len] = '\0';
	i = replaycache_index(user, key);
	e = &rc->slots[i];
	pthread_mutex_lock(&rc->locks[i % REPLAYCACHE_LOCKS]);
	/* An older read of the same key never replaces a newer one. */
	if (e->body != NULL && strcmp(e->user, user) == 0 && strcmp(e->key, key) == 0 &&
	    read_ms <= e->read_ms)
		goto unlock;
	free(e->body);
	strcpy(e->user, user);
	strcpy(e->key, key);
	memcpy(e->fingerprint, fingerprint, CANON_FINGERPRINT_BYTES);
	e->status = status;
	e->body = copy;   /* the slot owns it now */
	copy = NULL;
	e->body_len = body_len;
	e->read_ms = read_ms;
	e->until_ms = read_ms + expires_in_ms;
unlock:
	pthread_mutex_unlock(&rc->locks[i % REPLAYCACHE_LOCKS]);
	free(copy);
}

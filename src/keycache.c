/* keycache.c - API keys verified recently, kept in the process for at most a bounded time. */
#include "keycache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fnv.h"

/* Enough for every active key of a busy instance; a collision only costs a database read. */
#define KEYCACHE_SLOTS 1024

struct keycache_entry {
	char key_id[APIKEY_ID_CHARS + 1];   /* "" when empty */
	unsigned char hash[APIKEY_HASH_BYTES];
	char user[APIKEY_USER_MAX + 1];
	long long read_ms;
};

struct keycache {
	pthread_mutex_t lock;
	long long ttl_ms;
	struct keycache_entry slots[KEYCACHE_SLOTS];
};

struct keycache *keycache_create(long long ttl_ms)
{
	struct keycache *kc = calloc(1, sizeof(*kc));

	if (kc == NULL)
		return NULL;
	pthread_mutex_init(&kc->lock, NULL);
	kc->ttl_ms = ttl_ms;
	return kc;
}

void keycache_destroy(struct keycache *kc)
{
	if (kc == NULL)
		return;
	pthread_mutex_destroy(&kc->lock);
	/* The hashes are of secrets: leave nothing of them in freed memory. */
	sodium_memzero(kc->slots, sizeof(kc->slots));
	free(kc);
}

static struct keycache_entry *keycache_slot(struct keycache *kc, const char *key_id)
{
	return &kc->slots[fnv_hash(FNV_OFFSET, key_id, strlen(key_id)) % KEYCACHE_SLOTS];
}

bool keycache_find(struct keycache *kc, const char *key_id, const unsigned char *hash,
		   long long now_ms, char *user)
{
	struct keycache_entry *e;
	bool found = false;

	if (kc->ttl_ms <= 0)
		return false;
	pthread_mutex_lock(&kc->lock);
	e = keycache_slot(kc, key_id);
	if (strcmp(e->key_id, key_id) == 0 && now_ms - e->read_ms < kc->ttl_ms &&
	    now_ms >= e->read_ms && apikey_hash_equal(e->hash, hash)) {
		memcpy(user, e->user, sizeof(e->user));
		found = true;
	}
	pthread_mutex_unlock(&kc->lock);
	return found;
}

void keycache_put(struct keycache *kc, const char *key_id, const unsigned char *hash,
		  const char *user, long long read_ms)
{
	struct keycache_entry *e;

	if (kc->ttl_ms <= 0)
		return;
	pthread_mutex_lock(&kc->lock);
	e = keycache_slot(kc, key_id);
	/* An older read never replaces a newer one of the same key. */
	if (strcmp(e->key_id, key_id) != 0 || read_ms > e->read_ms) {
		snprintf(e->key_id, sizeof(e->key_id), "%s", key_id);
		memcpy(e->hash, hash, APIKEY_HASH_BYTES);
		snprintf(e->user, sizeof(e->user), "%s", user);
		e->read_ms = read_ms;
	}
	pthread_mutex_unlock(&kc->lock);
}

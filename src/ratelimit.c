/* ratelimit.c - token buckets per user (or per client address), per instance. */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RATELIMIT_SLOTS 4096
#define RATELIMIT_SWEEP_AT 65536   /* entries before idle buckets are swept */
#define RATELIMIT_KEY_MAX 80

struct ratelimit_bucket {
	struct ratelimit_bucket *next;
	char key[RATELIMIT_KEY_MAX];
	double tokens;
	double at;                 /* when tokens was computed */
};

struct ratelimit {
	pthread_mutex_t lock;
	double rate;
	double burst;
	size_t count;
	struct ratelimit_bucket *slots[RATELIMIT_SLOTS];
};

struct ratelimit *ratelimit_create(int rate, int burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	pthread_mutex_init(&rl->lock, NULL);
	rl->rate = rate;
	rl->burst = burst > 0 ? burst : 1;
	return rl;
}

void ratelimit_destroy(struct ratelimit *rl)
{
	struct ratelimit_bucket *b, *next;
	size_t i;

	if (rl == NULL)
		return;
	for (i = 0; i < RATELIMIT_SLOTS; i++) {
		for (b = rl->slots[i]; b != NULL; b = next) {
			next = b->next;
			free(b);
		}
	}
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

static size_t ratelimit_hash(const char *key)
{
	size_t h = 5381;

	while (*key)
		h = h * 33 + (unsigned char)*key++;
	return h % RATELIMIT_SLOTS;
}

/* Forgets buckets that have refilled completely: they behave exactly like new ones. */
static void ratelimit_sweep(struct ratelimit *rl, double now)
{
	struct ratelimit_bucket **pp, *b;
	size_t i;

	for (i = 0; i < RATELIMIT_SLOTS; i++) {
		pp = &rl->slots[i];
		while ((b = *pp) != NULL) {
			if (b->tokens + (now - b->at) * rl->rate >= rl->burst) {
				*pp = b->next;
				free(b);
				rl->count--;
			} else {
				pp = &b->next;
			}
		}
	}
}

bool ratelimit_take(struct ratelimit *rl, const char *key, double now, struct ratelimit_state *st)
{
	struct ratelimit_bucket *b;
	size_t slot = ratelimit_hash(key);
	bool allowed;

	st->limit = (int)rl->burst;
	if (rl->rate <= 0) {
		st->remaining = st->limit;
		st->reset_s = 0;
		st->retry_after_s = 0;
		return true;
	}
	pthread_mutex_lock(&rl->lock);
	for (b = rl->slots[slot]; b != NULL && strncmp(b->key, key, RATELIMIT_KEY_MAX - 1) != 0; b = b->next)
		;
	if (b == NULL) {
		if (rl->count >= RATELIMIT_SWEEP_AT)
			ratelimit_sweep(rl, now);
		b = calloc(1, sizeof(*b));
		if (b == NULL) {
			/* Out of memory: fail open rather than refuse paying customers. */
			pthread_mutex_unlock(&rl->lock);
			st->remaining = 0;
			st->reset_s = 0;
			st->retry_after_s = 0;
			return true;
		}
		strncpy(b->key, key, RATELIMIT_KEY_MAX - 1);
		b->tokens = rl->burst;
		b->at = now;
		b->next = rl->slots[slot];
		rl->slots[slot] = b;
		rl->count++;
	}
	b->tokens = fmin(rl->burst, b->tokens + (now - b->at) * rl->rate);
	b->at = now;
	allowed = b->tokens >= 1.0;
	if (allowed)
		b->tokens -= 1.0;
	st->remaining = (int)floor(b->tokens);
	st->reset_s = (long long)ceil((rl->burst - b->tokens) / rl->rate);
	st->retry_after_s = allowed ? 0 : (long long)ceil((1.0 - b->tokens) / rl->rate);
	if (st->retry_after_s < 1 && !allowed)
		st->retry_after_s = 1;
	pthread_mutex_unlock(&rl->lock);
	return allowed;
}

bool ratelimit_peek(struct ratelimit *rl, const char *key, double now, struct ratelimit_state *st)
{
	struct ratelimit_bucket *b;
	double tokens;
	bool allowed;

	st->limit = (int)rl->burst;
	st->remaining = st->limit;
	st->reset_s = 0;
	st->retry_after_s = 0;
	if (rl->rate <= 0)
		return true;
	pthread_mutex_lock(&rl->lock);
	for (b = rl->slots[ratelimit_hash(key)]; b != NULL && strncmp(b->key, key, RATELIMIT_KEY_MAX - 1) != 0;
	     b = b->next)
		;
	tokens = b == NULL ? rl->burst : fmin(rl->burst, b->tokens + (now - b->at) * rl->rate);
	pthread_mutex_unlock(&rl->lock);
	allowed = tokens >= 1.0;
	st->remaining = (int)floor(tokens);
	st->reset_s = (long long)ceil((rl->burst - tokens) / rl->rate);
	if (!allowed) {
		st->retry_after_s = (long long)ceil((1.0 - tokens) / rl->rate);
		if (st->retry_after_s < 1)
			st->retry_after_s = 1;
	}
	return allowed;
}

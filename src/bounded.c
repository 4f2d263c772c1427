/* bounded.c - runs a function on a thread of its own and waits for it, at most so long. */
#include "bounded.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/*
 * Shared by the waiter and the thread, on the heap: a waiter that gives up
 * returns, and its stack frame is gone, while the thread still has to say
 * it is done. Whoever lets go last frees it.
 */
struct bounded {
	pthread_mutex_t lock;
	pthread_cond_t done_cv;    /* on CLOCK_MONOTONIC */
	bool done;
	int refs;                  /* the waiter's and the thread's */
	void (*fn)(void *);
	void *arg;
};

/* Drops one reference; frees b with the last. */
static void bounded_release(struct bounded *b)
{
	int left;

	pthread_mutex_lock(&b->lock);
	left = --b->refs;
	pthread_mutex_unlock(&b->lock);
	if (left > 0)
		return;
	pthread_cond_destroy(&b->done_cv);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static void *bounded_main(void *arg)
{
	struct bounded *b = arg;

	b->fn(b->arg);
	pthread_mutex_lock(&b->lock);
	b->done = true;
	pthread_cond_signal(&b->done_cv);
	pthread_mutex_unlock(&b->lock);
	bounded_release(b);
	return NULL;
}

bool bounded_run(void (*fn)(void *), void *arg, long long timeout_ms)
{
	struct bounded *b = calloc(1, sizeof(*b));
	pthread_condattr_t attr;
	struct timespec at;
	pthread_t thread;
	bool done = true;

	if (b == NULL) {
		fn(arg);
		return true;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&b->done_cv, &attr);
	pthread_condattr_destroy(&attr);
	b->refs = 2;
	b->fn = fn;
	b->arg = arg;
	if (pthread_create(&thread, NULL, bounded_main, b) != 0) {
		b->refs = 1;
		fn(arg);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_sec += timeout_ms / 1000;
	at.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->lock);
	while (!b->done && pthread_cond_timedwait(&b->done_cv, &b->lock, &at) == 0)
		;
	done = b->done;
	pthread_mutex_unlock(&b->lock);
	if (done)
		pthread_join(thread, NULL);
	else
		pthread_detach(thread);   /* it frees b when fn returns */
out:
	bounded_release(b);
	return done;
}

/* connlimit.c - open connections counted per client address, with a cap. */
#include "connlimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CONNLIMIT_SLOTS 1024
#define CONNLIMIT_ADDR_MAX 48

/* One address with connections open; removed when its count drops to 0. */
struct connlimit_entry {
	struct connlimit_entry *next;
	char addr[CONNLIMIT_ADDR_MAX];
	int count;
};

struct connlimit {
	pthread_mutex_t lock;
	int max;
	struct connlimit_entry *slots[CONNLIMIT_SLOTS];
};

struct connlimit *connlimit_create(int max)
{
	struct connlimit *cl = calloc(1, sizeof(*cl));

	if (cl == NULL)
		return NULL;
	pthread_mutex_init(&cl->lock, NULL);
	cl->max = max;
	return cl;
}

void connlimit_destroy(struct connlimit *cl)
{
	struct connlimit_entry *e, *next;
	size_t i;

	if (cl == NULL)
		return;
	for (i = 0; i < CONNLIMIT_SLOTS; i++) {
		for (e = cl->slots[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

static size_t connlimit_hash(const char *addr)
{
	size_t h = 5381;

	while (*addr)
		h = h * 33 + (unsigned char)*addr++;
	return h % CONNLIMIT_SLOTS;
}

/* The entry of addr in its slot, with where it hangs (for unlinking); NULL when absent. Lock held. */
static struct connlimit_entry *connlimit_find(struct connlimit *cl, const char *addr,
					      struct connlimit_entry ***at)
{
	struct connlimit_entry **pp = &cl->slots[connlimit_hash(addr)];

	while (*pp != NULL && strncmp((*pp)->addr, addr, CONNLIMIT_ADDR_MAX - 1) != 0)
		pp = &(*pp)->next;
	*at = pp;
	return *pp;
}

bool connlimit_enter(struct connlimit *cl, const char *addr)
{
	struct connlimit_entry **at, *e;
	bool ok = true;

	if (cl->max <= 0)
		return true;
	pthread_mutex_lock(&cl->lock);
	e = connlimit_find(cl, addr, &at);
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			goto out;   /* fail open: refusing everyone would be worse */
		strncpy(e->addr, addr, CONNLIMIT_ADDR_MAX - 1);
		*at = e;
	}
	if (e->count >= cl->max)
		ok = false;
	else
		e->count++;
out:
	pthread_mutex_unlock(&cl->lock);
	return ok;
}

void connlimit_leave(struct connlimit *cl, const char *addr)
{
	struct connlimit_entry **at, *e;

	if (cl->max <= 0)
		return;
	pthread_mutex_lock(&cl->lock);
	e = connlimit_find(cl, addr, &at);
	if (e != NULL && --e->count <= 0) {
		*at = e->next;
		free(e);
	}
	pthread_mutex_unlock(&cl->lock);
}

int connlimit_count(struct connlimit *cl, const char *addr)
{
	struct connlimit_entry **at, *e;
	int n;

	pthread_mutex_lock(&cl->lock);
	e = connlimit_find(cl, addr, &at);
	n = e != NULL ? e->count : 0;
	pthread_mutex_unlock(&cl->lock);
	return n;
}

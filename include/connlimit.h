/* connlimit.h - open connections counted per client address, with a cap. */
#ifndef PAYMENTS_CONNLIMIT_H
#define PAYMENTS_CONNLIMIT_H

#include <stdbool.h>

struct connlimit;

/*
 * Creates a counter that lets each address hold at most max connections
 * at once (0: no cap, nothing is counted). Returns NULL when out of memory.
 */
struct connlimit *connlimit_create(int max);
void connlimit_destroy(struct connlimit *cl);

/*
 * Counts a new connection of addr. Returns true when it may stay (then
 * connlimit_leave must follow when it closes), false when addr already
 * holds the maximum (nothing counted). Out of memory lets it stay
 * uncounted (returns true; the matching leave is harmless). Thread-safe.
 */
bool connlimit_enter(struct connlimit *cl, const char *addr);

/* Forgets one connection of addr. Thread-safe. */
void connlimit_leave(struct connlimit *cl, const char *addr);

/* Connections addr holds now (for tests and logs). */
int connlimit_count(struct connlimit *cl, const char *addr);

#endif

/* bounded.h - runs a function on a thread of its own and waits for it, at most so long. */
#ifndef PAYMENTS_BOUNDED_H
#define PAYMENTS_BOUNDED_H

#include <stdbool.h>

/*
 * Runs fn(arg) on a new thread and waits at most timeout_ms for it to
 * return. Returns true when it did (the thread is joined), false when the
 * wait timed out: the thread then runs on, detached, and touches nothing of
 * the caller's when it ends (its state is its own), so the caller may
 * return at once; arg must stay valid until fn is done. When no thread can
 * be started, fn runs on the caller's thread and true is returned.
 */
bool bounded_run(void (*fn)(void *), void *arg, long long timeout_ms);

#endif

/* fuzz_common.h - what every libFuzzer target shares: the entry points, invariant checks and C strings. */
#ifndef PAYMENTS_FUZZ_COMMON_H
#define PAYMENTS_FUZZ_COMMON_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer calls these; declared here so -Wmissing-prototypes stays quiet. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * Stops the run with a report when an invariant does not hold. abort()
 * makes libFuzzer save the input as a crash-* artifact, exactly like a
 * sanitizer report does. The coverage build (make fuzz-coverage) only
 * reports and goes on, so one known bug does not hide the rest of the corpus.
 */
#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(#cond, __FILE__, __LINE__))

#ifdef FUZZ_COVERAGE
static inline void fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "==fuzz== invariant broken at %s:%d: %s\n", file, line, what);
}
#else
__attribute__((noreturn)) static inline void fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "\n==fuzz== invariant broken at %s:%d: %s\n", file, line, what);
	abort();
}
#endif

/*
 * Returns a new NUL-terminated copy of size bytes of data (the caller frees
 * it with free()). Embedded NULs stay, so C-string parsers see only the
 * part before the first one, as they would behind civetweb or getenv.
 */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * civetweb runs every handler on a worker thread with a small stack: 100 KiB
 * (102400 bytes) with Debian's libcivetweb1, whose workers' stacks lie
 * 104 KiB apart in gdb, guard page included. civetweb's own frames take about
 * 12 KiB of it before the handler runs (the server overflows at 995 nested
 * '[', a 100 KiB thread here at 1125), so a target gets 100 - 16 KiB.
 * Whatever a handler calls must fit in that, recursion included (jansson
 * parses, dumps and frees nested values recursively), so the targets that
 * stand for a handler run their input there: a stack overflow is then a
 * crash here too, as it is in the server.
 */
#define FUZZ_WORKER_STACK (102400 - 16 * 1024)

struct fuzz_input {
	void (*fn)(const uint8_t *data, size_t size);
	const uint8_t *data;
	size_t size;
};

static inline void *fuzz_input_run(void *arg)
{
	const struct fuzz_input *in = arg;

	in->fn(in->data, in->size);
	return NULL;
}

/*
 * Runs fn(data, size) on a new thread with a worker's stack and waits for it.
 * The coverage build runs it in place, so deep inputs do not end the run.
 */
static inline void fuzz_on_worker_stack(void (*fn)(const uint8_t *, size_t), const uint8_t *data,
					size_t size)
{
	struct fuzz_input in = { fn, data, size };
	pthread_attr_t attr;
	pthread_t t;

#ifdef FUZZ_COVERAGE
	(void)attr;
	(void)t;
	fn(data, size);
	return;
#endif
	FUZZ_CHECK(pthread_attr_init(&attr) == 0);
	FUZZ_CHECK(pthread_attr_setstacksize(&attr, FUZZ_WORKER_STACK) == 0);
	FUZZ_CHECK(pthread_create(&t, &attr, fuzz_input_run, &in) == 0);
	FUZZ_CHECK(pthread_join(t, NULL) == 0);
	pthread_attr_destroy(&attr);
}

/* Splits s in place at the first c: returns the text after it, or NULL when there is none. */
static inline char *fuzz_split(char *s, char c)
{
	char *p = strchr(s, c);

	if (p == NULL)
		return NULL;
	*p = '\0';
	return p + 1;
}

/* True for [0-9A-Za-z], written out here so the checks do not trust the code under test. */
static inline int fuzz_is_base62(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

#endif

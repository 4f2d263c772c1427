/* fnv.h - FNV-1a, the string hash that picks a slot in the in-process caches (keycache, replaycache). */
#ifndef PAYMENTS_FNV_H
#define PAYMENTS_FNV_H

#include <stddef.h>

#define FNV_OFFSET 2166136261u

/* h (FNV_OFFSET to start) carried over the n bytes at p. */
static inline unsigned fnv_hash(unsigned h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

#endif

/* ids.c - random, unguessable object ids and request ids (libsodium). */
#include "ids.h"

#include <string.h>

#include <sodium.h>

static const char ids_alphabet[] =
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void ids_random_base62(char *out, size_t n)
{
	size_t i;

	/* randombytes_uniform avoids modulo bias. */
	for (i = 0; i < n; i++)
		out[i] = ids_alphabet[randombytes_uniform(62)];
	out[n] = '\0';
}

void ids_generate(char *out, size_t outlen, const char *prefix)
{
	size_t plen = strlen(prefix);

	if (outlen < plen + IDS_RANDOM_CHARS + 1) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	memcpy(out, prefix, plen);
	ids_random_base62(out + plen, IDS_RANDOM_CHARS);
}

static bool ids_is_base62(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool ids_valid(const char *id, const char *prefix)
{
	size_t plen = strlen(prefix), i;

	if (id == NULL || strncmp(id, prefix, plen) != 0 || strlen(id) != plen + IDS_RANDOM_CHARS)
		return false;
	for (i = plen; id[i] != '\0'; i++) {
		if (!ids_is_base62(id[i]))
			return false;
	}
	return true;
}

bool ids_request_id_sane(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (i >= IDS_REQUEST_ID_MAX)
			return false;
		if (!ids_is_base62(c) && c != '.' && c != '_' && c != ':' && c != '-')
			return false;
	}
	return true;
}

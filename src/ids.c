/* ids.c - random, unguessable object ids and request ids (libsodium). */
#include "ids.h"

#include <string.h>

#include <sodium.h>

static const char ids_alphabet[] =
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void ids_random_base62(char *out, size_t n)
{
	unsigned char buf[64];
	size_t i = 0, j = sizeof(buf);

	/*
	 * One draw from the kernel per 64 bytes rather than one per character.
	 * Bytes of 248 and above are skipped: 248 = 4 * 62, so the rest map onto
	 * the alphabet without modulo bias.
	 */
	while (i < n) {
		if (j == sizeof(buf)) {
			randombytes_buf(buf, sizeof(buf));
			j = 0;
		}
		if (buf[j] < 248)
			out[i++] = ids_alphabet[buf[j] % 62];
		j++;
	}
	out[n] = '\0';
	sodium_memzero(buf, sizeof(buf));   /* the unused bytes were key material too */
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

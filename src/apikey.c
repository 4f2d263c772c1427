/* apikey.c - secret API keys: format, generation and hashing (libsodium). */
#include "apikey.h"

#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "err.h"
#include "ids.h"

void apikey_generate(char *key)
{
	size_t plen = sizeof(APIKEY_PREFIX) - 1;

	memcpy(key, APIKEY_PREFIX, plen);
	ids_random_base62(key + plen, APIKEY_ID_CHARS + APIKEY_SECRET_CHARS);
}

static bool apikey_is_base62(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int apikey_parse(const char *key, char *id)
{
	size_t plen = sizeof(APIKEY_PREFIX) - 1, i;

	if (key == NULL || strlen(key) != APIKEY_LEN || strncmp(key, APIKEY_PREFIX, plen) != 0)
		return PAY_EAUTH_INVALID;
	for (i = plen; i < APIKEY_LEN; i++) {
		if (!apikey_is_base62(key[i]))
			return PAY_EAUTH_INVALID;
	}
	memcpy(id, key + plen, APIKEY_ID_CHARS);
	id[APIKEY_ID_CHARS] = '\0';
	return PAY_OK;
}

int apikey_parse_public(const char *name, char *id)
{
	size_t plen = sizeof(APIKEY_PREFIX) - 1, i;

	if (name != NULL && strncmp(name, APIKEY_PREFIX, plen) == 0)
		name += plen;
	if (name == NULL || strlen(name) != APIKEY_ID_CHARS)
		return PAY_EAUTH_INVALID;
	for (i = 0; i < APIKEY_ID_CHARS; i++) {
		if (!apikey_is_base62(name[i]))
			return PAY_EAUTH_INVALID;
	}
	memcpy(id, name, APIKEY_ID_CHARS + 1);
	return PAY_OK;
}

const char *apikey_from_bearer(const char *header)
{
	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	header += 7;
	while (*header == ' ')
		header++;
	return header;
}

void apikey_hash(const char *key, unsigned char *out)
{
	crypto_generichash(out, APIKEY_HASH_BYTES, (const unsigned char *)key, strlen(key), NULL, 0);
}

bool apikey_hash_equal(const unsigned char *a, const unsigned char *b)
{
	return sodium_memcmp(a, b, APIKEY_HASH_BYTES) == 0;
}

bool apikey_user_valid(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0' || strlen(name) > APIKEY_USER_MAX)
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];

		if (!apikey_is_base62(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

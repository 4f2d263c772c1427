/* canon.c - canonical JSON and request fingerprints (jansson, libsodium). */
#include "canon.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"

char *canon_dump(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
}

int canon_fingerprint(const char *method, const char *route, const json_t *body,
		      unsigned char out[CANON_FINGERPRINT_BYTES])
{
	crypto_hash_sha256_state st;
	char *text = NULL;
	int rc = PAY_ENOMEM;

	text = canon_dump(body);
	if (text == NULL)
		goto out;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)method, strlen(method));
	crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)route, strlen(route));
	crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)text, strlen(text));
	crypto_hash_sha256_final(&st, out);
	rc = PAY_OK;
out:
	free(text);
	return rc;
}

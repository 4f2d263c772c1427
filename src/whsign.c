/* whsign.c - Standard Webhooks signing secrets and signatures (libsodium). */
#include "whsign.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "err.h"

void whsign_secret_generate(char *out)
{
	unsigned char key[WHSIGN_KEY_BYTES];
	size_t plen = sizeof(WHSIGN_PREFIX) - 1;

	randombytes_buf(key, sizeof(key));
	memcpy(out, WHSIGN_PREFIX, plen);
	sodium_bin2base64(out + plen, WHSIGN_SECRET_MAX - plen, key, sizeof(key),
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(key, sizeof(key));
}

int whsign_secret_decode(const char *secret, unsigned char *key, size_t *len)
{
	size_t plen = sizeof(WHSIGN_PREFIX) - 1;
	const char *b64;

	if (secret == NULL || strncmp(secret, WHSIGN_PREFIX, plen) != 0)
		return PAY_EPARAM_INVALID;
	b64 = secret + plen;
	/* Only the base64 alphabet: libsodium would stop early at other bytes. */
	if (b64[0] == '\0' || strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				  "0123456789+/=") != strlen(b64))
		return PAY_EPARAM_INVALID;
	if (sodium_base642bin(key, 64, b64, strlen(b64), NULL, len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || *len == 0)
		return PAY_EPARAM_INVALID;
	return PAY_OK;
}

int whsign_sign(const char *secret, const char *msg_id, long long timestamp, const char *body,
		size_t body_len, char *out)
{
	crypto_auth_hmacsha256_state st;
	unsigned char key[64], mac[crypto_auth_hmacsha256_BYTES];
	char ts[24];
	size_t klen = 0;
	int rc;

	rc = whsign_secret_decode(secret, key, &klen);
	if (rc != PAY_OK)
		goto out;
	snprintf(ts, sizeof(ts), "%lld", timestamp);
	crypto_auth_hmacsha256_init(&st, key, klen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg_id, strlen(msg_id));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "v1,", 3);
	sodium_bin2base64(out + 3, WHSIGN_SIGNATURE_MAX - 3, mac, sizeof(mac),
			  sodium_base64_VARIANT_ORIGINAL);
out:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(&st, sizeof(st));
	return rc;
}

int whsign_stripe_sign(const char *secret, long long timestamp, const char *body, size_t body_len,
		       char *out)
{
	crypto_auth_hmacsha256_state st;
	unsigned char key[64], mac[crypto_auth_hmacsha256_BYTES];
	char ts[24], hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	size_t klen = 0;
	int rc;

	/* Only well-formed secrets sign, the same ones whsign_sign accepts. */
	rc = whsign_secret_decode(secret, key, &klen);
	if (rc != PAY_OK)
		goto out;
	snprintf(ts, sizeof(ts), "%lld", timestamp);
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	snprintf(out, WHSIGN_STRIPE_SIGNATURE_MAX, "t=%s,v1=%s", ts, hex);
out:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(&st, sizeof(st));
	return rc;
}

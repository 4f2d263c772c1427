/* fuzz_whsign.c - libFuzzer target for webhook secrets and signatures (whsign_secret_decode, whsign_sign). */
#include <sodium.h>

#include "err.h"
#include "fuzz_common.h"
#include "whsign.h"

#define FUZZ_B64 sodium_base64_VARIANT_ORIGINAL

/* HMAC-SHA256 written out from SHA-256 (RFC 2104), so the check does not share code with whsign.c. */
static void fuzz_hmac(const unsigned char *key, size_t klen, const unsigned char *msg, size_t mlen,
		      unsigned char out[32])
{
	unsigned char k[64] = { 0 }, ipad[64], opad[64], inner[32];
	crypto_hash_sha256_state st;
	size_t i;

	if (klen > 64)
		crypto_hash_sha256(k, key, klen);
	else
		memcpy(k, key, klen);
	for (i = 0; i < 64; i++) {
		ipad[i] = k[i] ^ 0x36;
		opad[i] = k[i] ^ 0x5c;
	}
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, ipad, 64);
	crypto_hash_sha256_update(&st, msg, mlen);
	crypto_hash_sha256_final(&st, inner);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, opad, 64);
	crypto_hash_sha256_update(&st, inner, 32);
	crypto_hash_sha256_final(&st, out);
}

/* Checks one signature against the reference: "v1," + base64 of HMAC(key, id.ts.body). */
static void fuzz_check_signature(const char *sig, const unsigned char *key, size_t klen,
				 const char *msg_id, long long ts, const char *body, size_t blen)
{
	unsigned char mac[32];
	char want[WHSIGN_SIGNATURE_MAX], tstext[24];
	unsigned char *msg;
	size_t idlen = strlen(msg_id), tslen, mlen;

	tslen = (size_t)snprintf(tstext, sizeof(tstext), "%lld", ts);
	mlen = idlen + 1 + tslen + 1 + blen;
	msg = malloc(mlen + 1);
	FUZZ_CHECK(msg != NULL);
	memcpy(msg, msg_id, idlen);
	msg[idlen] = '.';
	memcpy(msg + idlen + 1, tstext, tslen);
	msg[idlen + 1 + tslen] = '.';
	if (blen > 0)
		memcpy(msg + idlen + tslen + 2, body, blen);
	fuzz_hmac(key, klen, msg, mlen, mac);
	memcpy(want, "v1,", 3);
	sodium_bin2base64(want + 3, sizeof(want) - 3, mac, sizeof(mac), FUZZ_B64);
	FUZZ_CHECK(strcmp(sig, want) == 0);
	FUZZ_CHECK(strlen(sig) == 3 + 44);
	free(msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char secret[WHSIGN_SECRET_MAX];
	unsigned char key[64];
	size_t len = 0;

	(void)argc;
	(void)argv;
	FUZZ_CHECK(sodium_init() >= 0);
	whsign_secret_generate(secret);
	FUZZ_CHECK(whsign_secret_decode(secret, key, &len) == PAY_OK && len == WHSIGN_KEY_BYTES);
	FUZZ_CHECK(whsign_secret_decode(NULL, key, &len) == PAY_EPARAM_INVALID);
	return 0;
}

/*
 * Input: 8 bytes of timestamp, then "secret\nmsg_id\nbody". The secret is
 * also rebuilt from the input's bytes as a valid one, so both the refusals
 * and the signing path get exercised.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char key[64], raw[64];
	char secret[WHSIGN_SECRET_MAX + 64], sig[WHSIGN_SIGNATURE_MAX + 8], *s, *msg_id, *body;
	long long ts = 0;
	size_t len = 0, klen, blen;
	int rc;

	if (size >= sizeof(ts)) {
		memcpy(&ts, data, sizeof(ts));
		data += sizeof(ts);
		size -= sizeof(ts);
	}
	s = fuzz_cstr(data, size);
	msg_id = fuzz_split(s, '\n');
	body = msg_id ? fuzz_split(msg_id, '\n') : NULL;
	if (msg_id == NULL)
		msg_id = "";
	if (body == NULL)
		body = "";
	blen = strlen(body);

	/* The secret as given: decoded iff it is whsec_ + canonical base64 of 1..64 bytes. */
	rc = whsign_secret_decode(s, key, &len);
	FUZZ_CHECK(rc == PAY_OK || rc == PAY_EPARAM_INVALID);
	if (rc == PAY_OK) {
		FUZZ_CHECK(len >= 1 && len <= 64);
		FUZZ_CHECK(strncmp(s, "whsec_", 6) == 0);
		sodium_bin2base64(secret, sizeof(secret), key, len, FUZZ_B64);
		FUZZ_CHECK(strcmp(secret, s + 6) == 0);
	}
	memset(sig, 0, sizeof(sig));
	FUZZ_CHECK(whsign_sign(s, msg_id, ts, body, blen, sig) == rc);
	if (rc == PAY_OK)
		fuzz_check_signature(sig, key, len, msg_id, ts, body, blen);

	/* A valid secret made of the input's bytes round-trips and signs. */
	klen = size == 0 ? 1 : size > 64 ? 64 : size;
	memset(raw, 0, sizeof(raw));
	memcpy(raw, data, size < klen ? size : klen);
	memcpy(secret, "whsec_", 6);
	sodium_bin2base64(secret + 6, sizeof(secret) - 6, raw, klen, FUZZ_B64);
	FUZZ_CHECK(whsign_secret_decode(secret, key, &len) == PAY_OK);
	FUZZ_CHECK(len == klen && memcmp(key, raw, klen) == 0);
	FUZZ_CHECK(whsign_sign(secret, msg_id, ts, body, blen, sig) == PAY_OK);
	fuzz_check_signature(sig, raw, klen, msg_id, ts, body, blen);
	free(s);
	return 0;
}

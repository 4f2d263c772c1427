/* test_whsign.c - unit tests of Standard Webhooks secrets and signatures (whsign.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "whsign.h"

/*
 * The test vector of the Standard Webhooks specification (and of the svix
 * libraries). The expected signature was checked independently with
 * Python's hmac: base64(HMAC-SHA256(b64decode(secret part), id.ts.body)).
 */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330LL
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static bool is_base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

static void test_whsign_sign_matches_standard_webhooks_vector(void **state)
{
	char sig[WHSIGN_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(whsign_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig),
			 PAY_OK);
	assert_string_equal(sig, VEC_SIG);
}

static void test_whsign_sign_uses_body_len_not_nul(void **state)
{
	static const char padded[] = VEC_BODY "trailing bytes that are not part of the body";
	char sig[WHSIGN_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(whsign_sign(VEC_SECRET, VEC_ID, VEC_TS, padded, strlen(VEC_BODY), sig),
			 PAY_OK);
	assert_string_equal(sig, VEC_SIG);
}

static void test_whsign_sign_changes_with_id_timestamp_body_and_key(void **state)
{
	char sig[WHSIGN_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(whsign_sign(VEC_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJeK", VEC_TS, VEC_BODY,
				     strlen(VEC_BODY), sig), PAY_OK);
	assert_string_not_equal(sig, VEC_SIG);
	assert_int_equal(whsign_sign(VEC_SECRET, VEC_ID, VEC_TS + 1, VEC_BODY, strlen(VEC_BODY), sig),
			 PAY_OK);
	assert_string_not_equal(sig, VEC_SIG);
	assert_int_equal(whsign_sign(VEC_SECRET, VEC_ID, VEC_TS, "{\"test\": 2432232315}",
				     strlen(VEC_BODY), sig), PAY_OK);
	assert_string_not_equal(sig, VEC_SIG);
	assert_int_equal(whsign_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx", VEC_ID, VEC_TS,
				     VEC_BODY, strlen(VEC_BODY), sig), PAY_OK);
	assert_string_not_equal(sig, VEC_SIG);
}

static void test_whsign_sign_accepts_empty_body(void **state)
{
	char a[WHSIGN_SIGNATURE_MAX], b[WHSIGN_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(whsign_sign(VEC_SECRET, VEC_ID, VEC_TS, "", 0, a), PAY_OK);
	assert_int_equal(strncmp(a, "v1,", 3), 0);
	assert_int_equal(strlen(a), 3 + 44);
	assert_int_equal(whsign_sign(VEC_SECRET, VEC_ID, VEC_TS, "x", 0, b), PAY_OK);
	assert_string_equal(a, b);
}

static void test_whsign_sign_refuses_bad_secret(void **state)
{
	char sig[WHSIGN_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(whsign_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", VEC_ID, VEC_TS, VEC_BODY,
				     strlen(VEC_BODY), sig), PAY_EPARAM_INVALID);
	assert_int_equal(whsign_sign("whsec_", VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig),
			 PAY_EPARAM_INVALID);
	assert_int_equal(whsign_sign(NULL, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig),
			 PAY_EPARAM_INVALID);
}

/* Stripe-Signature: keyed with the whole secret string, as stripe-node and stripe-python verify it. */
static void test_whsign_stripe_sign_matches_stripe_sdk_scheme(void **state)
{
	static const char body[] = "{\"a\":1}";
	char out[WHSIGN_STRIPE_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(whsign_stripe_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1614556800, body,
					    sizeof(body) - 1, out), PAY_OK);
	/* hmac.new(b"whsec_MfKQ...", b'1614556800.{"a":1}', sha256).hexdigest() */
	assert_string_equal(out, "t=1614556800,v1="
			    "94ca8da49695a77b9e45cf3ebb4f971422bde168808ea735c84046ec214b89ac");
}

static void test_whsign_stripe_sign_refuses_bad_secret(void **state)
{
	char out[WHSIGN_STRIPE_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(whsign_stripe_sign("sk_test_x", 1, "", 0, out), PAY_EPARAM_INVALID);
	assert_int_equal(whsign_stripe_sign(NULL, 1, "", 0, out), PAY_EPARAM_INVALID);
}

static void test_whsign_secret_generate_writes_prefix_and_base64_of_32_bytes(void **state)
{
	char secret[WHSIGN_SECRET_MAX];
	unsigned char key[64];
	size_t i, len = 0;

	(void)state;
	memset(secret, 'x', sizeof(secret));
	whsign_secret_generate(secret);
	assert_int_equal(strncmp(secret, "whsec_", 6), 0);
	/* 32 bytes are 44 base64 characters: 42 data characters, then one '=' of padding. */
	assert_int_equal(strlen(secret), 6 + 44);
	for (i = 6; i < 6 + 43; i++)
		assert_true(is_base64_char(secret[i]));
	assert_int_equal(secret[6 + 43], '=');
	assert_int_equal(whsign_secret_decode(secret, key, &len), PAY_OK);
	assert_int_equal(len, WHSIGN_KEY_BYTES);
}

static void test_whsign_secret_generate_gives_different_secrets(void **state)
{
	char a[WHSIGN_SECRET_MAX], b[WHSIGN_SECRET_MAX];

	(void)state;
	whsign_secret_generate(a);
	whsign_secret_generate(b);
	assert_string_not_equal(a, b);
}

static void test_whsign_secret_generated_signs_like_its_decoded_key(void **state)
{
	char secret[WHSIGN_SECRET_MAX], sig[WHSIGN_SIGNATURE_MAX], want[WHSIGN_SIGNATURE_MAX];
	unsigned char key[64], mac[crypto_auth_hmacsha256_BYTES];
	static const char msg[] = "evt_abc.1700000000.{\"a\":1}";
	crypto_auth_hmacsha256_state st;
	size_t len = 0;

	(void)state;
	whsign_secret_generate(secret);
	assert_int_equal(whsign_secret_decode(secret, key, &len), PAY_OK);
	assert_int_equal(len, 32);
	/* The expected value computed here straight from libsodium's HMAC. */
	crypto_auth_hmacsha256_init(&st, key, len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(want, "v1,", 3);
	sodium_bin2base64(want + 3, sizeof(want) - 3, mac, sizeof(mac),
			  sodium_base64_VARIANT_ORIGINAL);
	assert_int_equal(whsign_sign(secret, "evt_abc", 1700000000LL, "{\"a\":1}", 7, sig), PAY_OK);
	assert_string_equal(sig, want);
}

static void test_whsign_secret_decode_reads_vector_key(void **state)
{
	static const unsigned char want[] = {
		0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4,
		0x3c, 0x3f, 0x08, 0x2c, 0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d, 0xa4, 0xb0,
	};
	unsigned char key[64];
	size_t len = 0;

	(void)state;
	assert_int_equal(whsign_secret_decode(VEC_SECRET, key, &len), PAY_OK);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(key, want, sizeof(want));
}

static void test_whsign_secret_decode_accepts_64_byte_key(void **state)
{
	char secret[WHSIGN_SECRET_MAX];
	unsigned char raw[64], key[64];
	size_t len = 0;

	(void)state;
	randombytes_buf(raw, sizeof(raw));
	memcpy(secret, "whsec_", 6);
	sodium_bin2base64(secret + 6, sizeof(secret) - 6, raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
	assert_int_equal(whsign_secret_decode(secret, key, &len), PAY_OK);
	assert_int_equal(len, 64);
	assert_memory_equal(key, raw, 64);
}

static void test_whsign_secret_decode_refuses_key_over_64_bytes(void **state)
{
	char secret[WHSIGN_SECRET_MAX + 8];
	unsigned char raw[65], key[64 + 16];
	size_t len = 0;

	(void)state;
	memset(raw, 0xAB, sizeof(raw));
	memcpy(secret, "whsec_", 6);
	sodium_bin2base64(secret + 6, sizeof(secret) - 6, raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
	memset(key, 0, sizeof(key));
	assert_int_equal(whsign_secret_decode(secret, key, &len), PAY_EPARAM_INVALID);
	/* Nothing was written past the 64 bytes the contract promises. */
	for (len = 64; len < sizeof(key); len++)
		assert_int_equal(key[len], 0);
}

static void test_whsign_secret_decode_refuses_bad_secrets(void **state)
{
	static const char *const bad[] = {
		"",
		"whsec_",                                  /* no key at all */
		"whsec",                                   /* prefix cut short */
		"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  /* the prefix is case-sensitive */
		"wh_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",        /* no prefix */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",  /* not base64 */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw x",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_",  /* the URL-safe alphabet is not the spec's */
		"whsec_YWJjZA",                            /* base64 without its padding */
		"whsec_YWJjZA=",                           /* wrong padding */
	};
	unsigned char key[64];
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = 0;
		if (whsign_secret_decode(bad[i], key, &len) != PAY_EPARAM_INVALID)
			fail_msg("secret '%s' was accepted", bad[i]);
	}
	assert_int_equal(whsign_secret_decode(NULL, key, &len), PAY_EPARAM_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whsign_sign_matches_standard_webhooks_vector),
		cmocka_unit_test(test_whsign_sign_uses_body_len_not_nul),
		cmocka_unit_test(test_whsign_sign_changes_with_id_timestamp_body_and_key),
		cmocka_unit_test(test_whsign_sign_accepts_empty_body),
		cmocka_unit_test(test_whsign_sign_refuses_bad_secret),
		cmocka_unit_test(test_whsign_stripe_sign_matches_stripe_sdk_scheme),
		cmocka_unit_test(test_whsign_stripe_sign_refuses_bad_secret),
		cmocka_unit_test(test_whsign_secret_generate_writes_prefix_and_base64_of_32_bytes),
		cmocka_unit_test(test_whsign_secret_generate_gives_different_secrets),
		cmocka_unit_test(test_whsign_secret_generated_signs_like_its_decoded_key),
		cmocka_unit_test(test_whsign_secret_decode_reads_vector_key),
		cmocka_unit_test(test_whsign_secret_decode_accepts_64_byte_key),
		cmocka_unit_test(test_whsign_secret_decode_refuses_key_over_64_bytes),
		cmocka_unit_test(test_whsign_secret_decode_refuses_bad_secrets),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("whsign", tests, NULL, NULL);
}

/* test_whsign_regress.c - regression tests for a bug the fuzzers found in whsign.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "whsign.h"

/*
 * libsodium 1.0.18's sodium_base642bin takes bytes over 0x7F for base64
 * digits, so whsign_secret_decode accepted "whsec_s\xFF" "es" (and signed
 * with it) although that is no base64 at all. Secrets are made by the
 * server, so this is only reachable through a corrupted row, but the
 * contract says such a secret is refused. The fuzzer's input is
 * tests/fuzz/corpus/whsign/regress-non-ascii-secret.
 */
static void test_secret_decode_refuses_non_ascii_base64(void **state)
{
	static const char *const secrets[] = {
		"whsec_s\xFF" "es",
		"whsec_MfKQ9r8GKYq\xAA\x8E\x8D\xABwjUPD8ILPZIo2LaLaSw",
		"whsec_\xC3\xA9\xC3\xA9",
		NULL,
	};
	unsigned char key[64];
	char sig[WHSIGN_SIGNATURE_MAX];
	size_t len, i;

	(void)state;
	for (i = 0; secrets[i] != NULL; i++) {
		len = 0;
		if (whsign_secret_decode(secrets[i], key, &len) != PAY_EPARAM_INVALID)
			fail_msg("secret %zu was decoded into %zu bytes", i, len);
		assert_int_equal(whsign_sign(secrets[i], "msg_1", 1, "{}", 2, sig), PAY_EPARAM_INVALID);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_decode_refuses_non_ascii_base64),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("whsign_regress", tests, NULL, NULL);
}

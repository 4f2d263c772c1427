/* fuzz_headers.c - libFuzzer target for request headers: Idempotency-Key, Authorization and X-Request-Id. */
#include <strings.h>

#include <sodium.h>

#include "apikey.h"
#include "err.h"
#include "fuzz_common.h"
#include "idem.h"
#include "ids.h"

/* Idempotency-Key: 1..255 bytes of 0x20..0x7E. */
static int fuzz_idem_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > IDEM_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E)
			return 0;
	}
	return 1;
}

/* X-Request-Id: 1..128 of [A-Za-z0-9._:-]. */
static int fuzz_request_id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > IDS_REQUEST_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (!fuzz_is_base62(s[i]) && strchr("._:-", s[i]) == NULL)
			return 0;
	}
	return 1;
}

/* An API key: "sk_test_" and exactly 44 base62 characters. */
static int fuzz_key_ok(const char *s)
{
	size_t i;

	if (strlen(s) != APIKEY_LEN || strncmp(s, "sk_test_", 8) != 0)
		return 0;
	for (i = 8; i < APIKEY_LEN; i++) {
		if (!fuzz_is_base62(s[i]))
			return 0;
	}
	return 1;
}

static void fuzz_check_key(const char *key)
{
	char id[APIKEY_ID_CHARS + 1];
	unsigned char h1[APIKEY_HASH_BYTES], h2[APIKEY_HASH_BYTES];
	int rc;

	memset(id, 'x', sizeof(id));
	rc = apikey_parse(key, id);
	FUZZ_CHECK(rc == PAY_OK || rc == PAY_EAUTH_INVALID);
	FUZZ_CHECK((rc == PAY_OK) == fuzz_key_ok(key));
	if (rc != PAY_OK)
		return;
	/* The public id is the 12 characters after the prefix. */
	FUZZ_CHECK(id[APIKEY_ID_CHARS] == '\0' && memcmp(id, key + 8, APIKEY_ID_CHARS) == 0);
	apikey_hash(key, h1);
	apikey_hash(key, h2);
	FUZZ_CHECK(apikey_hash_equal(h1, h2));
}

static void fuzz_check_bearer(const char *header)
{
	const char *key = apikey_from_bearer(header);

	if (strncasecmp(header, "Bearer ", 7) != 0) {
		FUZZ_CHECK(key == NULL);
		return;
	}
	/* A pointer into header, after the scheme and every space that follows it. */
	FUZZ_CHECK(key != NULL && key >= header + 7 && key <= header + strlen(header));
	FUZZ_CHECK(*key != ' ');
	FUZZ_CHECK(strspn(header + 7, " ") == (size_t)(key - header - 7));
	fuzz_check_key(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char key[APIKEY_LEN + 1], header[APIKEY_LEN + 16], id[APIKEY_ID_CHARS + 1];

	(void)argc;
	(void)argv;
	FUZZ_CHECK(sodium_init() >= 0);
	/* A freshly made key goes through the whole header path. */
	apikey_generate(key);
	key[APIKEY_LEN] = '\0';
	snprintf(header, sizeof(header), "bearer   %s", key);
	FUZZ_CHECK(apikey_parse(apikey_from_bearer(header), id) == PAY_OK);
	FUZZ_CHECK(idem_key_check(NULL) == PAY_EIDEM_MISSING);
	FUZZ_CHECK(!ids_request_id_sane(NULL));
	FUZZ_CHECK(apikey_from_bearer(NULL) == NULL);
	FUZZ_CHECK(apikey_parse(NULL, id) == PAY_EAUTH_INVALID);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	int rc;

	/* Every header value goes through every parser: they must agree with their rules. */
	rc = idem_key_check(s);
	FUZZ_CHECK(rc == (fuzz_idem_ok(s) ? PAY_OK : PAY_EIDEM_INVALID));
	FUZZ_CHECK(ids_request_id_sane(s) == fuzz_request_id_ok(s));
	fuzz_check_bearer(s);
	fuzz_check_key(s);
	free(s);
	return 0;
}

/* fuzz_canon.c - libFuzzer target for canonical JSON and request fingerprints (canon.c). */
#include <jansson.h>
#include <sodium.h>

#include "body.h"
#include "canon.h"
#include "err.h"
#include "fuzz_common.h"

/* Parses text the way the server parses every body before fingerprinting it; NULL when refused. */
static json_t *fuzz_load(const char *text, size_t len)
{
	struct body_error err;
	json_t *v = NULL;

	return body_load(text, len, &v, &err) == PAY_OK ? v : NULL;
}

/*
 * True when text is compact ASCII: no control character or byte over 0x7F
 * (DEL needs no escape in JSON) and no white space outside strings.
 */
static int fuzz_compact_ascii(const char *text)
{
	int in_string = 0;
	const char *p;

	for (p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c > 0x7F)
			return 0;
		if (in_string && c == '\\')
			p++;   /* an escape: the next character is part of it */
		else if (c == '"')
			in_string = !in_string;
		else if (!in_string && c == ' ')
			return 0;
	}
	return !in_string;
}

/* True when the keys of every object in v are in strictly increasing byte order (v came from canonical text). */
static int fuzz_sorted(const json_t *v)
{
	const char *key, *prev = NULL;
	json_t *item;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, item) {
			if ((prev != NULL && strcmp(prev, key) >= 0) || !fuzz_sorted(item))
				return 0;
			prev = key;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			if (!fuzz_sorted(item))
				return 0;
		}
	}
	return 1;
}

static void fuzz_one(const uint8_t *data, size_t size)
{
	unsigned char fp1[CANON_FINGERPRINT_BYTES], fp2[CANON_FINGERPRINT_BYTES];
	unsigned char want[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;
	char *d1 = NULL, *d2 = NULL, *pretty = NULL, *d3 = NULL;
	json_t *v, *v2 = NULL, *v3 = NULL;

	v = fuzz_load((const char *)data, size);
	if (v == NULL)
		return;

	d1 = canon_dump(v);
	FUZZ_CHECK(d1 != NULL);
	FUZZ_CHECK(fuzz_compact_ascii(d1));

	/* Parsing the canonical text gives an equal value whose canonical text is the same: a fixed point. */
	v2 = fuzz_load(d1, strlen(d1));
	FUZZ_CHECK(v2 != NULL);
	FUZZ_CHECK(json_equal(v, v2));
	FUZZ_CHECK(fuzz_sorted(v2));
	d2 = canon_dump(v2);
	FUZZ_CHECK(d2 != NULL && strcmp(d1, d2) == 0);

	/* White space and indentation do not change the canonical text. */
	pretty = json_dumps(v, JSON_INDENT(2));
	FUZZ_CHECK(pretty != NULL);
	v3 = fuzz_load(pretty, strlen(pretty));
	FUZZ_CHECK(v3 != NULL);
	d3 = canon_dump(v3);
	FUZZ_CHECK(d3 != NULL && strcmp(d1, d3) == 0);

	/* The fingerprint is SHA-256 of "method\nroute\n" + canonical text, and agrees across spellings. */
	FUZZ_CHECK(canon_fingerprint("POST", "/v1/charges", v, fp1) == PAY_OK);
	FUZZ_CHECK(canon_fingerprint("POST", "/v1/charges", v3, fp2) == PAY_OK);
	FUZZ_CHECK(memcmp(fp1, fp2, sizeof(fp1)) == 0);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)"POST\n/v1/charges\n", 17);
	crypto_hash_sha256_update(&st, (const unsigned char *)d1, strlen(d1));
	crypto_hash_sha256_final(&st, want);
	FUZZ_CHECK(memcmp(fp1, want, sizeof(want)) == 0);
	/* The route is part of it: a refund body never fingerprints like a charge body. */
	FUZZ_CHECK(canon_fingerprint("POST", "/v1/refunds", v, fp2) == PAY_OK);
	FUZZ_CHECK(memcmp(fp1, fp2, sizeof(fp1)) != 0);

	free(d1);
	free(d2);
	free(d3);
	free(pretty);
	json_decref(v);
	json_decref(v2);
	json_decref(v3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_on_worker_stack(fuzz_one, data, size);
	return 0;
}

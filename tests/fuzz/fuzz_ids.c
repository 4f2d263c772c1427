/* fuzz_ids.c - libFuzzer target for object ids as clients send them: path ids and list cursors (ids_valid). */
#include <sodium.h>

#include "fuzz_common.h"
#include "ids.h"

static const char *const fuzz_prefixes[] = { "ch_", "re_", "evt_", "we_", "wd_", "req_", NULL };

/* prefix followed by exactly IDS_RANDOM_CHARS base62 characters. */
static int fuzz_id_ok(const char *id, const char *prefix)
{
	size_t i, plen = strlen(prefix);

	if (strlen(id) != plen + IDS_RANDOM_CHARS || strncmp(id, prefix, plen) != 0)
		return 0;
	for (i = plen; id[i] != '\0'; i++) {
		if (!fuzz_is_base62(id[i]))
			return 0;
	}
	return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char id[IDS_MAX], small[8];
	size_t i;

	(void)argc;
	(void)argv;
	FUZZ_CHECK(sodium_init() >= 0);
	/* Generated ids are valid for their own prefix only, and request ids are sane. */
	for (i = 0; fuzz_prefixes[i] != NULL; i++) {
		ids_generate(id, sizeof(id), fuzz_prefixes[i]);
		FUZZ_CHECK(ids_valid(id, fuzz_prefixes[i]));
		FUZZ_CHECK(ids_request_id_sane(id));
		FUZZ_CHECK(!ids_valid(id, fuzz_prefixes[(i + 1) % 6]));
	}
	ids_generate(small, sizeof(small), "ch_");
	FUZZ_CHECK(small[0] == '\0');   /* too small a buffer gets an empty string, not an overflow */
	FUZZ_CHECK(!ids_valid(NULL, "ch_"));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char alphabet[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	char *s = fuzz_cstr(data, size), built[IDS_MAX];
	size_t i, j;

	for (i = 0; fuzz_prefixes[i] != NULL; i++) {
		FUZZ_CHECK(ids_valid(s, fuzz_prefixes[i]) == fuzz_id_ok(s, fuzz_prefixes[i]));
		/* A valid id is valid as a request id too, so it round-trips through X-Request-Id. */
		if (ids_valid(s, fuzz_prefixes[i]))
			FUZZ_CHECK(ids_request_id_sane(s));
	}
	/* Any 24 base62 characters after a prefix make a valid id. */
	for (i = 0; fuzz_prefixes[i] != NULL; i++) {
		size_t plen = strlen(fuzz_prefixes[i]);

		memcpy(built, fuzz_prefixes[i], plen);
		for (j = 0; j < IDS_RANDOM_CHARS; j++)
			built[plen + j] = alphabet[(j < size ? data[j] : j) % 62];
		built[plen + IDS_RANDOM_CHARS] = '\0';
		FUZZ_CHECK(ids_valid(built, fuzz_prefixes[i]));
		/* One character more or less is not. */
		built[plen + IDS_RANDOM_CHARS - 1] = '\0';
		FUZZ_CHECK(!ids_valid(built, fuzz_prefixes[i]));
	}
	free(s);
	return 0;
}

/* fuzz_migfile.c - libFuzzer target for migration text and names (migfile_normalise, migfile_count_statements, migfile_parse_name, migfile_parse_repeatable_name). */
#include "err.h"
#include "fuzz_common.h"
#include "migfile.h"

/* The normalisation rules: one leading UTF-8 BOM dropped, every CR that precedes an LF dropped. */
static size_t fuzz_normalise(const char *in, size_t len, char *out)
{
	size_t i = 0, o = 0;

	if (len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	for (; i < len; i++) {
		if (!(in[i] == '\r' && i + 1 < len && in[i + 1] == '\n'))
			out[o++] = in[i];
	}
	out[o] = '\0';
	return o;
}

/* "NNNN_name.sql": 4 to 9 digits (not all zero), '_', 1..199 of [a-z0-9_], ".sql". */
static int fuzz_name_ok(const char *s, int *version)
{
	size_t len = strlen(s), d = strspn(s, "0123456789"), n;
	long v = 0;
	size_t i;

	if (d < 4 || d > 9 || s[d] != '_' || len < d + 1 + 4 || strcmp(s + len - 4, ".sql") != 0)
		return 0;
	n = len - 4 - d - 1;
	if (n == 0 || n >= MIGFILE_NAME_MAX || strspn(s + d + 1, "abcdefghijklmnopqrstuvwxyz0123456789_") < n)
		return 0;
	for (i = 0; i < d; i++)
		v = v * 10 + (s[i] - '0');
	*version = (int)v;
	return v > 0;
}

/* "R__name.sql": 1..199 of [a-z0-9_] between "R__" and ".sql". */
static int fuzz_repeatable_ok(const char *s)
{
	size_t len = strlen(s), n;

	if (len < 8 || strncmp(s, "R__", 3) != 0 || strcmp(s + len - 4, ".sql") != 0)
		return 0;
	n = len - 7;
	return n < MIGFILE_NAME_MAX && strspn(s + 3, "abcdefghijklmnopqrstuvwxyz0123456789_") >= n;
}

static int fuzz_semicolons(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == ';';
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char prefix[] = "SELECT 1;\n";
	char *text = fuzz_cstr(data, size), *norm = fuzz_cstr(data, size), *want, *prefixed, *body;
	char name[MIGFILE_NAME_MAX];
	size_t n, wn;
	int count, version = 0, want_version = 0;

	want = malloc(size + 1);
	prefixed = malloc(sizeof(prefix) + size);
	FUZZ_CHECK(want != NULL && prefixed != NULL);

	/* Normalising: as the rules say, and NUL-terminated at the new length. */
	n = migfile_normalise(norm, size);
	wn = fuzz_normalise(text, size, want);
	FUZZ_CHECK(n == wn && n <= size && norm[n] == '\0' && memcmp(norm, want, n) == 0);

	/* Counting: never negative, never more than the semicolons plus a last statement. */
	count = migfile_count_statements(text);
	FUZZ_CHECK(count >= 0 && count <= fuzz_semicolons(text) + 1);
	/* CRLF and LF files count alike (the BOM is not SQL, so compare without it). */
	body = strncmp(text, "\xEF\xBB\xBF", 3) == 0 ? text + 3 : text;
	FUZZ_CHECK(migfile_count_statements(norm) == migfile_count_statements(body));
	/* A complete statement in front adds exactly one. */
	memcpy(prefixed, prefix, sizeof(prefix) - 1);
	memcpy(prefixed + sizeof(prefix) - 1, text, strlen(text) + 1);
	FUZZ_CHECK(migfile_count_statements(prefixed) == count + 1);
	(void)migfile_is_no_transaction(text);

	/* The same bytes as a file name. */
	if (strlen(text) < 4 * MIGFILE_NAME_MAX) {
		int rc = migfile_parse_name(text, &version, name);

		FUZZ_CHECK((rc == PAY_OK) == fuzz_name_ok(text, &want_version));
		FUZZ_CHECK(rc != PAY_OK || version == want_version);
		/* As a repeatable's name: never both kinds, and the name is what lies between. */
		rc = migfile_parse_repeatable_name(text, name);
		FUZZ_CHECK((rc == PAY_OK) == fuzz_repeatable_ok(text));
		FUZZ_CHECK(rc != PAY_OK || (strlen(name) == strlen(text) - 7 &&
					    memcmp(name, text + 3, strlen(name)) == 0 &&
					    migfile_parse_name(text, &version, name) != PAY_OK));
	}
	free(text);
	free(norm);
	free(want);
	free(prefixed);
	return 0;
}

/* fuzz_query.c - libFuzzer target for query strings: http_query_param and the list parameters it feeds. */
#include <ctype.h>
#include <strings.h>

#include <civetweb.h>

#include "fuzz_common.h"
#include "http.h"
#include "ids.h"

/* The parameters the lists and the dead-letter API read, with the buffer sizes they use. */
static const struct {
	const char *name;
	size_t buflen;
	const char *prefix;   /* an id parameter's prefix, or NULL */
} fuzz_params[] = {
	{ "limit", 16, NULL },
	{ "limit", 8, NULL },
	{ "starting_after", IDS_MAX, "ch_" },
	{ "ending_before", IDS_MAX, "re_" },
	{ "created[gte]", 16, NULL },
	{ "created%5Blt%5D", 16, NULL },
	{ "charge", 64, "ch_" },
	{ "type", 64, NULL },
	{ "status", 16, NULL },
	{ "event", IDS_MAX, "evt_" },
	{ "webhook_endpoint", IDS_MAX, "we_" },
};

static int fuzz_hex(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/*
 * The documented meaning of a form-encoded query: the first name=value pair
 * whose name matches (case-insensitively) at the start or after '&'; the
 * value runs to the next '&' and is decoded (%XX, '+' as space). Returns the
 * decoded length into out (at least size of the raw value), or -1 when absent.
 */
static long fuzz_reference(const char *q, const char *name, char *out)
{
	size_t nlen = strlen(name), qlen = strlen(q), i, j = 0;
	const char *p, *end;

	for (p = q; p + nlen < q + qlen; p++) {
		if ((p == q || p[-1] == '&') && p[nlen] == '=' && strncasecmp(p, name, nlen) == 0)
			break;
	}
	if (p + nlen >= q + qlen)
		return -1;
	p += nlen + 1;
	end = strchr(p, '&');
	if (end == NULL)
		end = q + qlen;
	for (i = 0; p + i < end; i++) {
		if (p[i] == '%' && p + i + 2 < end && isxdigit((unsigned char)p[i + 1]) &&
		    isxdigit((unsigned char)p[i + 2])) {
			out[j++] = (char)(fuzz_hex((unsigned char)p[i + 1]) * 16 +
					  fuzz_hex((unsigned char)p[i + 2]));
			i += 2;
		} else {
			out[j++] = p[i] == '+' ? ' ' : p[i];
		}
	}
	out[j] = '\0';
	return (long)j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_request_info ri;
	struct http_req r;
	char *q = fuzz_cstr(data, size), *want, buf[128];
	long ref;
	size_t i;
	int n;

	want = malloc(size + 1);
	FUZZ_CHECK(want != NULL);
	memset(&ri, 0, sizeof(ri));
	memset(&r, 0, sizeof(r));
	ri.query_string = q;
	r.ri = &ri;
	for (i = 0; i < sizeof(fuzz_params) / sizeof(fuzz_params[0]); i++) {
		memset(buf, 'Z', sizeof(buf));
		n = http_query_param(&r, fuzz_params[i].name, buf, fuzz_params[i].buflen);
		ref = fuzz_reference(q, fuzz_params[i].name, want);
		if (ref < 0) {
			FUZZ_CHECK(n == -1);
			continue;
		}
		if ((size_t)ref >= fuzz_params[i].buflen) {
			/* Too long for the buffer: refused, never truncated into a different value. */
			FUZZ_CHECK(n == -2);
			continue;
		}
		FUZZ_CHECK(n == ref);
		FUZZ_CHECK(memcmp(buf, want, (size_t)n + 1) == 0);
		if (fuzz_params[i].prefix != NULL && ids_valid(buf, fuzz_params[i].prefix))
			FUZZ_CHECK(strlen(buf) == strlen(fuzz_params[i].prefix) + IDS_RANDOM_CHARS);
	}
	/* No query string at all: every parameter is absent. */
	ri.query_string = NULL;
	FUZZ_CHECK(http_query_param(&r, "limit", buf, 16) == -1);
	free(want);
	free(q);
	return 0;
}

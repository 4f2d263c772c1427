/* fuzz_clientaddr.c - libFuzzer target for X-Forwarded-For behind trusted proxies (clientaddr_find). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "clientaddr.h"
#include "fuzz_common.h"

/* True when s is the canonical text of an IPv4 or IPv6 address. */
static int fuzz_canonical_ip(const char *s)
{
	unsigned char a[16];
	char back[CLIENTADDR_MAX];

	if (inet_pton(AF_INET, s, a) == 1)
		return inet_ntop(AF_INET, a, back, sizeof(back)) != NULL && strcmp(back, s) == 0;
	if (inet_pton(AF_INET6, s, a) == 1)
		return inet_ntop(AF_INET6, a, back, sizeof(back)) != NULL && strcmp(back, s) == 0;
	return 0;
}

/*
 * The input is "trusted\nxff": the trusted proxies and X-Forwarded-For.
 * Invariants: the client is the peer, or (behind a trusted peer only) a
 * canonical address that the header names; it always fits; the answer
 * is a function of the input.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const peers[] = { "10.0.0.1", "::1", "203.0.113.9" };
	char *s = fuzz_cstr(data, size), *xff = strchr(s, '\n');
	char out[CLIENTADDR_MAX + 8], again[CLIENTADDR_MAX + 8];
	size_t i;

	if (xff != NULL)
		*xff++ = '\0';
	for (i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
		memset(out, 'Z', sizeof(out));
		clientaddr_find(peers[i], xff, s, out);
		FUZZ_CHECK(strnlen(out, CLIENTADDR_MAX) < CLIENTADDR_MAX);
		if (xff == NULL || !clientaddr_trusted(s, peers[i]))
			FUZZ_CHECK(strcmp(out, peers[i]) == 0);
		else if (strcmp(out, peers[i]) != 0)
			FUZZ_CHECK(fuzz_canonical_ip(out));
		clientaddr_find(peers[i], xff, s, again);
		FUZZ_CHECK(strcmp(out, again) == 0);
	}
	free(s);
	return 0;
}

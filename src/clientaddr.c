/* clientaddr.c - who the client is: the peer address, or X-Forwarded-For behind trusted proxies. */
#include "clientaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/*
 * Parses the address in s[0..len) (surrounding spaces ignored) into its
 * canonical text in out (CLIENTADDR_MAX bytes). Returns false when it is
 * no IPv4 or IPv6 address.
 */
static bool clientaddr_canon(const char *s, size_t len, char *out)
{
	char buf[CLIENTADDR_MAX + 8];
	unsigned char bin[16];

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, bin) == 1)
		return inet_ntop(AF_INET, bin, out, CLIENTADDR_MAX) != NULL;
	if (inet_pton(AF_INET6, buf, bin) == 1)
		return inet_ntop(AF_INET6, bin, out, CLIENTADDR_MAX) != NULL;
	return false;
}

bool clientaddr_trusted(const char *trusted, const char *ip)
{
	char want[CLIENTADDR_MAX], have[CLIENTADDR_MAX];
	const char *p = trusted, *comma;

	if (trusted == NULL || ip == NULL || !clientaddr_canon(ip, strlen(ip), want))
		return false;
	while (p != NULL && *p != '\0') {
		comma = strchr(p, ',');
		if (clientaddr_canon(p, comma ? (size_t)(comma - p) : strlen(p), have) &&
		    strcmp(have, want) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

void clientaddr_find(const char *peer, const char *xff, const char *trusted, char *out)
{
	char hop[CLIENTADDR_MAX];
	const char *end;
	size_t len;

	snprintf(out, CLIENTADDR_MAX, "%s", peer != NULL ? peer : "");
	if (xff == NULL || !clientaddr_trusted(trusted, peer))
		return;
	/* From the right: each trusted hop vouches for the entry to its left. */
	end = xff + strlen(xff);
	while (end > xff) {
		const char *start = end;

		while (start > xff && start[-1] != ',')
			start--;
		len = (size_t)(end - start);
		if (!clientaddr_canon(start, len, hop))
			return;
		snprintf(out, CLIENTADDR_MAX, "%s", hop);
		if (!clientaddr_trusted(trusted, hop))
			return;
		end = start > xff ? start - 1 : xff;
	}
}

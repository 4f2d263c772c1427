/* urlcheck.c - webhook URL rules and the server-side request forgery guard (libcurl URL API). */
#include "urlcheck.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "err.h"

int urlcheck_parse(const char *url, char *host, size_t hostlen)
{
	CURLU *u = NULL;
	char *scheme = NULL, *h = NULL;
	int rc = PAY_EPARAM_INVALID;

	/* Lowercase scheme only: it is what the database's CHECK and every receiver expect. */
	if (url == NULL || strlen(url) > URLCHECK_MAX ||
	    (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		goto out;
	u = curl_url();
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0))
		goto out;
	if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || h[0] == '\0' ||
	    strlen(h) >= hostlen)
		goto out;
	/* IPv6 literals come back bracketed; strip the brackets for resolving. */
	if (h[0] == '[') {
		size_t n = strlen(h);

		if (n < 3 || h[n - 1] != ']')
			goto out;
		memcpy(host, h + 1, n - 2);
		host[n - 2] = '\0';
	} else {
		strcpy(host, h);
	}
	/*
	 * curl decodes %-escapes in the host: accept only what a DNS name or an
	 * IP literal can hold, so no control byte or odd character gets further.
	 */
	if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
	    strlen(host))
		goto out;
	rc = PAY_OK;
out:
	curl_free(scheme);
	curl_free(h);
	curl_url_cleanup(u);
	return rc;
}

static bool urlcheck_v4_private(const unsigned char *a)
{
	return a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||
	       (a[0] == 100 && (a[1] & 0xC0) == 64) ||       /* 100.64.0.0/10 */
	       (a[0] == 169 && a[1] == 254) ||
	       (a[0] == 172 && (a[1] & 0xF0) == 16) ||
	       (a[0] == 192 && a[1] == 168) ||
	       (a[0] == 192 && a[1] == 0 && a[2] == 0) ||    /* 192.0.0.0/24 */
	       (a[0] == 198 && (a[1] & 0xFE) == 18);         /* 198.18.0.0/15 */
}

bool urlcheck_ip_private(const char *ip)
{
	unsigned char a[16];
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
	static const unsigned char zero[16] = { 0 };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const unsigned char siit[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0 };
	static const unsigned char nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 0x01 };

	if (inet_pton(AF_INET, ip, a) == 1)
		return urlcheck_v4_private(a);
	if (inet_pton(AF_INET6, ip, a) != 1)
		return true;
	/* IPv6 forms that carry an IPv4 address are judged by that address. */
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, zero, 12) == 0)   /* ::ffff:a.b.c.d, ::a.b.c.d */
		return urlcheck_v4_private(a + 12);
	if (memcmp(a, siit, 12) == 0)                                 /* ::ffff:0:a.b.c.d (SIIT) */
		return urlcheck_v4_private(a + 12);
	if (memcmp(a, nat64, 12) == 0)                                /* 64:ff9b::/96 NAT64 */
		return urlcheck_v4_private(a + 12);
	/*
	 * Translated to IPv4 by gateways whose mapping we cannot see: the
	 * local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215, any embedding) and
	 * Teredo 2001::/32, whose client address is obfuscated in the last bits.
	 */
	if (memcmp(a, nat64_local, 6) == 0 ||
	    (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0))
		return true;
	if (a[0] == 0x20 && a[1] == 0x02)                             /* 2002::/16 6to4 */
		return urlcheck_v4_private(a + 2);
	return (a[0] & 0xFE) == 0xFC ||                   /* fc00::/7 unique local */
	       (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) || /* fe80::/10 link-local */
	       (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0) || /* fec0::/10 site-local */
	       a[0] == 0xFF;                              /* multicast */
}

/* True when name ends with the label suffix (".localhost") or is that label itself ("localhost"). */
static bool urlcheck_name_under(const char *name, size_t len, const char *label)
{
	size_t n = strlen(label);

	if (len == n)
		return strncasecmp(name, label, n) == 0;
	return len > n && name[len - n - 1] == '.' && strncasecmp(name + len - n, label, n) == 0;
}

int urlcheck_host_allowed(const char *host)
{
	struct addrinfo hints, *res = NULL, *ai;
	char ip[INET6_ADDRSTRLEN];
	size_t len = host != NULL ? strlen(host) : 0;
	int rc = PAY_EPARAM_INVALID, gai;

	if (len == 0)
		goto out;
	/*
	 * AI_NUMERICHOST: only an address literal, in every spelling the
	 * resolver itself accepts ("127.1", "2130706433", "0x7f.0.0.1"), is
	 * converted; a name fails at once and is never looked up.
	 */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	gai = getaddrinfo(host, NULL, &hints, &res);
	if (gai == 0) {
		rc = PAY_OK;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			const void *addr = ai->ai_family == AF_INET ?
				(const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr :
				(const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

			if (inet_ntop(ai->ai_family, addr, ip, sizeof(ip)) == NULL ||
			    urlcheck_ip_private(ip))
				rc = PAY_EPARAM_INVALID;
		}
		goto out;
	}
	if (host[len - 1] == '.')   /* "localhost." is localhost */
		len--;
	/*
	 * A name: its addresses are judged by the relay when it connects. Only
	 * names that can never be public are refused here: localhost and
	 * .localhost (loopback by RFC 6761, often from /etc/hosts), .invalid,
	 * and single labels, which the resolver completes with the host's
	 * search domains, i.e. into the internal network.
	 */
	if (len == 0 || memchr(host, '.', len) == NULL || urlcheck_name_under(host, len, "localhost") ||
	    urlcheck_name_under(host, len, "invalid") || strchr(host, ':') != NULL)
		goto out;
	rc = PAY_OK;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return rc;
}

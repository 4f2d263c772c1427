/* fuzz_urlcheck.c - libFuzzer target for webhook URLs: urlcheck_parse, urlcheck_ip_private and urlcheck_host_allowed (no DNS). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "err.h"
#include "fuzz_common.h"
#include "urlcheck.h"

/*
 * A host urlcheck_parse hands on has none of the bytes that end or split a
 * URL's authority: no delimiter, bracket, space, CR, LF or other C0 control.
 * (curl lets DEL and bytes over 0x7F through; getaddrinfo then refuses them.)
 */
static int fuzz_host_clean(const char *h)
{
	const unsigned char *p;

	for (p = (const unsigned char *)h; *p != '\0'; p++) {
		if (*p <= 0x20 || strchr("/?#@[]\\", *p) != NULL)
			return 0;
	}
	return 1;
}

static void fuzz_check_url(const char *url, size_t hostlen)
{
	char host[URLCHECK_MAX + 2], again[URLCHECK_MAX + 2];
	unsigned char addr[16];
	size_t n;
	int rc;

	memset(host, 'Z', sizeof(host));
	rc = urlcheck_parse(url, host, hostlen);
	FUZZ_CHECK(rc == PAY_OK || rc == PAY_EPARAM_INVALID);
	if (rc != PAY_OK)
		return;
	n = strnlen(host, sizeof(host));
	FUZZ_CHECK(strlen(url) <= URLCHECK_MAX);
	FUZZ_CHECK(n > 0 && n < hostlen);
	/* curl forgives "http:/host" and the like, but the scheme is http or https. */
	FUZZ_CHECK(strncasecmp(url, "http:", 5) == 0 || strncasecmp(url, "https:", 6) == 0);
	FUZZ_CHECK(fuzz_host_clean(host));
	/* A host with a colon can only be an IPv6 literal, handed on without its brackets. */
	if (strchr(host, ':') != NULL)
		FUZZ_CHECK(inet_pton(AF_INET6, host, addr) == 1);
	/* Parsing is a function of the URL alone. */
	FUZZ_CHECK(urlcheck_parse(url, again, hostlen) == PAY_OK && strcmp(host, again) == 0);
	(void)urlcheck_ip_private(host);
	/* The API's judgement, without DNS: a private literal or a single label is never allowed. */
	rc = urlcheck_host_allowed(host);
	FUZZ_CHECK(rc == PAY_OK || rc == PAY_EPARAM_INVALID);
	if ((inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) &&
	    urlcheck_ip_private(host))
		FUZZ_CHECK(rc != PAY_OK);
	if (strchr(host, '.') == NULL && strchr(host, ':') == NULL)
		FUZZ_CHECK(rc != PAY_OK);
}

/*
 * urlcheck_ip_private must agree with itself across spellings of one address:
 * IPv4 and its IPv4-mapped IPv6 form, and any IPv6 text and its canonical form.
 */
static void fuzz_check_ip(const char *ip)
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN + 8], upper[INET6_ADDRSTRLEN + 8];
	bool private = urlcheck_ip_private(ip);
	size_t i;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(text, sizeof(text), "::ffff:%s", ip);
		FUZZ_CHECK(urlcheck_ip_private(text) == private);
		/* 0/8, 10/8, 127/8, 169.254/16, 172.16/12, 192.168/16 and 224/3 are never public. */
		if (a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||
		    (a[0] == 169 && a[1] == 254) || (a[0] == 172 && (a[1] & 0xF0) == 16) ||
		    (a[0] == 192 && a[1] == 168))
			FUZZ_CHECK(private);
		return;
	}
	if (inet_pton(AF_INET6, ip, a) != 1) {
		FUZZ_CHECK(private);   /* unparseable text counts as private */
		return;
	}
	FUZZ_CHECK(inet_ntop(AF_INET6, a, text, sizeof(text)) != NULL);
	FUZZ_CHECK(urlcheck_ip_private(text) == private);
	for (i = 0; text[i] != '\0'; i++)
		upper[i] = (char)toupper((unsigned char)text[i]);
	upper[i] = '\0';
	FUZZ_CHECK(urlcheck_ip_private(upper) == private);
	/* Loopback, unspecified, unique local, link-local and multicast are never public. */
	if ((memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15) == 0 && a[15] <= 1) ||
	    (a[0] & 0xFE) == 0xFC || (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) || a[0] == 0xFF)
		FUZZ_CHECK(private);
	/* IPv4-mapped: exactly as the IPv4 address. */
	if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		snprintf(text, sizeof(text), "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
		FUZZ_CHECK(urlcheck_ip_private(text) == private);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);

	fuzz_check_url(s, URLCHECK_MAX + 1);   /* what api_webhooks_create passes */
	fuzz_check_url(s, 16);                 /* a small buffer: refused, never overflowed */
	fuzz_check_ip(s);
	free(s);
	return 0;
}

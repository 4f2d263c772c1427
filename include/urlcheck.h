/* urlcheck.h - webhook URL rules and the server-side request forgery guard (libcurl URL API). */
#ifndef PAYMENTS_URLCHECK_H
#define PAYMENTS_URLCHECK_H

#include <stdbool.h>
#include <stddef.h>

#define URLCHECK_MAX 2048

/*
 * Checks that url is an absolute http:// or https:// URL (lowercase scheme)
 * with a host of letters, digits, '.', '-' (or an IPv6 literal), at most
 * URLCHECK_MAX bytes, and copies the host into host (hostlen bytes).
 * Returns PAY_OK or PAY_EPARAM_INVALID.
 */
int urlcheck_parse(const char *url, char *host, size_t hostlen) __attribute__((warn_unused_result));

/*
 * True when the textual IPv4 or IPv6 address is loopback, private,
 * link-local, carrier-grade NAT, multicast, unspecified or reserved: no
 * address a public webhook receiver can have. Unparseable text counts as
 * private.
 */
bool urlcheck_ip_private(const char *ip);

/*
 * Judges host (from urlcheck_parse) without any DNS look-up, so it never
 * blocks: an address literal (any spelling the resolver accepts) must be
 * public; a name is accepted unless it can only be local (localhost,
 * *.localhost, *.invalid, or a single label, which the resolver completes
 * with the search domains). What a name resolves to is checked by the relay
 * for every address it connects to (sender.c). Returns PAY_OK or
 * PAY_EPARAM_INVALID.
 */
int urlcheck_host_allowed(const char *host) __attribute__((warn_unused_result));

#endif

/* clientaddr.h - who the client is: the peer address, or X-Forwarded-For behind trusted proxies. */
#ifndef PAYMENTS_CLIENTADDR_H
#define PAYMENTS_CLIENTADDR_H

#include <stdbool.h>
#include <stddef.h>

/* Room for any address clientaddr_find writes (an IPv6 address and its NUL). */
#define CLIENTADDR_MAX 46

/*
 * True when the textual address ip is one of the comma-separated addresses
 * in trusted (spaces allowed; IPv4 or IPv6, compared as addresses, so
 * "::1" and "0:0::1" are one). NULL or "" trusts nothing.
 */
bool clientaddr_trusted(const char *trusted, const char *ip);

/*
 * The client's address, written into out (CLIENTADDR_MAX bytes): peer
 * itself unless peer is a trusted proxy; then the rightmost address of
 * xff (the X-Forwarded-For values, comma-separated, oldest first) that is
 * not a trusted proxy, walking left only across trusted ones, so a client
 * cannot choose its address by sending its own header. An entry that is
 * not an address stops the walk at the hop to its right. xff may be NULL.
 */
void clientaddr_find(const char *peer, const char *xff, const char *trusted, char *out);

#endif

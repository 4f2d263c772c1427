/*
 * ssl_compat.c - TLS for Debian's civetweb 1.15 on OpenSSL 3.
 *
 * libcivetweb dlopen()s "libssl.so" at run time and looks its functions up
 * by name, among them SSL_get_peer_certificate, which OpenSSL 3 only keeps
 * as a macro. The lookup yields NULL and the first HTTPS connection crashes
 * the worker that calls it. This shim is that "libssl.so": it depends on
 * the real libssl.so.3 (so every other lookup resolves there) and adds the
 * one missing function. bin/payments carries an RPATH to its directory, so
 * civetweb finds the shim first; nothing else in the process uses it.
 */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *s);

X509 *SSL_get_peer_certificate(const SSL *s)
{
	return SSL_get1_peer_certificate(s);
}

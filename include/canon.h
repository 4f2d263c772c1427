/* canon.h - canonical JSON and request fingerprints (jansson, libsodium). */
#ifndef PAYMENTS_CANON_H
#define PAYMENTS_CANON_H

#include <jansson.h>

#define CANON_FINGERPRINT_BYTES 32

/*
 * Serialises v canonically: compact, object keys sorted, non-ASCII escaped.
 * Two bodies that differ only in white space or key order give the same
 * string. Returns a new string the caller frees with free(), or NULL.
 */
char *canon_dump(const json_t *v);

/*
 * SHA-256 over "method\nroute\n" + canon_dump(body). route is the canonical
 * route ("/v1/charges"), so aliases fingerprint alike. Returns PAY_OK or PAY_ENOMEM.
 */
int canon_fingerprint(const char *method, const char *route, const json_t *body,
		      unsigned char out[CANON_FINGERPRINT_BYTES]);

#endif

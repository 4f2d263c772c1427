/* whsign.h - Standard Webhooks signing secrets and signatures (libsodium). */
#ifndef PAYMENTS_WHSIGN_H
#define PAYMENTS_WHSIGN_H

#include <stddef.h>

#define WHSIGN_PREFIX "whsec_"
#define WHSIGN_KEY_BYTES 32
#define WHSIGN_SECRET_MAX 96      /* "whsec_" + base64 of up to 64 bytes + NUL */
#define WHSIGN_SIGNATURE_MAX 64   /* "v1," + base64 of 32 bytes + NUL */

/* Writes "whsec_" + base64 of 32 random bytes into out (WHSIGN_SECRET_MAX bytes). */
void whsign_secret_generate(char *out);

/*
 * Decodes the key bytes of a secret ("whsec_<base64>") into key (64 bytes
 * room). Returns PAY_OK with *len set, or PAY_EPARAM_INVALID.
 */
int whsign_secret_decode(const char *secret, unsigned char *key, size_t *len);

/*
 * Computes the webhook-signature header value "v1,<base64 HMAC-SHA256 of
 * msg_id.timestamp.body keyed by the decoded secret>" into out
 * (WHSIGN_SIGNATURE_MAX bytes). Returns PAY_OK or PAY_EPARAM_INVALID.
 */
int whsign_sign(const char *secret, const char *msg_id, long long timestamp, const char *body,
		size_t body_len, char *out) __attribute__((warn_unused_result));

/* "t=" + 20 digits + ",v1=" + 64 hex digits + NUL, with room to spare. */
#define WHSIGN_STRIPE_SIGNATURE_MAX 104

/*
 * Computes the Stripe-Signature header value "t=<timestamp>,v1=<hex
 * HMAC-SHA256 of "<timestamp>.<body>">" into out (WHSIGN_STRIPE_SIGNATURE_MAX
 * bytes). As Stripe does, the key is the secret string itself ("whsec_..."
 * as bytes, not its decoded part), so stripe.webhooks.constructEvent(body,
 * header, secret) and stripe.Webhook.construct_event accept it. Returns
 * PAY_OK, or PAY_EPARAM_INVALID for a secret that is not "whsec_<base64>".
 */
int whsign_stripe_sign(const char *secret, long long timestamp, const char *body, size_t body_len,
		       char *out) __attribute__((warn_unused_result));

#endif

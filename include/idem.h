/* idem.h - Idempotency-Key header rules (pure). */
#ifndef PAYMENTS_IDEM_H
#define PAYMENTS_IDEM_H

#define IDEM_KEY_MAX 255

/*
 * Returns PAY_OK when key is 1..IDEM_KEY_MAX printable ASCII characters
 * (0x20..0x7E), PAY_EIDEM_MISSING when key is NULL, else PAY_EIDEM_INVALID.
 */
int idem_key_check(const char *key);

#endif

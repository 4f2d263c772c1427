/* idem.c - Idempotency-Key header rules (pure). */
#include "idem.h"

#include <stddef.h>

#include "err.h"

int idem_key_check(const char *key)
{
	size_t i;

	if (key == NULL)
		return PAY_EIDEM_MISSING;
	for (i = 0; key[i] != '\0'; i++) {
		unsigned char c = (unsigned char)key[i];

		if (i >= IDEM_KEY_MAX || c < 0x20 || c > 0x7E)
			return PAY_EIDEM_INVALID;
	}
	return i == 0 ? PAY_EIDEM_INVALID : PAY_OK;
}

/* charge.h - the domain rules of a charge: limits, currencies and the test processor. */
#ifndef PAYMENTS_CHARGE_H
#define PAYMENTS_CHARGE_H

#include <stddef.h>

#define CHARGE_AMOUNT_MIN 1LL
#define CHARGE_AMOUNT_MAX 99999999LL
#define CHARGE_DESCRIPTION_MAX 1000     /* characters */
#define CHARGE_SOURCE_MAX 255           /* bytes */
#define CHARGE_METADATA_MAX_KEYS 50
#define CHARGE_METADATA_KEY_MAX 40      /* characters */
#define CHARGE_METADATA_VALUE_MAX 500   /* characters */

/* What the built-in test processor decides for a payment token. */
enum charge_outcome {
	CHARGE_SUCCEEDED = 0,
	CHARGE_DECLINED,                 /* card_declined, generic */
	CHARGE_DECLINED_INSUFFICIENT,    /* card_declined, insufficient_funds */
};

/* Returns PAY_OK, PAY_EAMOUNT_TOO_SMALL or PAY_EAMOUNT_TOO_LARGE. */
int charge_check_amount(long long amount);

/* Returns PAY_OK when s is a supported lowercase ISO 4217 code, else PAY_ECURRENCY. */
int charge_check_currency(const char *s);

/* The supported currencies, NULL-terminated, sorted. */
extern const char *const charge_currencies[];

/*
 * Decides the outcome of a token like Stripe's test mode. Returns PAY_OK and
 * sets *out, or PAY_ESOURCE for any token the processor does not know.
 */
int charge_decide(const char *source, enum charge_outcome *out);

/* Stripe-style failure code ("card_declined") and decline code for an outcome; NULL when none. */
const char *charge_failure_code(enum charge_outcome o);
const char *charge_decline_code(enum charge_outcome o);
const char *charge_failure_message(enum charge_outcome o);

/* Number of Unicode code points in a valid UTF-8 string of len bytes. */
size_t charge_utf8_chars(const char *s, size_t len);

/* Each returns PAY_OK or PAY_EMETADATA. (The description's length is checked by body_get_string.) */
int charge_check_metadata_count(size_t nkeys);
int charge_check_metadata_key(const char *s, size_t len);
int charge_check_metadata_value(const char *s, size_t len);

/* True for a refund reason Stripe accepts: duplicate, fraudulent, requested_by_customer. */
int charge_refund_reason_valid(const char *reason);

#endif

/* charge.c - the domain rules of a charge: limits, currencies and the test processor. */
#include "charge.h"

#include <string.h>

#include "err.h"

/* Sorted for bsearch; documented in README.md. */
const char *const charge_currencies[] = {
	"aud", "brl", "cad", "chf", "cny", "czk", "dkk", "eur", "gbp", "hkd",
	"huf", "inr", "jpy", "krw", "mxn", "nok", "nzd", "pln", "sek", "sgd",
	"usd", "zar", NULL,
};

struct charge_token {
	const char *token;
	enum charge_outcome outcome;
};

static const struct charge_token charge_tokens[] = {
	{ "tok_visa", CHARGE_SUCCEEDED },
	{ "tok_mastercard", CHARGE_SUCCEEDED },
	{ "tok_amex", CHARGE_SUCCEEDED },
	{ "tok_chargeDeclined", CHARGE_DECLINED },
	{ "tok_chargeDeclinedInsufficientFunds", CHARGE_DECLINED_INSUFFICIENT },
};

int charge_check_amount(long long amount)
{
	if (amount < CHARGE_AMOUNT_MIN)
		return PAY_EAMOUNT_TOO_SMALL;
	if (amount > CHARGE_AMOUNT_MAX)
		return PAY_EAMOUNT_TOO_LARGE;
	return PAY_OK;
}

int charge_check_currency(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 3)
		return PAY_ECURRENCY;
	for (i = 0; charge_currencies[i] != NULL; i++) {
		if (strcmp(charge_currencies[i], s) == 0)
			return PAY_OK;
	}
	return PAY_ECURRENCY;
}

int charge_decide(const char *source, enum charge_outcome *out)
{
	size_t i;

	if (source == NULL)
		return PAY_ESOURCE;
	for (i = 0; i < sizeof(charge_tokens) / sizeof(charge_tokens[0]); i++) {
		if (strcmp(charge_tokens[i].token, source) == 0) {
			*out = charge_tokens[i].outcome;
			return PAY_OK;
		}
	}
	return PAY_ESOURCE;
}

const char *charge_failure_code(enum charge_outcome o)
{
	return o == CHARGE_SUCCEEDED ? NULL : "card_declined";
}

const char *charge_decline_code(enum charge_outcome o)
{
	switch (o) {
	case CHARGE_DECLINED:
		return "generic_decline";
	case CHARGE_DECLINED_INSUFFICIENT:
		return "insufficient_funds";
	default:
		return NULL;
	}
}

const char *charge_failure_message(enum charge_outcome o)
{
	switch (o) {
	case CHARGE_DECLINED:
		return "Your card was declined.";
	case CHARGE_DECLINED_INSUFFICIENT:
		return "Your card has insufficient funds.";
	default:
		return NULL;
	}
}

size_t charge_utf8_chars(const char *s, size_t len)
{
	size_t i, n = 0;

	/* Count every byte that is not a continuation byte (10xxxxxx). */
	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	}
	return n;
}

int charge_check_metadata_count(size_t nkeys)
{
	return nkeys > CHARGE_METADATA_MAX_KEYS ? PAY_EMETADATA : PAY_OK;
}

int charge_check_metadata_key(const char *s, size_t len)
{
	size_t n = charge_utf8_chars(s, len);

	return (n == 0 || n > CHARGE_METADATA_KEY_MAX) ? PAY_EMETADATA : PAY_OK;
}

int charge_check_metadata_value(const char *s, size_t len)
{
	return charge_utf8_chars(s, len) > CHARGE_METADATA_VALUE_MAX ? PAY_EMETADATA : PAY_OK;
}

int charge_refund_reason_valid(const char *reason)
{
	static const char *const reasons[] = { "duplicate", "fraudulent", "requested_by_customer", NULL };
	size_t i;

	for (i = 0; reason != NULL && reasons[i] != NULL; i++) {
		if (strcmp(reasons[i], reason) == 0)
			return 1;
	}
	return 0;
}

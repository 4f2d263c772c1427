/* err.c - the table that maps every pay_err to its HTTP status and error fields. */
#include "err.h"

#include <stddef.h>

static const struct err_info err_table[] = {
	[-PAY_OK] = { 200, NULL, NULL, NULL },
	[-PAY_ENOMEM] = { 500, "api_error", "internal_error", "The server ran out of memory." },
	[-PAY_EINTERNAL] = { 500, "api_error", "internal_error", "An internal error occurred." },
	[-PAY_EUNAVAILABLE] = { 503, "api_error", "service_unavailable",
		"The service is temporarily unavailable. Retry with the same Idempotency-Key." },
	[-PAY_EJSON] = { 400, "invalid_request_error", "invalid_json",
		"The request body is not a valid JSON object." },
	[-PAY_EPARAM_UNKNOWN] = { 400, "invalid_request_error", "parameter_unknown",
		"Received unknown parameter." },
	[-PAY_EPARAM_MISSING] = { 400, "invalid_request_error", "parameter_missing",
		"Missing required parameter." },
	[-PAY_EPARAM_TYPE] = { 400, "invalid_request_error", "parameter_invalid_type",
		"Parameter has the wrong type." },
	[-PAY_EPARAM_INVALID] = { 400, "invalid_request_error", "parameter_invalid",
		"Invalid parameter value." },
	[-PAY_EAMOUNT_TOO_SMALL] = { 400, "invalid_request_error", "amount_too_small",
		"Amount must be at least 1." },
	[-PAY_EAMOUNT_TOO_LARGE] = { 400, "invalid_request_error", "amount_too_large",
		"Amount must be at most 99999999." },
	[-PAY_ESTRING_TOO_LONG] = { 400, "invalid_request_error", "parameter_too_long",
		"Parameter is too long." },
	[-PAY_ECURRENCY] = { 400, "invalid_request_error", "invalid_currency",
		"Currency must be a supported lowercase ISO 4217 code." },
	[-PAY_ESOURCE] = { 400, "invalid_request_error", "invalid_source",
		"No such payment token." },
	[-PAY_EMETADATA] = { 400, "invalid_request_error", "invalid_metadata",
		"Metadata must be an object of at most 50 string values." },
	[-PAY_EIDEM_MISSING] = { 400, "invalid_request_error", "idempotency_key_missing",
		"An Idempotency-Key header is required for this request." },
	[-PAY_EIDEM_INVALID] = { 400, "invalid_request_error", "idempotency_key_invalid",
		"Idempotency-Key must be 1 to 255 printable ASCII characters." },
	[-PAY_EIDEM_REUSED] = { 409, "idempotency_error", "idempotency_key_reused",
		"This Idempotency-Key was already used with a different request." },
	[-PAY_EIDEM_IN_USE] = { 409, "idempotency_error", "idempotency_key_in_use",
		"A request with this Idempotency-Key is still in progress. Retry later." },
	[-PAY_EAUTH_MISSING] = { 401, "authentication_error", "api_key_missing",
		"No API key provided. Use 'Authorization: Bearer sk_test_...'." },
	[-PAY_EAUTH_INVALID] = { 401, "authentication_error", "api_key_invalid",
		"Invalid API key provided." },
	[-PAY_ECARD_DECLINED] = { 402, "card_error", "card_declined", "Your card was declined." },
	[-PAY_ENOT_FOUND] = { 404, "invalid_request_error", "resource_missing", "No such object." },
	[-PAY_EROUTE] = { 404, "invalid_request_error", "route_not_found",
		"Unrecognized request URL." },
	[-PAY_EMETHOD] = { 405, "invalid_request_error", "method_not_allowed",
		"This method is not allowed on this URL." },
	[-PAY_EMEDIA_TYPE] = { 415, "invalid_request_error", "unsupported_media_type",
		"Content-Type must be application/json or application/x-www-form-urlencoded." },
	[-PAY_EBODY_TOO_LARGE] = { 413, "invalid_request_error", "body_too_large",
		"The request body is larger than 64 KiB." },
	[-PAY_EREAD] = { 400, "invalid_request_error", "body_unreadable",
		"The request body could not be read completely." },
	[-PAY_ECONFIG] = { 500, "api_error", "config_error", "Invalid configuration." },
	[-PAY_EIO] = { 500, "api_error", "internal_error", "An I/O error occurred." },
	[-PAY_ESTATE] = { 400, "invalid_request_error", "invalid_state",
		"The object is not in a state that allows this request." },
	[-PAY_EALREADY_REFUNDED] = { 400, "invalid_request_error", "charge_already_refunded",
		"This charge has already been refunded in full." },
	[-PAY_ENOT_REFUNDABLE] = { 400, "invalid_request_error", "charge_not_refundable",
		"This charge failed, so there is nothing to refund." },
	[-PAY_ERATE_LIMITED] = { 429, "rate_limit_error", "rate_limited",
		"Too many requests. Retry after the number of seconds in Retry-After." },
	[-PAY_EHEADERS] = { 431, "invalid_request_error", "request_too_large",
		"Too many request headers (at most 63)." },
	[-PAY_EFORM] = { 400, "invalid_request_error", "invalid_form",
		"The request body is not a valid application/x-www-form-urlencoded form." },
};

const struct err_info *err_info(int e)
{
	size_t n = sizeof(err_table) / sizeof(err_table[0]);
	/* Range-check before negating: -INT_MIN does not fit in an int. */
	size_t i = (e <= 0 && e > -(int)n) ? (size_t)-e : (size_t)-PAY_EINTERNAL;

	if (err_table[i].status == 0)
		i = (size_t)-PAY_EINTERNAL;
	return &err_table[i];
}

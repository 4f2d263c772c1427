/* err.c - the table that maps every pay_err to its HTTP status and error fields. */
#include "err.h"

#include <stdio.h>
#include <string.h>

#include <civetweb.h>

#include "body.h"
#include "charge.h"

static const struct err_info err_table[] = {
	[-PAY_OK] = { 200, NULL, NULL, NULL, 0 },
	[-PAY_ENOMEM] = { 500, "api_error", "internal_error", "The server ran out of memory.", 0 },
	[-PAY_EINTERNAL] = { 500, "api_error", "internal_error", "An internal error occurred.", 0 },
	[-PAY_EUNAVAILABLE] = { 503, "api_error", "service_unavailable",
		"The service is temporarily unavailable. Retry with the same Idempotency-Key.", 0 },
	[-PAY_EJSON] = { 400, "invalid_request_error", "invalid_json",
		"The request body is not a valid JSON object.", 0 },
	[-PAY_EPARAM_UNKNOWN] = { 400, "invalid_request_error", "parameter_unknown",
		"Received unknown parameter.", 0 },
	[-PAY_EPARAM_MISSING] = { 400, "invalid_request_error", "parameter_missing",
		"Missing required parameter.", 0 },
	[-PAY_EPARAM_TYPE] = { 400, "invalid_request_error", "parameter_invalid_type",
		"Parameter has the wrong type.", 0 },
	[-PAY_EPARAM_INVALID] = { 400, "invalid_request_error", "parameter_invalid",
		"Invalid parameter value.", 0 },
	[-PAY_EAMOUNT_TOO_SMALL] = { 400, "invalid_request_error", "amount_too_small",
		"Amount must be at least %lld.", CHARGE_AMOUNT_MIN },
	[-PAY_EAMOUNT_TOO_LARGE] = { 400, "invalid_request_error", "amount_too_large",
		"Amount must be at most %lld.", CHARGE_AMOUNT_MAX },
	[-PAY_ESTRING_TOO_LONG] = { 400, "invalid_request_error", "parameter_too_long",
		"Parameter is too long.", 0 },
	[-PAY_ECURRENCY] = { 400, "invalid_request_error", "invalid_currency",
		"Currency must be a supported lowercase ISO 4217 code.", 0 },
	[-PAY_ESOURCE] = { 400, "invalid_request_error", "invalid_source",
		"No such payment token.", 0 },
	[-PAY_EMETADATA] = { 400, "invalid_request_error", "invalid_metadata",
		"Metadata must be an object of at most %lld string values.", CHARGE_METADATA_MAX_KEYS },
	[-PAY_EIDEM_MISSING] = { 400, "invalid_request_error", "idempotency_key_missing",
		"An Idempotency-Key header is required for this request.", 0 },
	[-PAY_EIDEM_INVALID] = { 400, "invalid_request_error", "idempotency_key_invalid",
		"Idempotency-Key must be 1 to 255 printable ASCII characters.", 0 },
	[-PAY_EIDEM_REUSED] = { 409, "idempotency_error", "idempotency_key_reused",
		"This Idempotency-Key was already used with a different request.", 0 },
	[-PAY_EIDEM_IN_USE] = { 409, "idempotency_error", "idempotency_key_in_use",
		"A request with this Idempotency-Key is still in progress. Retry later.", 0 },
	[-PAY_EAUTH_MISSING] = { 401, "authentication_error", "api_key_missing",
		"No API key provided. Use 'Authorization: Bearer sk_test_...'.", 0 },
	[-PAY_EAUTH_INVALID] = { 401, "authentication_error", "api_key_invalid",
		"Invalid API key provided.", 0 },
	[-PAY_ECARD_DECLINED] = { 402, "card_error", "card_declined", "Your card was declined.", 0 },
	[-PAY_ENOT_FOUND] = { 404, "invalid_request_error", "resource_missing", "No such object.", 0 },
	[-PAY_EROUTE] = { 404, "invalid_request_error", "route_not_found",
		"Unrecognized request URL.", 0 },
	[-PAY_EMETHOD] = { 405, "invalid_request_error", "method_not_allowed",
		"This method is not allowed on this URL.", 0 },
	[-PAY_EMEDIA_TYPE] = { 415, "invalid_request_error", "unsupported_media_type",
		"Content-Type must be application/json or application/x-www-form-urlencoded.", 0 },
	[-PAY_EBODY_TOO_LARGE] = { 413, "invalid_request_error", "body_too_large",
		"The request body is larger than %lld KiB.", BODY_MAX_BYTES / 1024 },
	[-PAY_EREAD] = { 400, "invalid_request_error", "body_unreadable",
		"The request body could not be read completely.", 0 },
	[-PAY_ECONFIG] = { 500, "api_error", "config_error", "Invalid configuration.", 0 },
	[-PAY_EIO] = { 500, "api_error", "internal_error", "An I/O error occurred.", 0 },
	[-PAY_ESTATE] = { 400, "invalid_request_error", "invalid_state",
		"The object is not in a state that allows this request.", 0 },
	[-PAY_EALREADY_REFUNDED] = { 400, "invalid_request_error", "charge_already_refunded",
		"This charge has already been refunded in full.", 0 },
	[-PAY_ENOT_REFUNDABLE] = { 400, "invalid_request_error", "charge_not_refundable",
		"This charge failed, so there is nothing to refund.", 0 },
	[-PAY_ERATE_LIMITED] = { 429, "rate_limit_error", "rate_limited",
		"Too many requests. Retry after the number of seconds in Retry-After.", 0 },
	[-PAY_EHEADERS] = { 431, "invalid_request_error", "request_too_large",
		"Too many request headers (at most %lld).", MG_MAX_HEADERS - 1 },
	[-PAY_EMALFORMED] = { 400, "invalid_request_error", "request_malformed",
		"The request could not be read.", 0 },
	[-PAY_EFORM] = { 400, "invalid_request_error", "invalid_form",
		"The request body is not a valid application/x-www-form-urlencoded form.", 0 },
	[-PAY_ECHARGE_BUSY] = { 409, "invalid_request_error", "charge_busy",
		"Another request is changing this charge right now. Retry later.", 0 },
	[-PAY_EWEBHOOK_ENDPOINTS_LIMIT] = { 400, "invalid_request_error", "webhook_endpoints_limit",
		"You have as many webhook endpoints as allowed. Delete one first.", 0 },
	[-PAY_EALREADY_CAPTURED] = { 400, "invalid_request_error", "charge_already_captured",
		"This charge has already been captured.", 0 },
	[-PAY_EEXPIRED_FOR_CAPTURE] = { 400, "invalid_request_error", "charge_expired_for_capture",
		"This charge's authorization was released or has expired.", 0 },
	[-PAY_ENOT_CAPTURABLE] = { 400, "invalid_request_error", "charge_not_capturable",
		"This charge failed, so there is nothing to capture.", 0 },
	/*
	 * The one refusal whose status depends on the dialect: this API's own
	 * is 409 (above); Stripe answers 400, and the Stripe SDKs raise their
	 * IdempotencyError class only for a 400 (or 404) of this type.
	 */
	[-PAY_EIDEM_REUSED_STRIPE] = { 400, "idempotency_error", "idempotency_key_reused",
		"This Idempotency-Key was already used with a different request.", 0 },
	[-PAY_ECHARGE_PENDING] = { 400, "invalid_request_error", "charge_pending",
		"This charge is still pending at the processor. Retry once it has succeeded.", 0 },
};

/*
 * The refusals our SQL functions raise on purpose, as SQLSTATEs of class PR
 * (the migrations' R__ files name them), and the error each one is.
 */
static const struct {
	const char *sqlstate;
	int err;
} err_refusals[] = {
	{ "PR001", PAY_EAMOUNT_TOO_LARGE },    /* create_refund, capture_charge: more than what is left */
	{ "PR002", PAY_EALREADY_REFUNDED },    /* create_refund */
	{ "PR003", PAY_ENOT_REFUNDABLE },      /* create_refund: a failed charge */
	{ "PR004", PAY_ESTATE },               /* relay_replay: the endpoint was deleted */
	{ "PR011", PAY_EPARAM_INVALID },       /* list_page: starting_after is no object of the user */
	{ "PR012", PAY_EPARAM_INVALID },       /* list_page: ending_before, likewise */
	{ "PR021", PAY_EALREADY_CAPTURED },    /* capture_charge */
	{ "PR022", PAY_EEXPIRED_FOR_CAPTURE }, /* capture_charge, create_refund: released or expired */
	{ "PR023", PAY_ENOT_CAPTURABLE },      /* capture_charge: a failed charge */
	{ "PR024", PAY_EPARAM_INVALID },       /* create_refund: part of an uncaptured charge */
	{ "PR031", PAY_EWEBHOOK_ENDPOINTS_LIMIT }, /* create_webhook_endpoint: the user has the most */
	{ "PR051", PAY_EMETADATA },            /* update_charge, update_refund: too many keys merged */
	{ "PR061", PAY_ECHARGE_PENDING },      /* create_refund, capture_charge: still pending */
	{ "PR404", PAY_ENOT_FOUND },           /* create_refund, capture_charge, update_*: no such object */
	{ "PR409", PAY_ECHARGE_BUSY },         /* create_refund, update_*: the row stayed locked past the wait */
};

int err_from_refusal(const char *sqlstate)
{
	size_t i;

	for (i = 0; i < sizeof(err_refusals) / sizeof(err_refusals[0]); i++)
		if (strcmp(err_refusals[i].sqlstate, sqlstate) == 0)
			return err_refusals[i].err;
	return PAY_ESTATE;
}

const char *err_message(int e, char *buf, size_t len)
{
	const struct err_info *info = err_info(e);

	if (info->limit == 0)
		return info->message;
	snprintf(buf, len, info->message, info->limit);
	return buf;
}

const struct err_info *err_info(int e)
{
	size_t n = sizeof(err_table) / sizeof(err_table[0]);
	/* Range-check before negating: -INT_MIN does not fit in an int. */
	size_t i = (e <= 0 && e > -(int)n) ? (size_t)-e : (size_t)-PAY_EINTERNAL;

	if (err_table[i].status == 0)
		i = (size_t)-PAY_EINTERNAL;
	return &err_table[i];
}

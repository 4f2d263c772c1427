/* err.h - the one error enum of the service and its mapping to HTTP. */
#ifndef PAYMENTS_ERR_H
#define PAYMENTS_ERR_H

#include <stddef.h>

/*
 * Every fallible function returns PAY_OK (0) or one of these negative values.
 * err_info() maps each to the HTTP status and the Stripe-shaped error fields;
 * that table in err.c is the only place where status codes are decided.
 */
enum pay_err {
	PAY_OK = 0,
	PAY_ENOMEM = -1,
	PAY_EINTERNAL = -2,
	PAY_EUNAVAILABLE = -3,       /* database down or pool exhausted: 503 */
	PAY_EJSON = -4,              /* body is not a JSON object */
	PAY_EPARAM_UNKNOWN = -5,
	PAY_EPARAM_MISSING = -6,
	PAY_EPARAM_TYPE = -7,        /* wrong JSON type for a field */
	PAY_EPARAM_INVALID = -8,     /* right type, unacceptable value */
	PAY_EAMOUNT_TOO_SMALL = -9,
	PAY_EAMOUNT_TOO_LARGE = -10,
	PAY_ESTRING_TOO_LONG = -11,
	PAY_ECURRENCY = -12,
	PAY_ESOURCE = -13,           /* unknown payment token */
	PAY_EMETADATA = -14,
	PAY_EIDEM_MISSING = -15,
	PAY_EIDEM_INVALID = -16,
	PAY_EIDEM_REUSED = -17,      /* same key, different request */
	PAY_EIDEM_IN_USE = -18,      /* same key, first request still running */
	PAY_EAUTH_MISSING = -19,
	PAY_EAUTH_INVALID = -20,
	PAY_ECARD_DECLINED = -21,
	PAY_ENOT_FOUND = -22,        /* object missing or owned by someone else */
	PAY_EROUTE = -23,            /* no such URL */
	PAY_EMETHOD = -24,
	PAY_EMEDIA_TYPE = -25,
	PAY_EBODY_TOO_LARGE = -26,
	PAY_EREAD = -27,             /* request body truncated or unreadable */
	PAY_ECONFIG = -28,           /* bad setting or command line */
	PAY_EIO = -29,               /* file or system call failed */
	PAY_ESTATE = -30,            /* operation refused in the object's state */
	PAY_EALREADY_REFUNDED = -31,
	PAY_ENOT_REFUNDABLE = -32,   /* a failed charge */
	PAY_ERATE_LIMITED = -33,
	PAY_EHEADERS = -34,          /* more request headers than the server keeps */
	PAY_EMALFORMED = -35,        /* the HTTP layer could not read the request */
	PAY_EFORM = -36,             /* body is not a valid form (application/x-www-form-urlencoded) */
	PAY_ECHARGE_BUSY = -37,      /* another request held the charge past the wait: 409, retry */
	PAY_EWEBHOOK_ENDPOINTS_LIMIT = -38,   /* the user has PAYMENTS_WEBHOOK_ENDPOINTS_MAX endpoints */
	PAY_EALREADY_CAPTURED = -39, /* capture of a charge already captured */
	PAY_EEXPIRED_FOR_CAPTURE = -40, /* capture of an authorization released or expired */
	PAY_ENOT_CAPTURABLE = -41,   /* capture of a failed charge */
	PAY_EIDEM_REUSED_STRIPE = -42,   /* PAY_EIDEM_REUSED as Stripe answers it (400), for a
	                                    request in Stripe's dialect (http_speaks_stripe) */
	PAY_ECHARGE_PENDING = -43,   /* refund or capture of a charge the processor has not decided */
};

struct err_info {
	int status;              /* HTTP status code */
	const char *type;        /* Stripe error type, e.g. invalid_request_error */
	const char *code;        /* machine-readable code, e.g. amount_too_small */
	const char *message;     /* default human message; "%lld" stands for limit */
	long long limit;         /* the limit the message names, or 0 */
};

/* Returns the static description of e; never NULL (unknown maps to 500). */
const struct err_info *err_info(int e);

/*
 * The error a refusal of our SQL functions stands for: sqlstate is of class
 * PR (see err.c's table); an unknown one is PAY_ESTATE.
 */
int err_from_refusal(const char *sqlstate);

/*
 * The default message of e, with its limit filled in: info->message itself
 * when it names none, otherwise written into buf (len bytes). Never NULL.
 */
const char *err_message(int e, char *buf, size_t len);

#endif

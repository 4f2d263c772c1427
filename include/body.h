/* body.h - strict decoding of JSON request bodies into typed fields (jansson). */
#ifndef PAYMENTS_BODY_H
#define PAYMENTS_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define BODY_MAX_BYTES (64 * 1024)
#define BODY_MAX_DEPTH 64   /* nesting of [ and {; a request body needs 2 */

/* How a request body is encoded: JSON, or a form with Stripe's bracket notation (form.h). */
enum body_format {
	BODY_FORMAT_JSON = 0,
	BODY_FORMAT_FORM = 1,
};

/* Where a body check failed: the error and the parameter it names (may be NULL). */
struct body_error {
	int err;
	char param[128];
	char message[256];
};

/*
 * Parses len bytes as one JSON object, refusing duplicate keys, invalid UTF-8,
 * NUL bytes in strings, nesting deeper than BODY_MAX_DEPTH and anything that
 * is not an object. On success *root is
 * a new reference the caller releases with json_decref. Returns PAY_OK or
 * PAY_EJSON with err filled.
 */
int body_load(const char *buf, size_t len, json_t **root, struct body_error *err);

/*
 * Loads a body of either format into the same JSON object: body_load for
 * JSON, form_decode for a form. Returns PAY_OK with *root a new reference,
 * or PAY_EJSON / PAY_EFORM with err filled.
 */
int body_load_as(const char *buf, size_t len, enum body_format format, json_t **root,
		 struct body_error *err);

/*
 * Forms carry every value as a string. Where a JSON body has an integer,
 * this turns obj[key] into that integer when it is a decimal string ("2000",
 * "-5", no sign '+', no leading zeros, at most 18 digits), so validation and
 * the request fingerprint see exactly what the JSON body would give. Any
 * other value is left as it is, for the getters to refuse with the usual
 * error. Returns PAY_OK or PAY_ENOMEM.
 */
int body_form_integer(json_t *obj, const char *key);

/*
 * The boolean counterpart of body_form_integer: obj[key] "true" or "false",
 * in any case (stripe-python sends "True" and "False"), becomes JSON true or
 * false; any other value is left for body_get_boolean to refuse. Returns
 * PAY_OK or PAY_ENOMEM.
 */
int body_form_boolean(json_t *obj, const char *key);

/*
 * Refuses any key of obj not in the NULL-terminated list allowed
 * (PAY_EPARAM_UNKNOWN, param = the key). Server-owned fields are refused the
 * same way, since they are not in the list.
 */
int body_check_fields(const json_t *obj, const char *const *allowed, struct body_error *err);

/*
 * Reads obj[key] as a string into *out (borrowed from obj). A missing key is
 * PAY_EPARAM_MISSING when required, else PAY_OK with *out = NULL; null is
 * treated as missing. Wrong type: PAY_EPARAM_TYPE. Longer than max_chars
 * characters: PAY_ESTRING_TOO_LONG.
 */
int body_get_string(const json_t *obj, const char *key, bool required, size_t max_chars,
		    const char **out, struct body_error *err);

/*
 * Reads obj[key] as an integer (a JSON real such as 5.0 is refused).
 * *present tells whether it was there. Returns PAY_OK, PAY_EPARAM_MISSING
 * (when required) or PAY_EPARAM_TYPE.
 */
int body_get_integer(const json_t *obj, const char *key, bool required, long long *out,
		     bool *present, struct body_error *err);

/*
 * Reads obj[key] as a JSON boolean into *out; a missing key or null leaves
 * *out at dflt. Returns PAY_OK or PAY_EPARAM_TYPE.
 */
int body_get_boolean(const json_t *obj, const char *key, bool dflt, bool *out,
		     struct body_error *err);

/*
 * Validates obj["metadata"] (object of at most 50 string values, key and
 * value lengths as in charge.h) and serialises it compactly, keeping the
 * client's key order, into *json_out ("{}" when absent or null; caller
 * frees with free()). Returns PAY_OK, PAY_EMETADATA or PAY_ENOMEM.
 */
int body_get_metadata(const json_t *obj, char **json_out, struct body_error *err);

/*
 * body_get_metadata for a body of the given format: a form's errors about
 * one key or value name it in bracket form ("metadata[order_id]"), as the
 * client wrote it; JSON's name "metadata".
 */
int body_get_metadata_as(const json_t *obj, enum body_format format, char **json_out,
			 struct body_error *err);

/* Fills err with e, param and a printf-style message (message may be NULL for the default). */
int body_fail(struct body_error *err, int e, const char *param, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif

/* body.c - strict decoding of JSON request bodies into typed fields (jansson). */
#include "body.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "charge.h"
#include "err.h"
#include "form.h"

/*
 * Replaces every byte that is not part of a valid UTF-8 sequence with '?':
 * a copy of client text cut short by a precision ("%.64s") or a buffer size
 * must still be valid UTF-8, or it cannot go into the JSON error.
 */
static void body_utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t need, k;

	while (*p != '\0') {
		need = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 && *p >= 0xC2 ? 2 :
		       (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 && *p <= 0xF4 ? 4 : 0;
		for (k = 1; k < need; k++) {
			if ((p[k] & 0xC0) != 0x80)
				break;
		}
		if (need == 0 || k < need) {
			*p++ = '?';
			continue;
		}
		p += need;
	}
}

/* Cuts an incomplete UTF-8 sequence off the end of s (what a byte limit leaves of a valid string). */
static void body_utf8_trim(char *s)
{
	size_t len = strlen(s), i = len, need;
	unsigned char lead;

	while (i > 0 && len - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0 || (unsigned char)s[i - 1] < 0xC0)
		return;
	lead = (unsigned char)s[i - 1];
	need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
	if (len - (i - 1) < need)
		s[i - 1] = '\0';
}

int body_fail(struct body_error *err, int e, const char *param, const char *fmt, ...)
{
	va_list ap;

	err->err = e;
	/* A parameter name is the client's key cut to size: cut whole characters only. */
	snprintf(err->param, sizeof(err->param), "%s", param ? param : "");
	body_utf8_trim(err->param);
	body_utf8_sanitize(err->param);
	err->message[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
		body_utf8_sanitize(err->message);
	}
	return e;
}

/*
 * The deepest nesting of [ and { outside strings. jansson parses and dumps
 * recursively: refusing deep input first keeps every thread's stack safe.
 */
static size_t body_depth(const char *buf, size_t len)
{
	size_t i, depth = 0, max = 0;
	bool in_string = false;

	for (i = 0; i < len; i++) {
		char c = buf[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

int body_load(const char *buf, size_t len, json_t **root, struct body_error *err)
{
	json_error_t jerr;
	json_t *v = NULL;
	int rc;

	*root = NULL;
	if (body_depth(buf, len) > BODY_MAX_DEPTH) {
		rc = body_fail(err, PAY_EJSON, NULL, "JSON nested deeper than %d levels.", BODY_MAX_DEPTH);
		goto out;
	}
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL) {
		rc = body_fail(err, PAY_EJSON, NULL, "Invalid JSON at line %d, column %d: %s",
			       jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(v)) {
		rc = body_fail(err, PAY_EJSON, NULL, "The request body must be a JSON object.");
		goto out;
	}
	*root = v;   /* ownership passes to the caller */
	v = NULL;
	rc = PAY_OK;
out:
	json_decref(v);
	return rc;
}

int body_load_as(const char *buf, size_t len, enum body_format format, json_t **root,
		 struct body_error *err)
{
	if (format == BODY_FORMAT_FORM)
		return form_decode(buf, len, root, err);
	return body_load(buf, len, root, err);
}

int body_form_integer(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *s, *digits;
	size_t len;

	if (v == NULL || !json_is_string(v))
		return PAY_OK;
	s = json_string_value(v);
	len = json_string_length(v);
	digits = s[0] == '-' ? s + 1 : s;
	if (len == 0 || strlen(s) != len || digits[0] == '\0' || strlen(digits) > 18 ||
	    strspn(digits, "0123456789") != strlen(digits) ||
	    (digits[0] == '0' && digits[1] != '\0'))
		return PAY_OK;
	return json_object_set_new(obj, key, json_integer((json_int_t)strtoll(s, NULL, 10))) == 0 ?
	       PAY_OK : PAY_ENOMEM;
}

int body_form_boolean(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	if (v == NULL || !json_is_string(v))
		return PAY_OK;
	s = json_string_value(v);
	/* Any case: stripe-python sends Python's spelling, "True" and "False". */
	if (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0)
		return PAY_OK;
	return json_object_set_new(obj, key, json_boolean(s[0] == 't' || s[0] == 'T')) == 0 ?
	       PAY_OK : PAY_ENOMEM;
}

int body_check_fields(const json_t *obj, const char *const *allowed, struct body_error *err)
{
	const char *key;
	json_t *value;
	size_t i;

	json_object_foreach((json_t *)obj, key, value) {
		bool known = false;

		(void)value;
		for (i = 0; allowed[i] != NULL && !known; i++)
			known = strcmp(allowed[i], key) == 0;
		if (!known)
			return body_fail(err, PAY_EPARAM_UNKNOWN, key,
					 "Received unknown parameter: %.100s", key);
	}
	return PAY_OK;
}

int body_get_string(const json_t *obj, const char *key, bool required, size_t max_chars,
		    const char **out, struct body_error *err)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return body_fail(err, PAY_EPARAM_MISSING, key,
					 "Missing required parameter: %s.", key);
		return PAY_OK;
	}
	if (!json_is_string(v))
		return body_fail(err, PAY_EPARAM_TYPE, key, "Invalid %s: must be a string.", key);
	if (charge_utf8_chars(json_string_value(v), json_string_length(v)) > max_chars)
		return body_fail(err, PAY_ESTRING_TOO_LONG, key,
				 "Invalid %s: must be at most %zu characters.", key, max_chars);
	*out = json_string_value(v);
	return PAY_OK;
}

int body_get_integer(const json_t *obj, const char *key, bool required, long long *out,
		     bool *present, struct body_error *err)
{
	json_t *v = json_object_get(obj, key);

	*present = false;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return body_fail(err, PAY_EPARAM_MISSING, key,
					 "Missing required parameter: %s.", key);
		return PAY_OK;
	}
	if (!json_is_integer(v))
		return body_fail(err, PAY_EPARAM_TYPE, key,
				 "Invalid %s: must be an integer (in the smallest currency unit).",
				 key);
	*out = (long long)json_integer_value(v);
	*present = true;
	return PAY_OK;
}

int body_get_boolean(const json_t *obj, const char *key, bool dflt, bool *out,
		     struct body_error *err)
{
	json_t *v = json_object_get(obj, key);

	*out = dflt;
	if (v == NULL || json_is_null(v))
		return PAY_OK;
	if (!json_is_boolean(v))
		return body_fail(err, PAY_EPARAM_TYPE, key, "Invalid %s: must be a boolean.", key);
	*out = json_is_true(v);
	return PAY_OK;
}

int body_get_metadata(const json_t *obj, char **json_out, struct body_error *err)
{
	return body_get_metadata_as(obj, BODY_FORMAT_JSON, json_out, err);
}

/* The param of an error about metadata key: "metadata[key]" for a form, "metadata" for JSON. */
static const char *body_metadata_param(enum body_format format, const char *key, char *buf,
				       size_t len)
{
	if (format != BODY_FORMAT_FORM)
		return "metadata";
	snprintf(buf, len, "metadata[%s]", key);
	return buf;
}

int body_get_metadata_as(const json_t *obj, enum body_format format, char **json_out,
			 struct body_error *err)
{
	char param[sizeof(err->param)];
	json_t *md = json_object_get(obj, "metadata");
	const char *key;
	json_t *value;

	*json_out = NULL;
	if (md == NULL || json_is_null(md)) {
		*json_out = strdup("{}");
		return *json_out ? PAY_OK : PAY_ENOMEM;
	}
	if (!json_is_object(md))
		return body_fail(err, PAY_EMETADATA, "metadata", "Invalid metadata: must be an object.");
	if (charge_check_metadata_count(json_object_size(md)) != PAY_OK)
		return body_fail(err, PAY_EMETADATA, "metadata",
				 "Invalid metadata: at most %d keys.", CHARGE_METADATA_MAX_KEYS);
	json_object_foreach(md, key, value) {
		if (charge_check_metadata_key(key, strlen(key)) != PAY_OK)
			return body_fail(err, PAY_EMETADATA,
					 body_metadata_param(format, key, param, sizeof(param)),
					 "Invalid metadata: keys must be 1 to %d characters.",
					 CHARGE_METADATA_KEY_MAX);
		if (!json_is_string(value))
			return body_fail(err, PAY_EMETADATA,
					 body_metadata_param(format, key, param, sizeof(param)),
					 "Invalid metadata: values must be strings.");
		if (charge_check_metadata_value(json_string_value(value),
						json_string_length(value)) != PAY_OK)
			return body_fail(err, PAY_EMETADATA,
					 body_metadata_param(format, key, param, sizeof(param)),
					 "Invalid metadata: values must be at most %d characters.",
					 CHARGE_METADATA_VALUE_MAX);
	}
	/* Jansson keeps insertion order, so the client's order is preserved. */
	*json_out = json_dumps(md, JSON_COMPACT);
	return *json_out ? PAY_OK : PAY_ENOMEM;
}

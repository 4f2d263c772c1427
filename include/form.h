/* form.h - decoding application/x-www-form-urlencoded bodies with Stripe's bracket notation (jansson). */
#ifndef PAYMENTS_FORM_H
#define PAYMENTS_FORM_H

#include <stddef.h>

#include <jansson.h>

#include "body.h"

#define FORM_MAX_FIELDS 1024   /* name=value pairs in one body */
#define FORM_MAX_NAME 256      /* bytes of one decoded field name */
#define FORM_MAX_DEPTH 4       /* bracket segments after the base name: metadata[k] has 1 */
#define FORM_MAX_INDEX 9999    /* largest array index, so "a[99999999]" cannot allocate */

/*
 * Decodes len bytes of a form body into the JSON object a JSON body with the
 * same content would be: "a=1&b[c]=2&d[0]=x&d[1]=y" is {"a":"1","b":{"c":"2"},
 * "d":["x","y"]}. Names and values are percent-decoded ('+' is a space).
 * Brackets nest: "[key]" is an object member, "[]" appends to an array, and
 * "[N]" is array element N, which must come in order from 0 (a segment of
 * digits names an array element only where that array exists or starts at
 * "[0]"; elsewhere it is an object key, so metadata[123]=x stays an object).
 * Every value is a string: the validators convert numbers (body_form_integer).
 * Empty pairs ("a=1&&b=2", a trailing '&') are skipped; a name without '='
 * has the empty value.
 *
 * Refused with PAY_EFORM (param: the field name, in bracket form): a bad
 * percent escape, a NUL byte, invalid UTF-8, an empty or unbalanced name,
 * more than FORM_MAX_FIELDS pairs, a name longer than FORM_MAX_NAME bytes or
 * deeper than FORM_MAX_DEPTH, a field given twice, array indices out of
 * order, and a name used both as a value and as an object or array.
 *
 * On PAY_OK *root is a new reference the caller releases with json_decref;
 * otherwise *root is NULL and err says why.
 */
int form_decode(const char *buf, size_t len, json_t **root, struct body_error *err)
	__attribute__((warn_unused_result));

#endif

/* form.c - decoding application/x-www-form-urlencoded bodies with Stripe's bracket notation (jansson). */
#include "form.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* One segment of a field name: the base name, "[key]", "[]" or "[N]". */
struct form_seg {
	const char *text;     /* points into the decoded name; not NUL-terminated */
	size_t len;
	bool append;          /* "[]" */
	bool digits;          /* "[N]": may be an array index */
	size_t index;         /* N, when digits */
};

static int form_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decodes len bytes of in into out (room for len bytes, since
 * decoding never grows) and sets *outlen. '+' is a space. Returns false on a
 * truncated or non-hex escape and on a NUL byte, which no field may hold.
 */
static bool form_unescape(const char *in, size_t len, char *out, size_t *outlen)
{
	size_t i, n = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (len - i < 3)
				return false;
			hi = form_hex((unsigned char)in[i + 1]);
			lo = form_hex((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0')
			return false;
		out[n++] = c;
	}
	*outlen = n;
	return true;
}

/*
 * Splits the decoded name (NUL-terminated) into its segments. Returns the
 * number of segments, or -1 when the name is empty, unbalanced, has text
 * after a closing bracket, or more than FORM_MAX_DEPTH bracket segments.
 */
static int form_split(const char *name, struct form_seg *segs)
{
	const char *p = strchr(name, '['), *close;
	int n = 0;
	size_t k;

	segs[0] = (struct form_seg){ name, p ? (size_t)(p - name) : strlen(name), false, false, 0 };
	if (segs[0].len == 0 || memchr(name, ']', segs[0].len) != NULL)
		return -1;
	n = 1;
	while (p != NULL && *p != '\0') {
		if (*p != '[' || n > FORM_MAX_DEPTH)
			return -1;
		close = strchr(p + 1, ']');
		if (close == NULL || memchr(p + 1, '[', (size_t)(close - p - 1)) != NULL)
			return -1;
		segs[n] = (struct form_seg){ p + 1, (size_t)(close - p - 1), false, false, 0 };
		segs[n].append = segs[n].len == 0;
		segs[n].digits = segs[n].len > 0 && segs[n].len <= 4;
		for (k = 0; k < segs[n].len && segs[n].digits; k++)
			segs[n].digits = segs[n].text[k] >= '0' && segs[n].text[k] <= '9';
		/* "01" is a key, not index 1: an index has no leading zero. */
		if (segs[n].digits && segs[n].len > 1 && segs[n].text[0] == '0')
			segs[n].digits = false;
		for (k = 0; k < segs[n].len && segs[n].digits; k++)
			segs[n].index = segs[n].index * 10 + (size_t)(segs[n].text[k] - '0');
		n++;
		p = close + 1;
	}
	return n;
}

/*
 * The container (or value) that segment s names inside parent: an object
 * member, or an array element. For an array, "[]" and "[N]" with N the
 * array's size name a new element (NULL); N beyond the size is a gap.
 * Returns false when s cannot name anything in parent.
 */
static bool form_child(json_t *parent, const struct form_seg *s, json_t **child, bool *is_new)
{
	char key[FORM_MAX_NAME + 1];

	*child = NULL;
	*is_new = false;
	if (json_is_object(parent)) {
		if (s->append)
			return false;
		memcpy(key, s->text, s->len);
		key[s->len] = '\0';
		*child = json_object_get(parent, key);
		*is_new = *child == NULL;
		return true;
	}
	if (s->append) {
		*is_new = true;
		return true;
	}
	if (!s->digits || s->index > json_array_size(parent))
		return false;
	*child = json_array_get(parent, s->index);
	*is_new = *child == NULL;
	return true;
}

/* Stores value (a new reference, always consumed) as segment s of parent, which form_child said is new. */
static bool form_put(json_t *parent, const struct form_seg *s, json_t *value)
{
	char key[FORM_MAX_NAME + 1];

	if (value == NULL)
		return false;
	if (json_is_array(parent))
		return json_array_append_new(parent, value) == 0;
	memcpy(key, s->text, s->len);
	key[s->len] = '\0';
	return json_object_setn_new(parent, key, s->len, value) == 0;
}

/*
 * Stores one decoded field: the value (len bytes) at the path the name's
 * segments give, creating objects and arrays on the way. Returns PAY_OK or
 * PAY_EFORM (err filled) or PAY_ENOMEM.
 */
static int form_store(json_t *root, const char *name, const char *value, size_t len,
		      struct body_error *err)
{
	struct form_seg segs[FORM_MAX_DEPTH + 2];
	json_t *parent = root, *child, *str;
	bool is_new;
	int n, i;

	n = form_split(name, segs);
	if (n < 0)
		return body_fail(err, PAY_EFORM, name,
				 "Invalid parameter name '%.100s': use name, name[key] or name[N],"
				 " at most %d levels deep.", name, FORM_MAX_DEPTH);
	for (i = 0; i < n; i++) {
		if (!form_child(parent, &segs[i], &child, &is_new))
			return body_fail(err, PAY_EFORM, name,
					 "Invalid parameter '%.100s': array indices must count up from 0,"
					 " one element after another.", name);
		if (i == n - 1) {
			if (!is_new)
				return body_fail(err, PAY_EFORM, name,
						 "Parameter '%.100s' is given more than once.", name);
			str = json_stringn(value, len);
			if (str == NULL)
				return body_fail(err, PAY_EFORM, name,
						 "Invalid parameter '%.100s': the value is not valid UTF-8.", name);
			return form_put(parent, &segs[i], str) ? PAY_OK : PAY_ENOMEM;
		}
		if (is_new) {
			/*
			 * The next segment decides what this one holds: "[]" and "[0]"
			 * start an array, anything else (including other digits, so
			 * metadata[123] is a key) an object.
			 */
			bool array = segs[i + 1].append || (segs[i + 1].digits && segs[i + 1].index == 0);

			child = array ? json_array() : json_object();
			if (!form_put(parent, &segs[i], child))
				return PAY_ENOMEM;
			if (json_is_array(parent))
				child = json_array_get(parent, json_array_size(parent) - 1);
		} else if (!json_is_object(child) && !json_is_array(child)) {
			return body_fail(err, PAY_EFORM, name,
					 "Parameter '%.100s' conflicts with another: a field cannot be both"
					 " a value and a list or object.", name);
		}
		parent = child;
	}
	return PAY_OK;
}

int form_decode(const char *buf, size_t len, json_t **root, struct body_error *err)
{
	char name[3 * FORM_MAX_NAME + 1];   /* what the encoded length allows; checked after decoding */
	const char *p = buf, *end = buf + len, *amp, *eq;
	char *value = NULL;
	size_t name_len, value_len, fields = 0;
	json_t *obj = NULL, *check;
	int rc = PAY_ENOMEM;

	*root = NULL;
	obj = json_object();
	value = malloc(len + 1);
	if (obj == NULL || value == NULL)
		goto out;
	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		if (amp == p) {   /* an empty pair */
			p++;
			continue;
		}
		if (++fields > FORM_MAX_FIELDS) {
			rc = body_fail(err, PAY_EFORM, NULL, "The form has more than %d fields.",
				       FORM_MAX_FIELDS);
			goto out;
		}
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL)
			eq = amp;
		/* A name decodes to at most as many bytes as it has: check the encoded length first. */
		if ((size_t)(eq - p) > 3 * FORM_MAX_NAME ||
		    !form_unescape(p, (size_t)(eq - p), name, &name_len) || name_len > FORM_MAX_NAME) {
			rc = body_fail(err, PAY_EFORM, NULL,
				       "A parameter name is malformed (a bad %% escape or a NUL byte)"
				       " or longer than %d bytes.", FORM_MAX_NAME);
			goto out;
		}
		name[name_len] = '\0';
		if ((check = json_stringn(name, name_len)) == NULL) {
			rc = body_fail(err, PAY_EFORM, NULL, "A parameter name is not valid UTF-8.");
			goto out;
		}
		json_decref(check);
		value_len = 0;
		if (eq < amp && !form_unescape(eq + 1, (size_t)(amp - eq - 1), value, &value_len)) {
			rc = body_fail(err, PAY_EFORM, name,
				       "Invalid value of '%.100s': a bad %% escape or a NUL byte.", name);
			goto out;
		}
		rc = form_store(obj, name, value, value_len, err);
		if (rc != PAY_OK)
			goto out;
		p = amp;
	}
	*root = obj;   /* ownership passes to the caller */
	obj = NULL;
	rc = PAY_OK;
out:
	if (rc == PAY_ENOMEM)
		body_fail(err, PAY_ENOMEM, NULL, NULL);
	json_decref(obj);
	free(value);
	return rc;
}

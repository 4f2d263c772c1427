/* fuzz_body.c - libFuzzer target for generic request bodies: body_load, body_check_fields and the getters. */
#include <jansson.h>

#include "body.h"
#include "charge.h"
#include "err.h"
#include "fuzz_common.h"
#include "http.h"

/* Code points of valid UTF-8, counted by decoding (not by the shortcut of charge.c). */
static size_t fuzz_utf8_chars(const char *s, size_t len)
{
	size_t i = 0, n = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		n++;
	}
	return n;
}

/* Whatever a getter refuses must still become a JSON error object with a 4xx status. */
static void fuzz_check_error(int rc, const struct body_error *err)
{
	json_t *obj;

	FUZZ_CHECK(rc < 0 && err->err == rc);
	FUZZ_CHECK(err_info(rc)->status >= 400 && err_info(rc)->status < 500);
	obj = http_error_object(rc, err->param, err->message);
	FUZZ_CHECK(obj != NULL);
	json_decref(obj);
}

static void fuzz_check_string(const json_t *root, const char *key, const json_t *v, size_t max)
{
	struct body_error err;
	const char *out = (const char *)&err;
	int rc, req;

	for (req = 0; req <= 1; req++) {
		memset(&err, 0, sizeof(err));
		rc = body_get_string(root, key, req, max, &out, &err);
		if (json_is_null(v)) {
			FUZZ_CHECK(rc == (req ? PAY_EPARAM_MISSING : PAY_OK) && out == NULL);
		} else if (!json_is_string(v)) {
			FUZZ_CHECK(rc == PAY_EPARAM_TYPE && out == NULL);
		} else if (fuzz_utf8_chars(json_string_value(v), json_string_length(v)) > max) {
			FUZZ_CHECK(rc == PAY_ESTRING_TOO_LONG && out == NULL);
		} else {
			FUZZ_CHECK(rc == PAY_OK && out == json_string_value(v));
		}
		if (rc != PAY_OK) {
			fuzz_check_error(rc, &err);
			/* param is the key, cut (at whole characters) to fit. */
			FUZZ_CHECK(strncmp(err.param, key, strlen(err.param)) == 0);
			FUZZ_CHECK(strlen(err.param) == strlen(key) ||
				   strlen(err.param) + 3 >= sizeof(err.param) - 1);
		}
	}
}

static void fuzz_check_integer(const json_t *root, const char *key, const json_t *v)
{
	struct body_error err;
	long long out = 12345;
	bool present = true;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = body_get_integer(root, key, true, &out, &present, &err);
	if (json_is_integer(v)) {
		FUZZ_CHECK(rc == PAY_OK && present && out == json_integer_value(v));
	} else {
		FUZZ_CHECK(rc == (json_is_null(v) ? PAY_EPARAM_MISSING : PAY_EPARAM_TYPE) && !present);
		fuzz_check_error(rc, &err);
	}
}

static void fuzz_check_metadata(const json_t *root)
{
	const json_t *md = json_object_get(root, "metadata");
	struct body_error err;
	char *text = NULL;
	json_t *back;
	void *a, *b;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = body_get_metadata(root, &text, &err);
	if (rc != PAY_OK) {
		FUZZ_CHECK(rc == PAY_EMETADATA && text == NULL);
		FUZZ_CHECK(strcmp(err.param, "metadata") == 0);
		fuzz_check_error(rc, &err);
		return;
	}
	back = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(json_is_object(back));
	if (md == NULL || json_is_null(md)) {
		FUZZ_CHECK(strcmp(text, "{}") == 0);
	} else {
		FUZZ_CHECK(json_equal(back, md));
		FUZZ_CHECK(json_object_size(back) <= CHARGE_METADATA_MAX_KEYS);
		/* The client's key order is kept. */
		for (a = json_object_iter((json_t *)md), b = json_object_iter(back); a && b;
		     a = json_object_iter_next((json_t *)md, a), b = json_object_iter_next(back, b))
			FUZZ_CHECK(strcmp(json_object_iter_key(a), json_object_iter_key(b)) == 0);
		FUZZ_CHECK(a == NULL && b == NULL);
	}
	json_decref(back);
	free(text);
}

static void fuzz_check_fields(const json_t *root)
{
	static const char *const none[] = { NULL };
	const char **all;
	struct body_error err;
	const char *key, *first = NULL;
	json_t *v;
	size_t n = 0;
	int rc;

	all = calloc(json_object_size(root) + 1, sizeof(*all));
	FUZZ_CHECK(all != NULL);
	json_object_foreach((json_t *)root, key, v) {
		(void)v;
		if (first == NULL)
			first = key;
		all[n++] = key;
	}
	FUZZ_CHECK(body_check_fields(root, all, &err) == PAY_OK);
	memset(&err, 0, sizeof(err));
	rc = body_check_fields(root, none, &err);
	if (first == NULL) {
		FUZZ_CHECK(rc == PAY_OK);
	} else {
		/* The first unknown key is named, as much of it as fits in whole characters. */
		FUZZ_CHECK(rc == PAY_EPARAM_UNKNOWN);
		FUZZ_CHECK(strncmp(err.param, first, strlen(err.param)) == 0);
		FUZZ_CHECK(strlen(err.param) == strlen(first) ||
			   strlen(err.param) + 3 >= sizeof(err.param) - 1);
		fuzz_check_error(rc, &err);
	}
	free(all);
}

static void fuzz_one(const uint8_t *data, size_t size)
{
	struct body_error err;
	json_t *root = (json_t *)&err, *v;
	const char *key;
	size_t seen = 0;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = body_load((const char *)data, size, &root, &err);
	if (rc != PAY_OK) {
		FUZZ_CHECK(rc == PAY_EJSON && root == NULL && err.message[0] != '\0');
		fuzz_check_error(rc, &err);
		return;
	}
	FUZZ_CHECK(json_is_object(root));
	fuzz_check_fields(root);
	json_object_foreach(root, key, v) {
		if (seen++ == 8)
			break;
		fuzz_check_string(root, key, v, CHARGE_METADATA_KEY_MAX);
		fuzz_check_string(root, key, v, 3);
		fuzz_check_integer(root, key, v);
	}
	fuzz_check_metadata(root);
	json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_on_worker_stack(fuzz_one, data, size);
	return 0;
}

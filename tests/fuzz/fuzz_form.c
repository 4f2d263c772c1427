/* fuzz_form.c - libFuzzer target for form bodies (form_decode, and the create and update parsers on forms). */
#include "fuzz_common.h"

#include <jansson.h>
#include <sodium.h>

#include "body.h"
#include "canon.h"
#include "chargereq.h"
#include "err.h"
#include "form.h"
#include "refundreq.h"
#include "updatereq.h"

/* A growing output buffer for the re-encoder. */
struct fuzz_buf {
	char *p;
	size_t len, cap;
};

static void fuzz_put(struct fuzz_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		FUZZ_CHECK(b->p != NULL);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Appends s percent-encoded: everything but [0-9A-Za-z] becomes %XX (so '+' and '%' survive). */
static void fuzz_put_escaped(struct fuzz_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3];
	size_t i;

	for (i = 0; i < n; i++) {
		if (fuzz_is_base62(s[i])) {
			fuzz_put(b, s + i, 1);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[(unsigned char)s[i] >> 4];
		esc[2] = hex[(unsigned char)s[i] & 15];
		fuzz_put(b, esc, 3);
	}
}

/*
 * Writes v back as form fields under name (already encoded), the way the
 * Stripe SDKs do: objects as name[key], arrays as name[i]. Every leaf of a
 * decoded form is a string and no container is empty.
 */
static void fuzz_encode(struct fuzz_buf *b, struct fuzz_buf *name, const json_t *v, int depth)
{
	size_t mark = name->len, i;
	const char *key;
	json_t *item;
	char idx[24];

	FUZZ_CHECK(depth <= FORM_MAX_DEPTH + 1);
	if (json_is_string(v)) {
		if (b->len > 0)
			fuzz_put(b, "&", 1);
		fuzz_put(b, name->p, name->len);
		fuzz_put(b, "=", 1);
		fuzz_put_escaped(b, json_string_value(v), json_string_length(v));
		return;
	}
	if (json_is_object(v)) {
		FUZZ_CHECK(json_object_size(v) > 0);
		json_object_foreach((json_t *)v, key, item) {
			fuzz_put(name, "[", 1);
			fuzz_put_escaped(name, key, strlen(key));
			fuzz_put(name, "]", 1);
			fuzz_encode(b, name, item, depth + 1);
			name->len = mark;
		}
		return;
	}
	FUZZ_CHECK(json_is_array(v) && json_array_size(v) > 0);
	json_array_foreach(v, i, item) {
		snprintf(idx, sizeof(idx), "[%zu]", i);
		fuzz_put(name, idx, strlen(idx));
		fuzz_encode(b, name, item, depth + 1);
		name->len = mark;
	}
}

/* A refusal names a real error, leaves no root, and says something in valid UTF-8. */
static void fuzz_check_refused(int rc, const json_t *root, const struct body_error *err)
{
	json_t *s;

	FUZZ_CHECK(rc == PAY_EFORM || rc == PAY_ENOMEM);
	FUZZ_CHECK(err->err == rc);
	FUZZ_CHECK(root == NULL);
	FUZZ_CHECK(rc == PAY_ENOMEM || err->message[0] != '\0');
	s = json_string(err->param);
	FUZZ_CHECK(s != NULL);
	json_decref(s);
	s = json_string(err->message);
	FUZZ_CHECK(s != NULL);
	json_decref(s);
}

/* Re-encoding the decoded object gives a form that decodes to the same object. */
static void fuzz_check_round_trip(const json_t *root)
{
	struct fuzz_buf out = { 0 }, name = { 0 };
	struct body_error err;
	const char *key;
	json_t *item, *again = NULL;

	json_object_foreach((json_t *)root, key, item) {
		name.len = 0;
		fuzz_put_escaped(&name, key, strlen(key));
		fuzz_encode(&out, &name, item, 0);
	}
	memset(&err, 0, sizeof(err));
	FUZZ_CHECK(form_decode(out.p ? out.p : "", out.len, &again, &err) == PAY_OK);
	FUZZ_CHECK(json_equal(again, (json_t *)root));
	json_decref(again);
	free(out.p);
	free(name.p);
}

/* As fuzz_check_requests, for an update of each kind (POST /v1/charges/{id}, /v1/refunds/{id}). */
static void fuzz_check_update(const uint8_t *data, size_t size, enum updatereq_kind kind,
			      const char *id)
{
	struct updatereq u, uj;
	struct body_error err;
	char *text;

	memset(&err, 0, sizeof(err));
	if (updatereq_parse_as(&u, kind, id, (const char *)data, size, BODY_FORMAT_FORM, &err) == PAY_OK) {
		text = canon_dump(u.root);
		FUZZ_CHECK(text != NULL);
		FUZZ_CHECK(updatereq_parse_as(&uj, kind, id, text, strlen(text), BODY_FORMAT_JSON,
					      &err) == PAY_OK);
		FUZZ_CHECK(memcmp(uj.fingerprint, u.fingerprint, sizeof(u.fingerprint)) == 0);
		FUZZ_CHECK((uj.metadata_json == NULL) == (u.metadata_json == NULL));
		FUZZ_CHECK((uj.description == NULL) == (u.description == NULL));
		updatereq_fini(&uj);
		free(text);
	} else {
		FUZZ_CHECK(err.err != PAY_OK && u.root == NULL);
	}
	updatereq_fini(&u);
}

/*
 * A form that makes a valid charge makes the same charge, with the same
 * fingerprint, when its decoded object is sent as JSON: a request sent once
 * as JSON and retried as a form replays. Likewise refunds and updates.
 */
static void fuzz_check_requests(const uint8_t *data, size_t size)
{
	struct chargereq c, cj;
	struct refundreq r, rj;
	struct body_error err;
	json_t *a, *b;
	char *text;

	memset(&err, 0, sizeof(err));
	if (chargereq_parse_as(&c, (const char *)data, size, BODY_FORMAT_FORM, &err) == PAY_OK) {
		text = canon_dump(c.root);
		FUZZ_CHECK(text != NULL);
		FUZZ_CHECK(chargereq_parse(&cj, text, strlen(text), &err) == PAY_OK);
		FUZZ_CHECK(memcmp(cj.fingerprint, c.fingerprint, sizeof(c.fingerprint)) == 0);
		FUZZ_CHECK(cj.amount == c.amount && cj.outcome == c.outcome && cj.capture == c.capture);
		a = json_loads(cj.metadata_json, 0, NULL);   /* canon_dump sorted the keys */
		b = json_loads(c.metadata_json, 0, NULL);
		FUZZ_CHECK(a != NULL && b != NULL && json_equal(a, b));
		json_decref(a);
		json_decref(b);
		chargereq_fini(&cj);
		free(text);
	} else {
		FUZZ_CHECK(err.err != PAY_OK && c.root == NULL);
	}
	chargereq_fini(&c);
	memset(&err, 0, sizeof(err));
	if (refundreq_parse_as(&r, (const char *)data, size, BODY_FORMAT_FORM, &err) == PAY_OK) {
		text = canon_dump(r.root);
		FUZZ_CHECK(text != NULL);
		FUZZ_CHECK(refundreq_parse(&rj, text, strlen(text), &err) == PAY_OK);
		FUZZ_CHECK(memcmp(rj.fingerprint, r.fingerprint, sizeof(r.fingerprint)) == 0);
		refundreq_fini(&rj);
		free(text);
	} else {
		FUZZ_CHECK(err.err != PAY_OK && r.root == NULL);
	}
	refundreq_fini(&r);
	fuzz_check_update(data, size, UPDATEREQ_CHARGE, "ch_0123456789abcdefABCDEFgh");
	fuzz_check_update(data, size, UPDATEREQ_REFUND, "re_0123456789abcdefABCDEFgh");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_CHECK(sodium_init() >= 0);
	return 0;
}

static void fuzz_one(const uint8_t *data, size_t size)
{
	struct body_error err;
	json_t *root = (json_t *)&err;   /* form_decode must set it either way */
	int rc;

	memset(&err, 0, sizeof(err));
	rc = form_decode((const char *)data, size, &root, &err);
	if (rc != PAY_OK) {
		fuzz_check_refused(rc, root, &err);
	} else {
		FUZZ_CHECK(json_is_object(root));
		fuzz_check_round_trip(root);
		json_decref(root);
	}
	fuzz_check_requests(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_on_worker_stack(fuzz_one, data, size);
	return 0;
}

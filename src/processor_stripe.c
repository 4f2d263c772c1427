/*
 * processor_stripe.c - the Stripe connector: form-encoded POST /v1/charges
 * with Idempotency-Key = our charge id, and the answer sorted into
 * succeeded, failed (definitive) or unknown.
 */
#include "processor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "charge.h"
#include "err.h"

#define STRIPE_RESPONSE_MAX (256 * 1024)

struct stripe_ctx {
	CURL *easy;                  /* reused: keep-alive to the processor */
	char *url;                   /* {PROCESSOR_URL}/v1/charges */
	char *auth;                  /* "Authorization: Bearer ..." */
	char *version;               /* "Stripe-Version: ..." or NULL */
	long long timeout_ms;
};

/* A growing response body, capped. */
struct stripe_buf {
	char *data;
	size_t len;
	bool too_long;
};

/* The request being made, for the progress callback. */
struct stripe_call {
	const struct processor_charge *in;
	bool sent_reported;
};

static size_t stripe_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct stripe_buf *b = userdata;
	size_t n = size * nmemb;
	char *grown;

	if (b->len + n > STRIPE_RESPONSE_MAX) {
		b->too_long = true;
		return 0;
	}
	grown = realloc(b->data, b->len + n + 1);
	if (grown == NULL)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int stripe_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			   curl_off_t ulnow)
{
	struct stripe_call *call = clientp;

	(void)dltotal;
	(void)dlnow;
	if (!call->sent_reported && ultotal > 0 && ulnow == ultotal) {
		call->sent_reported = true;
		if (call->in->on_sent != NULL)
			call->in->on_sent();
	}
	return 0;
}

static void *stripe_create(const struct cfg *cfg)
{
	struct stripe_ctx *s = calloc(1, sizeof(*s));
	size_t n;

	if (s == NULL)
		return NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	s->easy = curl_easy_init();
	n = strlen(cfg->processor_url);
	while (n > 0 && cfg->processor_url[n - 1] == '/')
		n--;
	s->url = malloc(n + sizeof("/v1/charges"));
	s->auth = malloc(strlen(cfg->processor_key) + sizeof("Authorization: Bearer "));
	if (s->easy == NULL || s->url == NULL || s->auth == NULL)
		goto fail;
	memcpy(s->url, cfg->processor_url, n);
	strcpy(s->url + n, "/v1/charges");
	sprintf(s->auth, "Authorization: Bearer %s", cfg->processor_key);
	if (cfg->processor_stripe_version[0] != '\0') {
		s->version = malloc(strlen(cfg->processor_stripe_version) + sizeof("Stripe-Version: "));
		if (s->version == NULL)
			goto fail;
		sprintf(s->version, "Stripe-Version: %s", cfg->processor_stripe_version);
	}
	s->timeout_ms = cfg->processor_timeout_ms;
	return s;
fail:
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy);
	free(s->url);
	free(s->auth);
	free(s->version);
	free(s);
	curl_global_cleanup();
	return NULL;
}

static void stripe_destroy(void *ctx)
{
	struct stripe_ctx *s = ctx;

	if (s == NULL)
		return;
	curl_easy_cleanup(s->easy);
	free(s->url);
	free(s->auth);
	free(s->version);
	free(s);
	curl_global_cleanup();
}

/* Appends "&name=value" (value escaped) to the form f. Returns 0, or -1 on ENOMEM. */
static int stripe_form_add(CURL *easy, char **f, size_t *len, const char *name, const char *value)
{
	char *ename = curl_easy_escape(easy, name, 0), *evalue = curl_easy_escape(easy, value, 0);
	size_t add;
	char *grown;
	int rc = -1;

	if (ename == NULL || evalue == NULL)
		goto out;
	add = strlen(ename) + strlen(evalue) + 2;
	grown = realloc(*f, *len + add + 1);
	if (grown == NULL)
		goto out;
	*f = grown;
	*len += (size_t)sprintf(*f + *len, "%s%s=%s", *len ? "&" : "", ename, evalue);
	rc = 0;
out:
	curl_free(ename);
	curl_free(evalue);
	return rc;
}

/*
 * The form of a charge: always the same bytes for the same charge, so a
 * retry under the same Idempotency-Key is the same request. Our charge id
 * goes into metadata[payments_charge] too, so the processor's list of
 * charges can be matched to ours (reconcile). Caller frees with free().
 */
static char *stripe_form(CURL *easy, const struct processor_charge *in)
{
	json_t *meta = NULL, *v;
	const char *k;
	/* "metadata[" + a key of up to 40 characters of up to 4 UTF-8 bytes + "]". */
	char *f = NULL, amount[24], name[CHARGE_METADATA_KEY_MAX * 4 + 16];
	size_t len = 0;
	int bad = 0;

	snprintf(amount, sizeof(amount), "%lld", in->amount);
	bad |= stripe_form_add(easy, &f, &len, "amount", amount);
	bad |= stripe_form_add(easy, &f, &len, "currency", in->currency);
	bad |= stripe_form_add(easy, &f, &len, "source", in->source);
	if (in->description != NULL)
		bad |= stripe_form_add(easy, &f, &len, "description", in->description);
	meta = json_loads(in->metadata_json != NULL ? in->metadata_json : "{}", 0, NULL);
	json_object_foreach(meta, k, v) {
		if (!json_is_string(v) || strcmp(k, "payments_charge") == 0 ||
		    (size_t)snprintf(name, sizeof(name), "metadata[%s]", k) >= sizeof(name))
			continue;
		bad |= stripe_form_add(easy, &f, &len, name, json_string_value(v));
	}
	bad |= stripe_form_add(easy, &f, &len, "metadata[payments_charge]", in->charge_id);
	json_decref(meta);
	if (bad) {
		free(f);
		f = NULL;
	}
	return f;
}

/* Copies a string member of obj (may be NULL) into dst. */
static void stripe_copy(char *dst, size_t size, json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));

	snprintf(dst, size, "%s", v != NULL ? v : "");
}

/* Sorts a response that arrived into out (see the connector contract in processor.h). */
static void stripe_classify(long status, const struct stripe_buf *b, struct processor_result *out)
{
	json_t *root = b->data != NULL ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	json_t *err = json_object_get(root, "error");   /* borrowed */
	const char *type = json_string_value(json_object_get(err, "type"));
	const char *st = json_string_value(json_object_get(root, "status"));

	out->outcome = PROCESSOR_UNKNOWN;
	if (status >= 200 && status < 300 && json_is_object(root)) {
		stripe_copy(out->ref, sizeof(out->ref), root, "id");
		if (st != NULL && strcmp(st, "succeeded") == 0) {
			out->outcome = PROCESSOR_SUCCEEDED;
		} else if (st != NULL && strcmp(st, "failed") == 0) {
			out->outcome = PROCESSOR_FAILED;
			stripe_copy(out->failure_code, sizeof(out->failure_code), root, "failure_code");
		}
		snprintf(out->detail, sizeof(out->detail), "%ld status %s", status, st ? st : "?");
	} else if (status == 402 && type != NULL && strcmp(type, "card_error") == 0) {
		out->outcome = PROCESSOR_FAILED;
		stripe_copy(out->ref, sizeof(out->ref), err, "charge");
		stripe_copy(out->failure_code, sizeof(out->failure_code), err, "code");
		stripe_copy(out->decline_code, sizeof(out->decline_code), err, "decline_code");
		snprintf(out->detail, sizeof(out->detail), "402 %s", out->decline_code);
	} else if (status == 400 && type != NULL && strcmp(type, "invalid_request_error") == 0) {
		/* The processor refused the request itself: no charge was made, nor will be. */
		out->outcome = PROCESSOR_FAILED;
		stripe_copy(out->failure_code, sizeof(out->failure_code), err, "code");
		snprintf(out->detail, sizeof(out->detail), "400 %s", out->failure_code);
	} else {
		/* 5xx, 409 (in use), 429, 401, an idempotency_error, an unreadable body: unknown. */
		snprintf(out->detail, sizeof(out->detail), "%ld %s", status, type ? type : "no error type");
	}
	if (out->outcome == PROCESSOR_FAILED && out->failure_code[0] == '\0')
		snprintf(out->failure_code, sizeof(out->failure_code), "processing_error");
	json_decref(root);
}

static int stripe_charge(void *ctx, const struct processor_charge *in, struct processor_result *out)
{
	struct stripe_ctx *s = ctx;
	struct stripe_buf b = { 0 };
	struct stripe_call call = { in, false };
	struct curl_slist *h = NULL, *t;
	struct timespec t0, t1;
	char idem[160], *form = NULL;
	CURLcode cc;
	int rc = PAY_ENOMEM;

	memset(out, 0, sizeof(*out));
	out->outcome = PROCESSOR_UNKNOWN;
	form = stripe_form(s->easy, in);
	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", in->charge_id);
	if (form == NULL)
		goto out;
	h = curl_slist_append(NULL, s->auth);
	if (h == NULL || (t = curl_slist_append(h, idem)) == NULL)
		goto out;
	if ((t = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded")) == NULL)
		goto out;
	if (s->version != NULL && (t = curl_slist_append(h, s->version)) == NULL)
		goto out;
	curl_easy_reset(s->easy);
	curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
	curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(s->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(s->easy, CURLOPT_PROXY, "");   /* never the environment's */
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form));
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(s->timeout_ms < 5000 ? s->timeout_ms : 5000));
	curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, stripe_write);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(s->easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(s->easy, CURLOPT_XFERINFOFUNCTION, stripe_progress);
	curl_easy_setopt(s->easy, CURLOPT_XFERINFODATA, &call);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cc = curl_easy_perform(s->easy);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out->latency_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (cc != CURLE_OK) {
		/* No complete answer: the processor may or may not have charged. */
		snprintf(out->detail, sizeof(out->detail), "transport: %s", curl_easy_strerror(cc));
	} else {
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &out->http_status);
		stripe_classify(out->http_status, &b, out);
	}
	rc = PAY_OK;
out:
	curl_slist_free_all(h);
	free(form);
	free(b.data);
	return rc;
}

/* Copies one charge object of a list into l. */
static void stripe_listed(json_t *obj, struct processor_listed *l)
{
	json_t *amount = json_object_get(obj, "amount");

	stripe_copy(l->ref, sizeof(l->ref), obj, "id");
	stripe_copy(l->our_id, sizeof(l->our_id), json_object_get(obj, "metadata"), "payments_charge");
	stripe_copy(l->status, sizeof(l->status), obj, "status");
	stripe_copy(l->failure_code, sizeof(l->failure_code), obj, "failure_code");
	stripe_copy(l->decline_code, sizeof(l->decline_code), obj, "decline_code");
	l->amount = json_is_integer(amount) ? (long long)json_integer_value(amount) : -1;
}

static int stripe_list(void *ctx, long long since, const char *starting_after,
		       struct processor_page *out)
{
	struct stripe_ctx *s = ctx;
	struct stripe_buf b = { 0 };
	struct curl_slist *h = NULL;
	json_t *root = NULL, *data, *obj;
	char *url = NULL, *after = NULL;
	long status = 0;
	size_t i, len;
	int rc = PAY_ENOMEM;

	memset(out, 0, sizeof(*out));
	after = starting_after != NULL ? curl_easy_escape(s->easy, starting_after, 0) : NULL;
	len = strlen(s->url) + 96 + (after != NULL ? strlen(after) : 0);
	url = malloc(len);
	h = curl_slist_append(NULL, s->auth);
	if (url == NULL || h == NULL || (starting_after != NULL && after == NULL))
		goto out;
	if (s->version != NULL && curl_slist_append(h, s->version) == NULL)
		goto out;
	snprintf(url, len, "%s?limit=100&created%%5Bgte%%5D=%lld%s%s", s->url, since,
		 after != NULL ? "&starting_after=" : "", after != NULL ? after : "");
	curl_easy_reset(s->easy);
	curl_easy_setopt(s->easy, CURLOPT_URL, url);
	curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(s->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, stripe_write);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &b);
	rc = PAY_EUNAVAILABLE;
	if (curl_easy_perform(s->easy) != CURLE_OK)
		goto out;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	root = status == 200 && b.data != NULL ? json_loadb(b.data, b.len, 0, NULL) : NULL;
	data = json_object_get(root, "data");   /* borrowed */
	if (!json_is_array(data))
		goto out;
	rc = PAY_ENOMEM;
	if (json_array_size(data) > 0) {
		out->items = calloc(json_array_size(data), sizeof(*out->items));
		if (out->items == NULL)
			goto out;
	}
	json_array_foreach(data, i, obj)
		stripe_listed(obj, &out->items[out->n++]);
	out->has_more = json_is_true(json_object_get(root, "has_more"));
	rc = PAY_OK;
out:
	json_decref(root);
	curl_slist_free_all(h);
	curl_free(after);
	free(url);
	free(b.data);
	return rc;
}

const struct processor_connector processor_stripe = {
	"stripe", stripe_create, stripe_destroy, stripe_charge, stripe_list,
};

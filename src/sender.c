/* sender.c - outbound webhook HTTP: many POSTs at once over reused connections (libcurl). */
#include "sender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "err.h"
#include "urlcheck.h"

#define SENDER_MAX_HOST_CONNECTIONS 32

struct sender {
	CURLM *multi;              /* owns the connection cache: keep-alive across batches */
	long long connect_timeout_ms;
	long long timeout_ms;
	bool allow_private;
};

/* Per-transfer state: the headers and where the result goes. */
struct sender_xfer {
	CURL *easy;
	struct curl_slist *headers;
	struct sender_result *result;
	bool blocked;              /* refused by the private-address guard */
};

static size_t sender_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;   /* the receiver's body is not needed */
}

static int sender_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
			 int local_port)
{
	struct sender_xfer *x = clientp;

	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	if (urlcheck_ip_private(primary_ip)) {
		x->blocked = true;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

struct sender *sender_create(long long connect_timeout_ms, long long timeout_ms, bool allow_private)
{
	struct sender *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	s->multi = curl_multi_init();
	if (s->multi == NULL) {
		free(s);
		return NULL;
	}
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)SENDER_MAX_HOST_CONNECTIONS);
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 256L);
	s->connect_timeout_ms = connect_timeout_ms;
	s->timeout_ms = timeout_ms;
	s->allow_private = allow_private;
	return s;
}

void sender_destroy(struct sender *s)
{
	if (s == NULL)
		return;
	curl_multi_cleanup(s->multi);
	curl_global_cleanup();
	free(s);
}

/* Prepares one transfer. Returns PAY_OK or PAY_ENOMEM. */
static int sender_prepare(struct sender *s, const struct sender_msg *m, struct sender_xfer *x)
{
	char line[256];
	struct curl_slist *h = NULL;
	int i;
	const char *fixed[] = { "Content-Type: application/json", "User-Agent: payments-webhooks/1",
				"Expect:", NULL };

	x->easy = curl_easy_init();
	if (x->easy == NULL)
		return PAY_ENOMEM;
	for (i = 0; fixed[i] != NULL; i++)
		x->headers = curl_slist_append(x->headers, fixed[i]);
	snprintf(line, sizeof(line), "webhook-id: %s", m->msg_id);
	x->headers = curl_slist_append(x->headers, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %lld", m->timestamp);
	x->headers = curl_slist_append(x->headers, line);
	snprintf(line, sizeof(line), "webhook-signature: %s", m->signature);
	h = curl_slist_append(x->headers, line);
	if (h == NULL)
		return PAY_ENOMEM;
	x->headers = h;
	curl_easy_setopt(x->easy, CURLOPT_URL, m->url);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, m->body);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->body_len);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, sender_discard);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	if (!s->allow_private) {
		curl_easy_setopt(x->easy, CURLOPT_PREREQFUNCTION, sender_prereq);
		curl_easy_setopt(x->easy, CURLOPT_PREREQDATA, x);
	}
	return PAY_OK;
}

/* Fills x->result from a finished transfer. */
static void sender_finish(struct sender_xfer *x, CURLcode code)
{
	struct sender_result *r = x->result;
	curl_off_t total_us = 0, retry_s = 0;
	long status = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	r->status_code = (int)status;
	r->duration_ms = (int)(total_us / 1000);
	r->retry_after_ms = -1;
	if (code != CURLE_OK) {
		snprintf(r->error, sizeof(r->error), "%s",
			 x->blocked ? "refused: the URL resolves to a private address" :
			 curl_easy_strerror(code));
		return;
	}
	if (status >= 200 && status < 300) {
		r->ok = true;
		r->error[0] = '\0';
		return;
	}
	snprintf(r->error, sizeof(r->error), "HTTP %ld", status);
	if ((status == 429 || status == 503) &&
	    curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry_s) == CURLE_OK && retry_s > 0)
		r->retry_after_ms = (long long)retry_s * 1000;
}

int sender_send(struct sender *s, const struct sender_msg *msgs, struct sender_result *results, int n)
{
	struct sender_xfer *xs = calloc((size_t)(n > 0 ? n : 1), sizeof(*xs));
	struct sender_xfer *x;
	CURLMsg *msg;
	int i, running = 0, left, rc = PAY_OK;

	if (xs == NULL)
		return PAY_ENOMEM;
	for (i = 0; i < n; i++) {
		memset(&results[i], 0, sizeof(results[i]));
		results[i].retry_after_ms = -1;
		snprintf(results[i].error, sizeof(results[i].error), "not sent");
		xs[i].result = &results[i];
		if (sender_prepare(s, &msgs[i], &xs[i]) != PAY_OK) {
			snprintf(results[i].error, sizeof(results[i].error), "out of memory");
			curl_easy_cleanup(xs[i].easy);
			xs[i].easy = NULL;
			continue;
		}
		curl_multi_add_handle(s->multi, xs[i].easy);
	}
	do {
		if (curl_multi_perform(s->multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			sender_finish(x, msg->data.result);
		}
		if (running > 0)
			curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
	} while (running > 0);
	for (i = 0; i < n; i++) {
		if (xs[i].easy != NULL) {
			curl_multi_remove_handle(s->multi, xs[i].easy);
			curl_easy_cleanup(xs[i].easy);
		}
		curl_slist_free_all(xs[i].headers);
	}
	free(xs);
	return rc;
}

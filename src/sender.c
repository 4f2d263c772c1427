/* sender.c - outbound webhook HTTP: many POSTs at once over reused connections (libcurl multi). */
#include "sender.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "err.h"
#include "urlcheck.h"

/* One transfer in flight: its headers, its tag, and the private-address verdict. */
struct sender_xfer {
	CURL *easy;
	struct curl_slist *headers;
	void *tag;
	bool blocked;              /* refused by the private-address guard */
	struct sender_xfer *next;  /* the in-flight list, for sender_cancel_all */
	struct sender_xfer *prev;
};

struct sender {
	CURLM *multi;              /* owns the connection cache: keep-alive across transfers */
	long long connect_timeout_ms;
	long long timeout_ms;
	bool allow_private;
	char *proxy;               /* "" for none: never the environment's */
	int in_flight;
	struct sender_xfer *xfers;
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

/*
 * Every socket curl opens to connect passes through here with the address
 * it is about to connect to: each address a name resolved to, each one
 * happy eyeballs tries, before any packet leaves. A private one is refused
 * (the transfer fails as blocked), so neither a name that resolves inside
 * nor one that changes its answer between checks (DNS rebinding) reaches
 * the internal network, not even with a connection attempt.
 */
static curl_socket_t sender_open_socket(void *clientp, curlsocktype purpose,
					struct curl_sockaddr *address)
{
	struct sender_xfer *x = clientp;
	char ip[INET6_ADDRSTRLEN] = "";
	const void *addr = NULL;

	(void)purpose;
	if (address->family == AF_INET)
		addr = &((const struct sockaddr_in *)(const void *)&address->addr)->sin_addr;
	else if (address->family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)(const void *)&address->addr)->sin6_addr;
	if (addr == NULL || inet_ntop(address->family, addr, ip, sizeof(ip)) == NULL ||
	    urlcheck_ip_private(ip)) {
		x->blocked = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

struct sender *sender_create(long long connect_timeout_ms, long long timeout_ms, int max_per_host,
			     bool allow_private, const char *proxy)
{
	struct sender *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->proxy = strdup(proxy != NULL ? proxy : "");
	if (s->proxy == NULL) {
		free(s);
		return NULL;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	s->multi = curl_multi_init();
	if (s->multi == NULL) {
		curl_global_cleanup();
		free(s->proxy);
		free(s);
		return NULL;
	}
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_per_host);
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)max_per_host);
	s->connect_timeout_ms = connect_timeout_ms;
	s->timeout_ms = timeout_ms;
	s->allow_private = allow_private;
	return s;
}

static void sender_xfer_free(struct sender *s, struct sender_xfer *x)
{
	if (x->prev != NULL)
		x->prev->next = x->next;
	else if (s->xfers == x)
		s->xfers = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	if (x->easy != NULL) {
		curl_multi_remove_handle(s->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	free(x);
}

void sender_destroy(struct sender *s)
{
	if (s == NULL)
		return;
	while (s->xfers != NULL)
		sender_xfer_free(s, s->xfers);
	curl_multi_cleanup(s->multi);
	curl_global_cleanup();
	free(s->proxy);
	free(s);
}

int sender_start(struct sender *s, const struct sender_msg *m, void *tag)
{
	const char *fixed[] = { "Content-Type: application/json", "User-Agent: payments-webhooks/1",
				"Expect:", NULL };
	struct sender_xfer *x = calloc(1, sizeof(*x));
	struct curl_slist *h;
	char line[256];
	int i;

	if (x == NULL)
		return PAY_ENOMEM;
	x->tag = tag;
	x->easy = curl_easy_init();
	if (x->easy == NULL)
		goto fail;
	for (i = 0; fixed[i] != NULL; i++) {
		h = curl_slist_append(x->headers, fixed[i]);
		if (h == NULL)
			goto fail;
		x->headers = h;
	}
	snprintf(line, sizeof(line), "webhook-id: %s", m->msg_id);
	if ((h = curl_slist_append(x->headers, line)) == NULL)
		goto fail;
	x->headers = h;
	snprintf(line, sizeof(line), "webhook-timestamp: %lld", m->timestamp);
	if ((h = curl_slist_append(x->headers, line)) == NULL)
		goto fail;
	x->headers = h;
	snprintf(line, sizeof(line), "webhook-signature: %s", m->signature);
	if ((h = curl_slist_append(x->headers, line)) == NULL)
		goto fail;
	x->headers = h;
	if (m->stripe_signature != NULL && m->stripe_signature[0] != '\0') {
		snprintf(line, sizeof(line), "Stripe-Signature: %s", m->stripe_signature);
		if ((h = curl_slist_append(x->headers, line)) == NULL)
			goto fail;
		x->headers = h;
	}
	curl_easy_setopt(x->easy, CURLOPT_URL, m->url);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->body_len);
	curl_easy_setopt(x->easy, CURLOPT_COPYPOSTFIELDS, m->body);   /* the caller may free its copy */
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, sender_discard);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	/* Explicitly: "" turns off the proxies libcurl would otherwise take from the environment. */
	curl_easy_setopt(x->easy, CURLOPT_PROXY, s->proxy);
	if (!s->allow_private && s->proxy[0] == '\0') {
		curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETFUNCTION, sender_open_socket);
		curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETDATA, x);
		/* And once more on the connection used, a reused one included. */
		curl_easy_setopt(x->easy, CURLOPT_PREREQFUNCTION, sender_prereq);
		curl_easy_setopt(x->easy, CURLOPT_PREREQDATA, x);
	}
	if (curl_multi_add_handle(s->multi, x->easy) != CURLM_OK)
		goto fail;
	x->next = s->xfers;
	if (s->xfers != NULL)
		s->xfers->prev = x;
	s->xfers = x;
	s->in_flight++;
	return PAY_OK;
fail:
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x);
	return PAY_ENOMEM;
}

/* Fills r from a finished transfer. */
static void sender_finish(const struct sender_xfer *x, CURLcode code, struct sender_result *r)
{
	curl_off_t total_us = 0, retry_s = 0;
	long status = 0;

	memset(r, 0, sizeof(*r));
	r->retry_after_ms = -1;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	r->status_code = (int)status;
	r->elapsed_ms = (int)(total_us / 1000);
	r->duration_ms = r->elapsed_ms;
	if (code != CURLE_OK) {
		/* The tenant learns only that no response came; the log keeps why. */
		snprintf(r->error, sizeof(r->error), "%s", SENDER_NO_RESPONSE);
		snprintf(r->detail, sizeof(r->detail), "%s",
			 x->blocked ? "refused: a private address" : curl_easy_strerror(code));
		r->status_code = 0;
		r->duration_ms = 0;
		return;
	}
	if (status >= 200 && status < 300) {
		r->ok = true;
		return;
	}
	snprintf(r->error, sizeof(r->error), "HTTP %ld", status);
	if ((status == 429 || status == 503) &&
	    curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry_s) == CURLE_OK && retry_s > 0)
		r->retry_after_ms = (long long)retry_s * 1000;
}

/* Moves up to max finished transfers into done; the rest stay queued in curl for the next call. */
static int sender_collect(struct sender *s, struct sender_done *done, int max)
{
	struct sender_xfer *x;
	CURLMsg *msg;
	int left, n = 0;

	while (n < max && (msg = curl_multi_info_read(s->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		done[n].tag = x->tag;
		sender_finish(x, msg->data.result, &done[n].result);
		n++;
		s->in_flight--;
		sender_xfer_free(s, x);
	}
	return n;
}

int sender_poll(struct sender *s, long long wait_ms, struct sender_done *done, int max)
{
	int running = 0, n;

	if (s->in_flight == 0)
		return 0;
	curl_multi_perform(s->multi, &running);
	n = sender_collect(s, done, max);
	if (n == 0 && wait_ms > 0) {
		curl_multi_poll(s->multi, NULL, 0, (int)wait_ms, NULL);
		curl_multi_perform(s->multi, &running);
		n = sender_collect(s, done, max);
	}
	return n;
}

int sender_in_flight(const struct sender *s)
{
	return s->in_flight;
}

int sender_cancel_all(struct sender *s, void **tags, int max)
{
	int n = 0;

	while (s->xfers != NULL) {
		if (n < max)
			tags[n++] = s->xfers->tag;
		sender_xfer_free(s, s->xfers);
	}
	s->in_flight = 0;
	return n;
}

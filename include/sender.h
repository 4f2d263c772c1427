/* sender.h - outbound webhook HTTP: many POSTs at once over reused connections (libcurl multi). */
#ifndef PAYMENTS_SENDER_H
#define PAYMENTS_SENDER_H

#include <stdbool.h>
#include <stddef.h>

/* One signed webhook message; copied by sender_start, so the caller may free it at once. */
struct sender_msg {
	const char *url;
	const char *body;
	size_t body_len;
	const char *msg_id;        /* webhook-id */
	long long timestamp;       /* webhook-timestamp */
	const char *signature;     /* webhook-signature */
	const char *stripe_signature;  /* Stripe-Signature; NULL or "" sends none */
};

/*
 * What a tenant may read of a failed attempt (stored, and shown in the
 * delivery's attempt history) when no HTTP response came: one text for a
 * refused, blocked, unresolvable or timed-out connection alike, so the
 * relay cannot be used to map an internal network. The cause is in detail,
 * for the operator's log only.
 */
#define SENDER_NO_RESPONSE "no HTTP response: the connection failed, was refused or timed out"

struct sender_result {
	bool ok;                   /* a 2xx response */
	int status_code;           /* 0 when there was no HTTP response */
	char error[160];           /* "" on success; SENDER_NO_RESPONSE without a response */
	char detail[160];          /* the cause, for the log only; "" when error says it all */
	int duration_ms;           /* 0 without a response: its timing would tell the cause */
	int elapsed_ms;            /* how long the attempt took, for the log */
	long long retry_after_ms;  /* from a 429/503 Retry-After, else -1 */
};

/* A finished transfer: the tag given to sender_start and what happened. */
struct sender_done {
	void *tag;
	struct sender_result result;
};

struct sender;

/*
 * Creates a sender with per-attempt connect and total timeouts, opening up
 * to max_per_host connections to one host: as many as there may be attempts
 * in flight, since a transfer waiting in curl's queue for a connection would
 * spend its timeout there. Unless allow_private, a connection to a loopback,
 * private or link-local address is refused after resolving (so DNS cannot
 * smuggle one past the API's check). Requests go through proxy (a libcurl
 * proxy URL) when it is non-empty, and never through a proxy named by the
 * environment (http_proxy, HTTPS_PROXY, ALL_PROXY...); with a proxy the
 * address guard is off, as the only address connected to is the proxy's:
 * the proxy must refuse internal destinations itself.
 */
struct sender *sender_create(long long connect_timeout_ms, long long timeout_ms, int max_per_host,
			     bool allow_private, const char *proxy);
void sender_destroy(struct sender *s);

/*
 * Starts sending m in the background; tag comes back with its result from
 * sender_poll. Returns PAY_OK or PAY_ENOMEM.
 */
int sender_start(struct sender *s, const struct sender_msg *m, void *tag)
	__attribute__((warn_unused_result));

/*
 * Drives the transfers for at most wait_ms (returning as soon as one
 * finishes) and stores up to max finished ones in done. A slow receiver
 * never holds back the others. Returns how many finished.
 */
int sender_poll(struct sender *s, long long wait_ms, struct sender_done *done, int max);

/* Transfers started and not yet returned by sender_poll. */
int sender_in_flight(const struct sender *s);

/* Abandons every unfinished transfer, storing up to max of their tags. Returns how many. */
int sender_cancel_all(struct sender *s, void **tags, int max);

#endif

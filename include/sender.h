/* sender.h - outbound webhook HTTP: many POSTs at once over reused connections (libcurl). */
#ifndef PAYMENTS_SENDER_H
#define PAYMENTS_SENDER_H

#include <stdbool.h>
#include <stddef.h>

/* One signed webhook message; all strings borrowed for the duration of sender_send. */
struct sender_msg {
	const char *url;
	const char *body;
	size_t body_len;
	const char *msg_id;        /* webhook-id */
	long long timestamp;       /* webhook-timestamp */
	const char *signature;     /* webhook-signature */
};

struct sender_result {
	bool ok;                   /* a 2xx response */
	int status_code;           /* 0 when there was no HTTP response */
	char error[160];           /* "" on success */
	int duration_ms;
	long long retry_after_ms;  /* from a 429/503 Retry-After, else -1 */
};

struct sender;

/*
 * Creates a sender with per-attempt connect and total timeouts. Unless
 * allow_private, a connection to a loopback, private or link-local address
 * is refused after resolving (so DNS cannot smuggle one past the API's check).
 */
struct sender *sender_create(long long connect_timeout_ms, long long timeout_ms, bool allow_private);
void sender_destroy(struct sender *s);

/* Sends n messages concurrently and fills results[i] for msgs[i]. Returns PAY_OK or PAY_ENOMEM. */
int sender_send(struct sender *s, const struct sender_msg *msgs, struct sender_result *results, int n)
	__attribute__((warn_unused_result));

#endif

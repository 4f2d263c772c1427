/* relay_nats_pub.h - publishing events to NATS JetStream (libnats): the stream, subjects, ids and acks. */
#ifndef PAYMENTS_RELAY_NATS_PUB_H
#define PAYMENTS_RELAY_NATS_PUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELAY_NATS_PUB_CONNECT_TIMEOUT_MS 2000   /* one connection attempt, and the write deadline */
#define RELAY_NATS_PUB_ACK_WAIT_MS 5000          /* longest wait for a publish acknowledgement */
#define RELAY_NATS_PUB_RETRY_MIN_MS 200          /* the first retry delay after a failure */
#define RELAY_NATS_PUB_RETRY_MAX_MS 10000        /* the cap of the doubling retry delay */
#define RELAY_NATS_PUB_SUBJECT_MAX 256
#define RELAY_NATS_PUB_PREFIX_MAX 128
#define RELAY_NATS_PUB_STREAM_MAX 64
#define RELAY_NATS_PUB_ERROR_MAX 256

struct relay_nats_pub;

/* One event to publish; acked and duplicate are set by relay_nats_pub_publish. */
struct relay_nats_pub_msg {
	const char *event_id;   /* sent as the Nats-Msg-Id header: the server drops a repeat */
	const char *type;       /* the subject is <prefix>.<type> */
	const char *body;
	size_t body_len;
	bool acked;             /* the stream holds the event (now, or already: duplicate) */
	bool duplicate;         /* the server had it already and dropped this copy */
};

/*
 * Connects to url (one server or a comma-separated list; credentials may be
 * in the URL), and creates the stream (file storage, subjects <prefix>.>,
 * the duplicate window window_ms) or checks an existing one: its subjects
 * must include <prefix>.> and its storage must be file; a shorter duplicate
 * window is raised to window_ms. The connection does not reconnect by
 * itself: when it breaks, destroy it and create another.
 * Returns PAY_OK and *out (free with relay_nats_pub_destroy), PAY_EUNAVAILABLE
 * (NATS unreachable, JetStream off or not answering), PAY_ECONFIG (the
 * stream exists with another configuration) or PAY_ENOMEM; on failure err
 * (errlen bytes) says why. stream and prefix must have passed
 * relay_nats_pub_valid_stream and relay_nats_pub_valid_prefix.
 */
int relay_nats_pub_create(const char *url, const char *stream, const char *prefix, long long window_ms,
		   struct relay_nats_pub **out, char *err, size_t errlen) __attribute__((warn_unused_result));
void relay_nats_pub_destroy(struct relay_nats_pub *np);

/* True while the connection is up. */
bool relay_nats_pub_connected(struct relay_nats_pub *np);

/*
 * Publishes n events asynchronously (no round trip per event) and waits up
 * to RELAY_NATS_PUB_ACK_WAIT_MS for every acknowledgement. msgs[i].acked tells
 * which ones the stream holds; only those may be counted as published.
 * Returns PAY_OK when all were acknowledged, otherwise PAY_EUNAVAILABLE and
 * relay_nats_pub_error() says what went wrong first. msgs must stay valid until
 * the call returns; nothing refers to them afterwards.
 */
int relay_nats_pub_publish(struct relay_nats_pub *np, struct relay_nats_pub_msg *msgs, int n)
	__attribute__((warn_unused_result));

/* The first error of the last relay_nats_pub_publish, or "". Valid until the next call. */
const char *relay_nats_pub_error(struct relay_nats_pub *np);

/* Releases libnats' global resources; call once, after the last relay_nats_pub_destroy. */
void relay_nats_pub_shutdown(void);

/* Pure helpers (no connection), tested in tests/unit/test_relay_nats_pub.c. */

/* A stream name: 1..RELAY_NATS_PUB_STREAM_MAX printable characters without space, . * > / or \. */
bool relay_nats_pub_valid_stream(const char *name);

/*
 * A subject prefix: dot-separated tokens, none empty, of printable
 * characters without space, * or >, at most RELAY_NATS_PUB_PREFIX_MAX in all.
 */
bool relay_nats_pub_valid_prefix(const char *prefix);

/*
 * Writes "<prefix>.<type>" into buf (size bytes). type must be one or more
 * non-empty tokens like the prefix's. Returns PAY_OK or PAY_EPARAM_INVALID.
 */
int relay_nats_pub_subject(const char *prefix, const char *type, char *buf, size_t size)
	__attribute__((warn_unused_result));

/*
 * The longest a relay may take to publish an event again after a first
 * publish that it could not record (a crash, or a lost acknowledgement):
 * the claim's lease (or the acknowledgement wait, if longer) plus the retry
 * cap. The stream's duplicate window must exceed it.
 */
long long relay_nats_pub_republish_bound_ms(long long lease_ms);

/*
 * The delay before the next attempt after `failures` consecutive failures
 * (>= 1): RELAY_NATS_PUB_RETRY_MIN_MS doubled each time, capped at
 * RELAY_NATS_PUB_RETRY_MAX_MS, less up to 20% jitter drawn from rnd.
 */
long long relay_nats_pub_retry_delay_ms(int failures, uint32_t rnd);

#endif

/* http_deadline.h - the whole-request deadline: a watchdog that cuts off a request still reading past it. */
#ifndef PAYMENTS_HTTP_DEADLINE_H
#define PAYMENTS_HTTP_DEADLINE_H

#include <stdbool.h>

struct mg_connection;
struct http_deadline;

/*
 * Starts the watchdog thread, with room for nslots reads at once (one per
 * HTTP worker thread). Returns NULL when out of memory or threads.
 */
struct http_deadline *http_deadline_create(int nslots);

/* Stops the thread and frees the watchdog; nothing may be armed any more. NULL is fine. */
void http_deadline_destroy(struct http_deadline *d);

/*
 * Arms a deadline for socket fd at at_ms (CLOCK_MONOTONIC milliseconds):
 * should the read still be going on then, the watchdog shuts the socket
 * down for reading, so the blocked read returns at once with what it has.
 * Returns the slot to disarm, or -1 when every slot is taken (then nothing
 * watches this read).
 */
int http_deadline_arm(struct http_deadline *d, int fd, long long at_ms);

/* Disarms slot (-1 is fine). Returns true when the deadline had fired. */
bool http_deadline_disarm(struct http_deadline *d, int slot);

/* CLOCK_MONOTONIC in milliseconds. */
long long http_deadline_now_ms(void);

/* What is kept per connection (civetweb's connection data). */
struct http_conn_state {
	long long opened_ms;   /* when a worker took the connection up */
	int fd;                /* its socket once looked up, else -1 */
	int requests;          /* requests answered on it */
	bool counted;          /* counted against its client's connection cap, as client */
	char client[48];       /* the peer address it was counted as */
	bool refused;          /* over the cap: answered 503 at once, nothing more */
};

/*
 * For civetweb's init_connection and connection_close callbacks: creates
 * the state of a new connection into *conn_data (NULL when out of memory),
 * and frees it. Returns 0.
 */
int http_deadline_conn_open(const struct mg_connection *conn, void **conn_data);
void http_deadline_conn_close(const struct mg_connection *conn);

/* The state of conn, or NULL. */
struct http_conn_state *http_deadline_conn_state(const struct mg_connection *conn);

/*
 * The socket of conn (looked up once and kept in its state), or -1. ri is
 * conn's request information (mg_get_request_info's, which civetweb
 * withholds until the connection has been set up).
 */
struct mg_request_info;
int http_deadline_conn_fd(const struct mg_connection *conn, const struct mg_request_info *ri);

/*
 * The socket of conn and when its current request began: the connection's
 * start for its first request (its headers' time counts), otherwise
 * fallback_ms. The socket is -1 when it cannot be found.
 */
int http_deadline_conn_socket(struct mg_connection *conn, long long fallback_ms, long long *start_ms);

/* Tells the connection state that a request was answered (the next one is not the first). */
void http_deadline_conn_request_done(struct mg_connection *conn);

#endif

/* metrics_server.h - GET /metrics on an address of its own (civetweb), apart from the API's port. */
#ifndef PAYMENTS_METRICS_SERVER_H
#define PAYMENTS_METRICS_SERVER_H

#include <stdio.h>

struct metrics_server;

/* Writes the Prometheus text exposition of arg to f. Returns 0, or -1 on failure. */
typedef int (*metrics_server_render_fn)(FILE *f, void *arg);

/*
 * Serves GET /metrics on listen (address:port; anything else is 404) with
 * two threads of its own, rendering with render(f, arg) per scrape. arg
 * must outlive the server. Returns NULL (after logging) when the port
 * cannot be bound or memory runs out.
 */
struct metrics_server *metrics_server_start(const char *listen, metrics_server_render_fn render,
					    void *arg);

/* Stops serving and frees the server. NULL is fine. */
void metrics_server_stop(struct metrics_server *m);

#endif

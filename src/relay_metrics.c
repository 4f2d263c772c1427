/* relay_metrics.c - the relay's own GET /metrics endpoint (civetweb), on PAYMENTS_RELAY_METRICS_LISTEN. */
#include "relay_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "log.h"

struct relay_metrics {
	struct mg_context *ctx;
};

/* The gauges the relay loop refreshes; the HTTP thread only reads them. */
static pthread_mutex_t relay_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_relay_gauges relay_metrics_gauges;

void relay_metrics_set_gauges(const struct metrics_relay_gauges *g)
{
	pthread_mutex_lock(&relay_metrics_lock);
	relay_metrics_gauges = *g;
	pthread_mutex_unlock(&relay_metrics_lock);
}

static int relay_metrics_handler(struct mg_connection *conn, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct metrics_relay_gauges g;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)cbdata;
	if (strcmp(ri->request_method, "GET") != 0 || strcmp(ri->local_uri, "/metrics") != 0) {
		mg_send_http_error(conn, 404, "%s", "not found");
		return 404;
	}
	pthread_mutex_lock(&relay_metrics_lock);
	g = relay_metrics_gauges;
	pthread_mutex_unlock(&relay_metrics_lock);
	f = open_memstream(&text, &len);
	if (f == NULL || metrics_render_relay(f, &g) != 0) {
		if (f != NULL)
			fclose(f);
		free(text);
		mg_send_http_error(conn, 500, "%s", "cannot render metrics");
		return 500;
	}
	fclose(f);
	mg_send_http_ok(conn, "text/plain; version=0.0.4", (long long)len);
	mg_write(conn, text, len);
	free(text);
	return 200;
}

struct relay_metrics *relay_metrics_start(const char *listen)
{
	const char *options[] = { "listening_ports", listen, "num_threads", "2", NULL };
	struct mg_callbacks callbacks;
	struct relay_metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	memset(&callbacks, 0, sizeof(callbacks));
	mg_init_library(0);
	m->ctx = mg_start(&callbacks, NULL, options);
	if (m->ctx == NULL) {
		log_printf(LOG_ERROR, "relay: cannot serve metrics on %s", listen);
		free(m);
		return NULL;
	}
	mg_set_request_handler(m->ctx, "/", relay_metrics_handler, NULL);
	return m;
}

void relay_metrics_stop(struct relay_metrics *m)
{
	if (m == NULL)
		return;
	mg_stop(m->ctx);
	mg_exit_library();
	free(m);
}

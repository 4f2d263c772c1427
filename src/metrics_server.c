/* metrics_server.c - GET /metrics on an address of its own (civetweb), apart from the API's port. */
#include "metrics_server.h"

#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "log.h"

struct metrics_server {
	struct mg_context *ctx;
	metrics_server_render_fn render;
	void *arg;
};

static int metrics_server_handler(struct mg_connection *conn, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct metrics_server *m = cbdata;
	char *text = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int status = 200;

	if (strcmp(ri->request_method, "GET") != 0 || ri->local_uri == NULL ||
	    strcmp(ri->local_uri, "/metrics") != 0) {
		mg_send_http_error(conn, 404, "%s", "not found");
		status = 404;
		goto out;
	}
	f = open_memstream(&text, &len);
	if (f == NULL || m->render(f, m->arg) != 0) {
		mg_send_http_error(conn, 500, "%s", "cannot render metrics");
		status = 500;
		goto out;
	}
	fclose(f);
	f = NULL;
	mg_send_http_ok(conn, "text/plain; version=0.0.4", (long long)len);
	mg_write(conn, text, len);
out:
	if (f != NULL)
		fclose(f);
	free(text);
	return status;
}

struct metrics_server *metrics_server_start(const char *listen, metrics_server_render_fn render,
					    void *arg)
{
	const char *options[] = { "listening_ports", listen, "num_threads", "2",
				  "request_timeout_ms", "5000", NULL };
	struct mg_callbacks callbacks;
	struct metrics_server *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->render = render;
	m->arg = arg;
	memset(&callbacks, 0, sizeof(callbacks));
	mg_init_library(0);
	m->ctx = mg_start(&callbacks, NULL, options);
	if (m->ctx == NULL) {
		log_printf(LOG_ERROR, "cannot serve metrics on %s", listen);
		mg_exit_library();
		free(m);
		return NULL;
	}
	mg_set_request_handler(m->ctx, "/", metrics_server_handler, m);
	return m;
}

void metrics_server_stop(struct metrics_server *m)
{
	if (m == NULL)
		return;
	mg_stop(m->ctx);
	mg_exit_library();
	free(m);
}

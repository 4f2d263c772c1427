/* cmd_serve.c - 'payments serve': the HTTP API until SIGTERM or SIGINT, then a bounded drain. */
#include "cmd.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "bounded.h"
#include "cfg.h"
#include "db.h"
#include "api.h"
#include "err.h"
#include "http.h"
#include "keycache.h"
#include "replaycache.h"
#include "log.h"
#include "metrics_server.h"
#include "purge.h"
#include "ratelimit.h"

/* Stops the HTTP server: stops accepting, lets in-flight requests finish. */
static void serve_stop_server(void *server)
{
	http_server_stop(server);
}

int cmd_serve(int argc, char **argv)
{
	struct http_server *server = NULL;
	struct metrics_server *metrics = NULL;
	struct purge *purge = NULL;
	struct http_app app = { 0 };
	struct cfg cfg;
	sigset_t stop;
	int nargs, sig = 0, code = 1;

	if (cfg_wants_help(argc, argv)) {
		printf("usage: payments serve [flags]\n\n");
		cfg_usage(stdout, CFG_SERVE);
		return 0;
	}
	if (cfg_load(&cfg, CFG_SERVE, argc, argv, &nargs) != PAY_OK)
		return 2;
	if (nargs > 0 || log_set_level(cfg.log_level) != PAY_OK) {
		fprintf(stderr, "payments serve: unexpected argument or bad log level\n");
		cfg_fini(&cfg);
		return 2;
	}
	/* Block the stop signals in every thread; the main thread waits for them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (log_start() != PAY_OK)
		goto out;

	app.cfg = &cfg;
	/* A request never waits on the database longer than a slow client may take. */
	db_set_statement_timeout(cfg.request_timeout_ms);
	app.pool = db_pool_create(cfg.database_url, cfg.db_pool_size, cfg.db_pool_wait_ms,
				  cfg.db_connect_timeout_ms);
	if (app.pool != NULL && cfg.read_database_url != NULL && cfg.read_database_url[0] != '\0' &&
	    (app.read_pool = db_pool_create(cfg.read_database_url, cfg.db_pool_size,
					    cfg.db_pool_wait_ms, cfg.db_connect_timeout_ms)) == NULL)
		goto out;
	app.limiter = ratelimit_create(cfg.rate_limit, cfg.rate_burst);
	app.auth_limiter = ratelimit_create(cfg.auth_rate_limit, cfg.auth_rate_burst);
	app.keys = keycache_create(cfg.key_cache_ttl_ms);
	app.replays = replaycache_create(cfg.replay_cache_ttl_ms);
	if (app.pool == NULL || app.limiter == NULL || app.auth_limiter == NULL || app.keys == NULL ||
	    app.replays == NULL)
		goto out;
	server = http_server_start(&app);
	if (server == NULL)
		goto out;
	if (cfg.metrics_listen != NULL && cfg.metrics_listen[0] != '\0' &&
	    (metrics = metrics_server_start(cfg.metrics_listen, api_metrics_render, &app)) == NULL)
		goto out;
	purge = purge_start(app.pool, cfg.purge_interval_ms, cfg.purge_batch,
			    cfg.authorization_ttl_ms);
	if (purge == NULL)
		goto out;
	log_write(LOG_INFO, "serving",
		  json_pack("{s:s, s:b, s:i, s:i, s:i}", "listen", cfg.listen, "tls", cfg.tls_cert != NULL,
			    "threads", cfg.threads, "db_pool_size", cfg.db_pool_size,
			    "rate_limit", cfg.rate_limit));
	sigwait(&stop, &sig);
	log_write(LOG_INFO, "draining", json_pack("{s:i, s:I}", "signal", sig, "timeout_ms",
						  (json_int_t)cfg.shutdown_timeout_ms));
	/*
	 * The stop runs on a thread of its own so the wait is bounded; should it
	 * time out, that thread runs on until the process exits, on state of
	 * its own (bounded.c), not on this frame.
	 */
	if (http_server_drain(server, cfg.shutdown_timeout_ms) &&
	    bounded_run(serve_stop_server, server, cfg.shutdown_timeout_ms)) {
		code = 0;
	} else {
		/* Requests still running past the bound: exit without waiting for them. */
		log_printf(LOG_ERROR, "requests still in flight after the shutdown timeout; exiting");
		log_stop();
		_exit(1);
	}
	server = NULL;
	log_printf(LOG_INFO, "stopped");
out:
	metrics_server_stop(metrics);
	purge_stop(purge);
	http_server_stop(server);
	db_pool_destroy(app.pool);   /* closes every connection */
	db_pool_destroy(app.read_pool);
	ratelimit_destroy(app.limiter);
	ratelimit_destroy(app.auth_limiter);
	keycache_destroy(app.keys);
	replaycache_destroy(app.replays);
	log_stop();
	cfg_fini(&cfg);
	return code;
}

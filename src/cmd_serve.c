/* cmd_serve.c - 'payments serve': the HTTP API until SIGTERM or SIGINT. */
#include "cmd.h"

#include <signal.h>
#include <stdio.h>

#include "cfg.h"
#include "db.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "purge.h"

int cmd_serve(int argc, char **argv)
{
	struct http_server *server = NULL;
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
		code = 2;
		goto out;
	}
	/* Block the stop signals in every thread; the main thread waits for them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	app.cfg = &cfg;
	app.pool = db_pool_create(cfg.database_url, cfg.db_pool_size, cfg.db_pool_wait_ms,
				  cfg.db_connect_timeout_ms);
	if (app.pool == NULL)
		goto out;
	server = http_server_start(&app);
	if (server == NULL)
		goto out;
	purge = purge_start(app.pool, cfg.purge_interval_ms, cfg.purge_batch);
	if (purge == NULL)
		goto out;
	log_write(LOG_INFO, "serving", json_pack("{s:s, s:i, s:i}", "listen", cfg.listen,
						 "threads", cfg.threads, "db_pool_size",
						 cfg.db_pool_size));
	sigwait(&stop, &sig);
	log_write(LOG_INFO, "stopping", json_pack("{s:i}", "signal", sig));
	code = 0;
out:
	purge_stop(purge);
	http_server_stop(server);
	db_pool_destroy(app.pool);
	cfg_fini(&cfg);
	return code;
}

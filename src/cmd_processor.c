/* cmd_processor.c - 'payments processor' (the worker) and 'payments processor status'. */
#include "cmd.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "db.h"
#include "db_processor.h"
#include "err.h"
#include "log.h"
#include "processor.h"

/* Set by the signal handler, read by the worker loop between charges. */
static atomic_int processor_stop_flag;

static void processor_on_signal(int sig)
{
	(void)sig;
	atomic_store(&processor_stop_flag, 1);
}

static void processor_usage(FILE *f)
{
	fprintf(f, "usage: payments processor          carry pending charges to the processor"
		   " (until SIGTERM/SIGINT)\n"
		   "       payments processor status   print the pending charges\n\n");
	cfg_usage(f, CFG_PROCESSOR);
}

static int processor_status_cmd(const struct cfg *cfg)
{
	struct db_processor_status st;
	struct db_conn *conn = NULL;
	int code = 1;

	if (db_conn_open(cfg->database_url, cfg->db_connect_timeout_ms, &conn) != PAY_OK) {
		fprintf(stderr, "payments processor: cannot connect to the database\n");
		goto out;
	}
	if (db_processor_status(conn, &st) != PAY_OK)
		goto out;
	printf("pending charges:         %lld\n", st.pending);
	printf("oldest pending age:      %.3f s\n", st.oldest_pending_s);
	printf("flagged for review:      %lld\n", st.flagged);
	code = 0;
out:
	db_conn_close(conn);
	return code;
}

int cmd_processor(int argc, char **argv)
{
	struct sigaction sa;
	struct cfg cfg;
	int nargs, code = 2;

	if (cfg_wants_help(argc, argv)) {
		processor_usage(stdout);
		return 0;
	}
	if (cfg_load(&cfg, CFG_PROCESSOR, argc, argv, &nargs) != PAY_OK)
		return 2;
	if (log_set_level(cfg.log_level) != PAY_OK)
		goto out;
	if (nargs == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = processor_on_signal;   /* no SA_RESTART: a sleep ends at once */
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		code = processor_run(&cfg, &processor_stop_flag);
	} else if (nargs == 1 && strcmp(argv[0], "status") == 0) {
		code = processor_status_cmd(&cfg);
	} else {
		processor_usage(stderr);
	}
out:
	cfg_fini(&cfg);
	return code;
}

/* cmd_relay.c - 'payments relay', 'payments relay status', 'payments relay replay --dead'. */
#include "cmd.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "db.h"
#include "db_relay.h"
#include "err.h"
#include "ids.h"
#include "log.h"
#include "relay.h"

/* Set by the signal handler, read by every relay thread: see relay_run. */
static atomic_int relay_stop_flag;

static void relay_on_signal(int sig)
{
	(void)sig;
	atomic_store(&relay_stop_flag, 1);
}

static void relay_usage(FILE *f)
{
	fprintf(f, "usage: payments relay                 run the relay (until SIGTERM/SIGINT)\n"
		   "       payments relay status          print the backlog\n"
		   "       payments relay replay --dead [--endpoint we_...]\n"
		   "                                      requeue dead deliveries (same webhook-id)\n\n");
	cfg_usage(f, CFG_RELAY);
}

static int relay_status_cmd(struct db_conn *conn)
{
	struct db_relay_status st;

	if (db_relay_status(conn, &st) != PAY_OK)
		return 1;
	printf("unpublished events:      %lld\n", st.unpublished);
	printf("oldest unpublished age:  %.3f s\n", st.oldest_unpublished_s);
	printf("pending deliveries:      %lld\n", st.pending_deliveries);
	printf("oldest due delivery age: %.3f s\n", st.oldest_due_s);
	printf("dead deliveries:         %lld\n", st.dead_deliveries);
	return 0;
}

int cmd_relay(int argc, char **argv)
{
	struct db_conn *conn = NULL;
	const char *endpoint = NULL;
	struct sigaction sa;
	struct cfg cfg;
	bool dead = false;
	long long n = 0;
	int i, nargs, code = 2;

	if (cfg_wants_help(argc, argv)) {
		relay_usage(stdout);
		return 0;
	}
	if (cfg_load(&cfg, CFG_RELAY, argc, argv, &nargs) != PAY_OK)
		return 2;
	if (log_set_level(cfg.log_level) != PAY_OK)
		goto out;
	if (nargs == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = relay_on_signal;   /* no SA_RESTART: a sleep ends at once */
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		code = relay_run(&cfg, &relay_stop_flag);
		goto out;
	}
	for (i = 1; i < nargs; i++) {
		if (strcmp(argv[i], "--dead") == 0)
			dead = true;
		else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < nargs && ids_valid(argv[i + 1], "we_"))
			endpoint = argv[++i];
		else
			goto usage;
	}
	if (strcmp(argv[0], "status") != 0 && !(strcmp(argv[0], "replay") == 0 && dead))
		goto usage;
	if (db_conn_open(cfg.database_url, cfg.db_connect_timeout_ms, &conn) != PAY_OK) {
		fprintf(stderr, "payments relay: cannot connect to the database\n");
		code = 1;
		goto out;
	}
	if (strcmp(argv[0], "status") == 0) {
		code = relay_status_cmd(conn);
	} else {
		code = db_relay_replay_dead(conn, endpoint, &n) == PAY_OK ? 0 : 1;
		if (code == 0)
			printf("%lld dead deliveries requeued\n", n);
	}
	goto out;
usage:
	relay_usage(stderr);
out:
	db_conn_close(conn);
	cfg_fini(&cfg);
	return code;
}

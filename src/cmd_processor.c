/* cmd_processor.c - 'payments processor' (the worker) and 'payments processor status'. */
#include "cmd.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "db.h"
#include "db_processor.h"
#include "duration.h"
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
		   "       payments processor status   print the pending charges\n"
		   "       payments processor reconcile [--since UNIX_SECONDS|DURATION] [--fix]"
		   " [--metrics-file PATH]\n"
		   "                                   compare with the processor's charges since then"
		   " (default 24h ago);\n"
		   "                                   --fix records its outcome for charges still"
		   " pending here\n"
		   "                                   --metrics-file writes the figures for a textfile"
		   " collector\n"
		   "                                   (exit 0: no differences left, 3: some)\n\n");
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

/* --since: Unix seconds, or a duration back from now (24h). Returns PAY_OK or PAY_ECONFIG. */
static int processor_parse_since(const char *s, long long *since)
{
	long long ms;

	if (cfg_parse_int(s, 0, 32503680000LL, since) == PAY_OK)
		return PAY_OK;
	if (duration_parse(s, &ms) != PAY_OK)
		return PAY_ECONFIG;
	*since = (long long)time(NULL) - ms / 1000;
	return PAY_OK;
}

/*
 * Writes the figures in Prometheus text format to path (for node_exporter's
 * textfile collector), through a temporary file renamed into place.
 * Returns 0, or -1 after printing why.
 */
static int processor_write_metrics(const char *path, const struct processor_figures *f,
				   long long diffs)
{
	char tmp[4096];
	FILE *out;
	int rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		goto out;
	out = fopen(tmp, "w");
	if (out == NULL)
		goto out;
	fprintf(out, "# HELP payments_processor_reconcile_differences Differences the last"
		     " reconciliation left, by kind.\n"
		     "# TYPE payments_processor_reconcile_differences gauge\n");
	fprintf(out, "payments_processor_reconcile_differences{kind=\"missing_at_processor\"} %lld\n",
		f->missing_at_processor);
	fprintf(out, "payments_processor_reconcile_differences{kind=\"missing_here\"} %lld\n",
		f->missing_here);
	fprintf(out, "payments_processor_reconcile_differences{kind=\"duplicate_at_processor\"} %lld\n",
		f->duplicates);
	fprintf(out, "payments_processor_reconcile_differences{kind=\"amount_mismatch\"} %lld\n",
		f->amount_mismatches);
	fprintf(out, "payments_processor_reconcile_differences{kind=\"status_mismatch\"} %lld\n",
		f->status_mismatches - f->fixed);
	fprintf(out, "# HELP payments_processor_reconcile_total_differences All of them.\n"
		     "# TYPE payments_processor_reconcile_total_differences gauge\n"
		     "payments_processor_reconcile_total_differences %lld\n", diffs);
	fprintf(out, "# HELP payments_processor_reconcile_fixed Charges the last run recorded.\n"
		     "# TYPE payments_processor_reconcile_fixed gauge\n"
		     "payments_processor_reconcile_fixed %lld\n", f->fixed);
	fprintf(out, "# HELP payments_processor_reconcile_timestamp_seconds When it ran.\n"
		     "# TYPE payments_processor_reconcile_timestamp_seconds gauge\n"
		     "payments_processor_reconcile_timestamp_seconds %lld\n", (long long)time(NULL));
	if (fclose(out) == 0 && rename(tmp, path) == 0)
		rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "payments processor reconcile: cannot write %s\n", path);
	return rc;
}

static int processor_reconcile_cmd(const struct cfg *cfg, int argc, char **argv)
{
	struct processor_figures f;
	const char *metrics_file = NULL;
	long long since = (long long)time(NULL) - 24 * 3600, diffs;
	bool fix = false;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fix") == 0) {
			fix = true;
		} else if (strcmp(argv[i], "--metrics-file") == 0 && i + 1 < argc) {
			metrics_file = argv[++i];
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc &&
			   processor_parse_since(argv[i + 1], &since) == PAY_OK) {
			i++;
		} else {
			processor_usage(stderr);
			return 2;
		}
	}
	if (cfg->processor_url[0] == '\0') {
		fprintf(stderr, "payments processor: PAYMENTS_PROCESSOR_URL is not set\n");
		return 2;
	}
	if (processor_reconcile(cfg, since, fix, stdout, &f) != PAY_OK)
		return 1;
	diffs = f.missing_at_processor + f.missing_here + f.duplicates + f.amount_mismatches +
		f.status_mismatches;
	printf("our charges compared:    %lld\n", f.ours);
	printf("processor charges:       %lld\n", f.theirs);
	printf("missing at processor:    %lld\n", f.missing_at_processor);
	printf("missing here:            %lld\n", f.missing_here);
	printf("duplicates at processor: %lld\n", f.duplicates);
	printf("amount mismatches:       %lld\n", f.amount_mismatches);
	printf("status mismatches:       %lld\n", f.status_mismatches);
	printf("fixed:                   %lld\n", f.fixed);
	printf("pending, none there yet: %lld\n", f.pending_unknown);
	printf("differences:             %lld\n", diffs - f.fixed);
	if (metrics_file != NULL && processor_write_metrics(metrics_file, &f, diffs - f.fixed) != 0)
		return 1;
	return diffs - f.fixed == 0 ? 0 : 3;
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
	} else if (strcmp(argv[0], "reconcile") == 0) {
		code = processor_reconcile_cmd(&cfg, nargs, argv);
	} else {
		processor_usage(stderr);
	}
out:
	cfg_fini(&cfg);
	return code;
}

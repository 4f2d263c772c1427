/* cmd_migrate.c - 'payments migrate up|status|plan|verify|resolve'. */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "db.h"
#include "err.h"
#include "migrate.h"

static void migrate_usage(FILE *f)
{
	fprintf(f,
		"usage: payments migrate up [--target N] [--allow-out-of-order]\n"
		"                                  apply pending NNNN_name.sql files, then every\n"
		"                                  R__name.sql (repeatable) that is new or changed\n"
		"       payments migrate status    applied (time, checksum, duration), pending,\n"
		"                                  failed, modified, missing, repeatables as R;\n"
		"                                  exit 1 if any is not applied\n"
		"       payments migrate plan [--target N] [--allow-out-of-order]\n"
		"                                  print the SQL 'up' would run, without running it\n"
		"       payments migrate verify    checksums match, nothing failed, no invalid index;\n"
		"                                  then the pgTAP suite in a rolled-back transaction\n"
		"       payments migrate resolve N --applied|--rolled-back\n"
		"                                  record an operator's decision on a failed migration\n\n");
	cfg_usage(f, CFG_MIGRATE);
}

/*
 * Returns true, after saying why, when DATABASE_URL leads to a standby: its
 * writes would fail half-way, and a standby is never where a schema changes.
 * A server that cannot be reached is left to the migration's own wait
 * (PAYMENTS_MIGRATE_WAIT); with target_session_attrs=read-write, libpq never
 * connects to a standby, so that wait also covers a failover.
 */
static bool migrate_refuses_standby(const struct cfg *cfg)
{
	bool standby = false;

	if (db_server_is_standby(cfg->database_url, cfg->db_connect_timeout_ms, &standby) != PAY_OK ||
	    !standby)
		return false;
	fprintf(stderr, "payments migrate: the database server is a standby (in recovery), which "
		"cannot be migrated. Point DATABASE_URL at the primary, or list every node with "
		"target_session_attrs=read-write.\n");
	return true;
}

int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts opts = { 0 };
	struct cfg cfg;
	const char *cmd;
	long long v = 0;
	int i, nargs, resolve_as = -1, code = 2;

	if (cfg_wants_help(argc, argv)) {
		migrate_usage(stdout);
		return 0;
	}
	if (cfg_load(&cfg, CFG_MIGRATE, argc, argv, &nargs) != PAY_OK)
		return 2;
	cmd = nargs > 0 ? argv[0] : "";
	for (i = 1; i < nargs; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--allow-out-of-order") == 0) {
			opts.allow_out_of_order = true;
		} else if (strcmp(a, "--target") == 0 && i + 1 < nargs &&
			   cfg_parse_int(argv[i + 1], 1, 999999999, &v) == PAY_OK) {
			opts.target = (int)v;
			i++;
		} else if (strcmp(a, "--applied") == 0 || strcmp(a, "--rolled-back") == 0) {
			resolve_as = strcmp(a, "--applied") == 0;
		} else if (strcmp(cmd, "resolve") == 0 && i == 1 &&
			   cfg_parse_int(a, 1, 999999999, &v) == PAY_OK) {
			opts.target = (int)v;
		} else {
			fprintf(stderr, "payments migrate: unknown argument '%s'\n", a);
			goto out;
		}
	}
	/* Only status and plan, which read, may run against a standby. */
	if ((strcmp(cmd, "up") == 0 || strcmp(cmd, "verify") == 0 || strcmp(cmd, "resolve") == 0) &&
	    migrate_refuses_standby(&cfg)) {
		code = 1;
		goto out;
	}
	if (strcmp(cmd, "up") == 0)
		code = migrate_up(&cfg, &opts);
	else if (strcmp(cmd, "plan") == 0)
		code = migrate_plan(&cfg, &opts);
	else if (strcmp(cmd, "status") == 0 && nargs == 1)
		code = migrate_status(&cfg);
	else if (strcmp(cmd, "verify") == 0 && nargs == 1)
		code = migrate_verify(&cfg);
	else if (strcmp(cmd, "resolve") == 0 && opts.target > 0 && resolve_as >= 0)
		code = migrate_resolve(&cfg, opts.target, resolve_as == 1);
	else
		migrate_usage(stderr);
out:
	cfg_fini(&cfg);
	return code;
}

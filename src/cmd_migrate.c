/* cmd_migrate.c - 'payments migrate up|status'. */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "err.h"
#include "migrate.h"

static void migrate_usage(FILE *f)
{
	fprintf(f, "usage: payments migrate up [--target N] [--allow-out-of-order]\n"
		   "       payments migrate status   (exit 1 when anything is pending, failed,\n"
		   "                                  modified or missing)\n\n");
	cfg_usage(f, CFG_MIGRATE);
}

int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts opts = { 0 };
	struct cfg cfg;
	long long v;
	int i, nargs, code = 2;

	if (cfg_wants_help(argc, argv)) {
		migrate_usage(stdout);
		return 0;
	}
	if (cfg_load(&cfg, CFG_MIGRATE, argc, argv, &nargs) != PAY_OK)
		return 2;
	for (i = 1; i < nargs; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--allow-out-of-order") == 0) {
			opts.allow_out_of_order = true;
		} else if (strcmp(a, "--target") == 0 && i + 1 < nargs &&
			   cfg_parse_int(argv[i + 1], 1, 999999999, &v) == PAY_OK) {
			opts.target = (int)v;
			i++;
		} else {
			fprintf(stderr, "payments migrate: unknown argument '%s'\n", a);
			goto out;
		}
	}
	if (nargs >= 1 && strcmp(argv[0], "up") == 0) {
		code = migrate_up(&cfg, &opts);
	} else if (nargs == 1 && strcmp(argv[0], "status") == 0) {
		code = migrate_status(&cfg);
	} else {
		migrate_usage(stderr);
	}
out:
	cfg_fini(&cfg);
	return code;
}

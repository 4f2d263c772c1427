/* main.c - bin/payments: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cmd.h"
#include "cfg.h"

struct main_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct main_command main_commands[] = {
	{ "serve", cmd_serve, "run the HTTP API" },
	{ "migrate", cmd_migrate, "apply or inspect database migrations (up, plan, status, verify, resolve)" },
	{ "relay", cmd_relay, "deliver committed events as signed webhooks (status, replay --dead)" },
	{ "processor", cmd_processor, "carry pending charges to the processor (processor mode; status)" },
	{ "keys", cmd_keys, "create or revoke API keys (create --user NAME, revoke KEY_ID)" },
};

static void main_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: payments COMMAND [flags]\n\nCommands:\n");
	for (i = 0; i < sizeof(main_commands) / sizeof(main_commands[0]); i++)
		fprintf(f, "  %-10s %s\n", main_commands[i].name, main_commands[i].summary);
	fprintf(f, "\n'payments COMMAND --help' lists the command's flags.\n\n");
	cfg_usage(f, CFG_ALL);
}

int main(int argc, char **argv)
{
	size_t i;

	if (sodium_init() < 0) {
		fprintf(stderr, "payments: libsodium failed to initialise\n");
		return 1;
	}
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (i = 0; i < sizeof(main_commands) / sizeof(main_commands[0]); i++) {
		if (strcmp(argv[1], main_commands[i].name) == 0)
			return main_commands[i].run(argc - 2, argv + 2);
	}
	fprintf(stderr, "payments: unknown command '%s'\n\n", argv[1]);
	main_usage(stderr);
	return 2;
}

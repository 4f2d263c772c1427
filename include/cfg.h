/* cfg.h - every setting: one table row with its env variable, flag, type and default. */
#ifndef PAYMENTS_CFG_H
#define PAYMENTS_CFG_H

#include <stdbool.h>
#include <stdio.h>

/* Which subcommands a setting applies to (a bit mask). */
enum cfg_scope {
	CFG_SERVE = 1 << 0,
	CFG_RELAY = 1 << 1,
	CFG_MIGRATE = 1 << 2,
	CFG_KEYS = 1 << 3,
	CFG_PROCESSOR = 1 << 4,   /* 'payments processor' (processor mode) */
	CFG_ALL = 0xff,
};

struct cfg {
	char *database_url;
	char *read_database_url;   /* GETs (a standby); NULL or "": the primary */
	char *listen;
	int threads;
	int max_connections_per_client;
	long long keep_alive_timeout_ms;
	int db_pool_size;
	long long db_pool_wait_ms;
	long long db_connect_timeout_ms;
	long long idempotency_ttl_ms;
	long long idempotency_wait_ms;
	long long purge_interval_ms;
	int purge_batch;
	long long authorization_ttl_ms;   /* uncaptured charges older than this are released */
	long long request_timeout_ms;
	long long key_cache_ttl_ms;
	long long replay_cache_ttl_ms;
	char *log_level;
	char *migrations_dir;
	long long migrate_wait_ms;
	long long migrate_lock_timeout_ms;
	long long migrate_statement_timeout_ms;
	int migrate_lock_retries;
	char *sql_tests_dir;
	int webhook_allow_private;
	int webhook_endpoints_max;
	char *webhook_schedule;
	int webhook_max_attempts;
	long long webhook_connect_timeout_ms;
	long long webhook_timeout_ms;
	long long webhook_retry_after_max_ms;
	char *webhook_proxy;
	int relay_batch;
	int relay_endpoint_in_flight;
	int relay_workers;
	long long relay_poll_ms;
	long long relay_lease_ms;
	long long event_retention_ms;
	int rate_limit;
	int rate_burst;
	int auth_rate_limit;
	int auth_rate_burst;
	char *trusted_proxies;
	long long shutdown_timeout_ms;
	char *tls_cert;
	char *tls_key;
	char *relay_metrics_listen;
	char *metrics_listen;
	char *nats_url;
	char *nats_stream;
	char *nats_subject_prefix;
	long long nats_duplicate_window_ms;
	/* Processor mode (processor.c, cmd_processor.c): "" is the default test-token mode. */
	char *processor_url;
	char *processor_key;
	char *processor_stripe_version;
	long long processor_max_wait_ms;
	long long processor_key_window_ms;
	long long processor_timeout_ms;
	long long processor_lease_ms;
	long long processor_poll_ms;
	char *processor_schedule;
	int processor_batch;
	char *processor_metrics_listen;
	char *processor_test_crash;
};

/*
 * Fills c with defaults, then the environment, then flags from argv
 * (--name=value or --name value) that apply to scope. Non-flag arguments
 * are moved to the front of argv and their count stored in *nargs.
 * Returns PAY_OK, or PAY_ECONFIG after printing the problem to stderr.
 * Release with cfg_fini.
 */
int cfg_load(struct cfg *c, unsigned scope, int argc, char **argv, int *nargs)
	__attribute__((warn_unused_result));

void cfg_fini(struct cfg *c);

/* Prints the settings of scope: flag, env variable, default and help. */
void cfg_usage(FILE *f, unsigned scope);


/* Parses a whole number in [min, max]. Returns PAY_OK or PAY_ECONFIG. */
int cfg_parse_int(const char *s, long long min, long long max, long long *out);

/* True when --help or -h is among argv. */
bool cfg_wants_help(int argc, char **argv);

#endif

/* cfg.c - every setting: one table row with its env variable, flag, type and default. */
#include "cfg.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "err.h"

enum cfg_type { CFG_STR, CFG_INT, CFG_DURATION };

struct cfg_setting {
	const char *flag;       /* without the leading "--" */
	const char *env;
	enum cfg_type type;
	const char *def;        /* NULL: no default */
	size_t offset;
	long long min, max;     /* for CFG_INT and CFG_DURATION (ms) */
	unsigned scope;
	const char *help;
};

#define CFG_AT(field) offsetof(struct cfg, field)
#define CFG_DAY (24LL * 3600 * 1000)

static const struct cfg_setting cfg_settings[] = {
	{ "database-url", "DATABASE_URL", CFG_STR, NULL, CFG_AT(database_url), 0, 0, CFG_ALL,
	  "libpq URI or conninfo of the PostgreSQL database (required)" },
	{ "read-database-url", "PAYMENTS_READ_DATABASE_URL", CFG_STR, NULL, CFG_AT(read_database_url),
	  0, 0, CFG_SERVE,
	  "libpq URI of a standby for GETs of objects and lists (a not-found or an error there is"
	  " read again from DATABASE_URL; lists may lag); unset: every read on DATABASE_URL" },
	{ "listen", "PAYMENTS_LISTEN", CFG_STR, "127.0.0.1:8080", CFG_AT(listen), 0, 0, CFG_SERVE,
	  "address:port the HTTP API listens on" },
	{ "threads", "PAYMENTS_THREADS", CFG_INT, "128", CFG_AT(threads), 1, 4096, CFG_SERVE,
	  "HTTP worker threads: each holds one connection, idle keep-alive ones included" },
	{ "max-connections-per-client", "PAYMENTS_MAX_CONNECTIONS_PER_CLIENT", CFG_INT, "32",
	  CFG_AT(max_connections_per_client), 0, 100000, CFG_SERVE,
	  "connections one client address may hold open (each holds a worker thread); one more is"
	  " answered 503 at once; trusted proxies are not capped (0: no cap)" },
	{ "keep-alive-timeout", "PAYMENTS_KEEP_ALIVE_TIMEOUT", CFG_DURATION, "5s",
	  CFG_AT(keep_alive_timeout_ms), 0, 600000, CFG_SERVE,
	  "an idle keep-alive connection is closed after this long (0: no keep-alive)" },
	{ "db-pool-size", "PAYMENTS_DB_POOL_SIZE", CFG_INT, "16", CFG_AT(db_pool_size), 1, 1000,
	  CFG_SERVE, "database connections the API keeps open" },
	{ "db-pool-wait", "PAYMENTS_DB_POOL_WAIT", CFG_DURATION, "2s", CFG_AT(db_pool_wait_ms), 1,
	  CFG_DAY, CFG_SERVE, "longest wait for a free connection before answering 503" },
	{ "db-connect-timeout", "PAYMENTS_DB_CONNECT_TIMEOUT", CFG_DURATION, "3s",
	  CFG_AT(db_connect_timeout_ms), 1000, CFG_DAY, CFG_ALL,
	  "timeout of one attempt to connect to the database" },
	{ "idempotency-ttl", "PAYMENTS_IDEMPOTENCY_TTL", CFG_DURATION, "24h",
	  CFG_AT(idempotency_ttl_ms), 3600 * 1000, 365 * CFG_DAY, CFG_SERVE,
	  "how long a stored Idempotency-Key answers retries (at least 1h: a retry after it charges again)" },
	{ "idempotency-wait", "PAYMENTS_IDEMPOTENCY_WAIT", CFG_DURATION, "5s",
	  CFG_AT(idempotency_wait_ms), 1, 600000, CFG_SERVE,
	  "how long a request waits for a concurrent one with the same key before 409" },
	{ "purge-interval", "PAYMENTS_PURGE_INTERVAL", CFG_DURATION, "60s",
	  CFG_AT(purge_interval_ms), 10, CFG_DAY, CFG_SERVE,
	  "how often expired idempotency keys are purged" },
	{ "purge-batch", "PAYMENTS_PURGE_BATCH", CFG_INT, "1000", CFG_AT(purge_batch), 1, 100000,
	  CFG_SERVE, "rows deleted per purge transaction" },
	{ "authorization-ttl", "PAYMENTS_AUTHORIZATION_TTL", CFG_DURATION, "7d",
	  CFG_AT(authorization_ttl_ms), 1, 365 * CFG_DAY, CFG_SERVE,
	  "an authorization (capture=false) not captured within this is released, with a"
	  " charge.expired event, by the sweep every purge-interval (small values are for tests)" },
	{ "request-timeout", "PAYMENTS_REQUEST_TIMEOUT", CFG_DURATION, "10s",
	  CFG_AT(request_timeout_ms), 100, 600000, CFG_SERVE,
	  "a whole request (headers and body) must arrive within this, or its connection is closed;"
	  " also every statement's statement_timeout and lock_timeout" },
	{ "key-cache-ttl", "PAYMENTS_KEY_CACHE_TTL", CFG_DURATION, "1s", CFG_AT(key_cache_ttl_ms),
	  0, 1000, CFG_SERVE,
	  "how long a verified API key is trusted without reading it again (0: always read);"
	  " a revoked key stops working within it" },
	{ "replay-cache-ttl", "PAYMENTS_REPLAY_CACHE_TTL", CFG_DURATION, "1s",
	  CFG_AT(replay_cache_ttl_ms), 0, 60000, CFG_SERVE,
	  "how long a retry of a new charge may be answered from the process's memory after the"
	  " response was read from the database (0: always read), never past the key's expiry" },
	{ "log-level", "PAYMENTS_LOG_LEVEL", CFG_STR, "info", CFG_AT(log_level), 0, 0, CFG_ALL,
	  "debug, info, warn or error" },
	{ "migrations-dir", "PAYMENTS_MIGRATIONS_DIR", CFG_STR, "migrations", CFG_AT(migrations_dir),
	  0, 0, CFG_MIGRATE, "directory of the NNNN_name.sql migration files" },
	{ "migrate-wait", "PAYMENTS_MIGRATE_WAIT", CFG_DURATION, "30s", CFG_AT(migrate_wait_ms), 0,
	  CFG_DAY, CFG_MIGRATE, "how long migrate waits for the database and for another migrator" },
	{ "webhook-allow-private", "PAYMENTS_WEBHOOK_ALLOW_PRIVATE", CFG_INT, "0",
	  CFG_AT(webhook_allow_private), 0, 1, CFG_SERVE | CFG_RELAY,
	  "1 allows webhook URLs on loopback, private and link-local addresses (tests, make run)" },
	{ "webhook-endpoints-max", "PAYMENTS_WEBHOOK_ENDPOINTS_MAX", CFG_INT, "16",
	  CFG_AT(webhook_endpoints_max), 1, 10000, CFG_SERVE,
	  "webhook endpoints one user may have (a create beyond it is refused)" },
	{ "webhook-schedule", "PAYMENTS_WEBHOOK_SCHEDULE", CFG_STR, "0,5s,5m,30m,2h,5h,10h,10h",
	  CFG_AT(webhook_schedule), 0, 0, CFG_RELAY,
	  "delay before each delivery attempt (+-20% jitter); the last repeats" },
	{ "webhook-max-attempts", "PAYMENTS_WEBHOOK_MAX_ATTEMPTS", CFG_INT, "0",
	  CFG_AT(webhook_max_attempts), 0, 1000, CFG_RELAY,
	  "attempts before a delivery is dead (0: one per schedule step)" },
	{ "webhook-connect-timeout", "PAYMENTS_WEBHOOK_CONNECT_TIMEOUT", CFG_DURATION, "5s",
	  CFG_AT(webhook_connect_timeout_ms), 1, 600000, CFG_RELAY,
	  "connect timeout of one delivery attempt" },
	{ "webhook-timeout", "PAYMENTS_WEBHOOK_TIMEOUT", CFG_DURATION, "15s",
	  CFG_AT(webhook_timeout_ms), 1, 600000, CFG_RELAY,
	  "total timeout of one delivery attempt" },
	{ "webhook-retry-after-max", "PAYMENTS_WEBHOOK_RETRY_AFTER_MAX", CFG_DURATION, "1h",
	  CFG_AT(webhook_retry_after_max_ms), 0, CFG_DAY, CFG_RELAY,
	  "longest Retry-After of a receiver (429/503) that is honoured" },
	{ "webhook-proxy", "PAYMENTS_WEBHOOK_PROXY", CFG_STR, "", CFG_AT(webhook_proxy), 0, 0, CFG_RELAY,
	  "proxy URL webhooks go through, e.g. http://egress.internal:3128 (empty: none; http_proxy"
	  " and the like in the environment are never used)" },
	{ "relay-batch", "PAYMENTS_RELAY_BATCH", CFG_INT, "200", CFG_AT(relay_batch), 1, 10000,
	  CFG_RELAY, "events fanned out and deliveries sent (in parallel) per round" },
	{ "relay-endpoint-in-flight", "PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT", CFG_INT, "50",
	  CFG_AT(relay_endpoint_in_flight), 1, 10000, CFG_RELAY,
	  "attempts one webhook endpoint may have in flight per worker (a hanging receiver holds"
	  " no more of the pipeline); each claim also takes at most this many per endpoint" },
	{ "relay-workers", "PAYMENTS_RELAY_WORKERS", CFG_INT, "2", CFG_AT(relay_workers), 1, 64,
	  CFG_RELAY, "webhook pipelines the relay runs side by side, each with its own connection" },
	{ "relay-poll", "PAYMENTS_RELAY_POLL", CFG_DURATION, "50ms", CFG_AT(relay_poll_ms), 1,
	  600000, CFG_RELAY, "how often an idle relay looks for new events" },
	{ "relay-lease", "PAYMENTS_RELAY_LEASE", CFG_DURATION, "60s", CFG_AT(relay_lease_ms), 10,
	  CFG_DAY, CFG_RELAY,
	  "how long a claimed delivery is reserved; a crashed relay's claims expire after it" },
	{ "event-retention", "PAYMENTS_EVENT_RETENTION", CFG_DURATION, "30d",
	  CFG_AT(event_retention_ms), 1000, 3650 * CFG_DAY, CFG_RELAY,
	  "published events (and their deliveries) older than this are deleted in batches" },
	{ "rate-limit", "PAYMENTS_RATE_LIMIT", CFG_INT, "100", CFG_AT(rate_limit), 0, 1000000,
	  CFG_SERVE, "requests per second each user may make, per instance (0: no limit)" },
	{ "rate-burst", "PAYMENTS_RATE_BURST", CFG_INT, "200", CFG_AT(rate_burst), 1, 1000000,
	  CFG_SERVE, "requests a user may make at once above the rate (token bucket size)" },
	{ "auth-rate-limit", "PAYMENTS_AUTH_RATE_LIMIT", CFG_INT, "10", CFG_AT(auth_rate_limit), 0,
	  1000000, CFG_SERVE,
	  "requests per second each client address may make without a valid API key (none, malformed"
	  " or unknown); while its bucket is empty no key of it is read from the database (0: no limit)" },
	{ "auth-rate-burst", "PAYMENTS_AUTH_RATE_BURST", CFG_INT, "50", CFG_AT(auth_rate_burst), 1,
	  1000000, CFG_SERVE, "such requests a client address may make at once above that rate" },
	{ "trusted-proxies", "PAYMENTS_TRUSTED_PROXIES", CFG_STR, "", CFG_AT(trusted_proxies), 0, 0,
	  CFG_SERVE,
	  "comma-separated addresses of reverse proxies whose X-Forwarded-For names the client"
	  " (empty: the peer address is the client)" },
	{ "shutdown-timeout", "PAYMENTS_SHUTDOWN_TIMEOUT", CFG_DURATION, "10s",
	  CFG_AT(shutdown_timeout_ms), 0, 600000, CFG_SERVE | CFG_RELAY,
	  "on SIGTERM, how long in-flight requests (or the relay's batch) may take to finish" },
	{ "tls-cert", "PAYMENTS_TLS_CERT", CFG_STR, NULL, CFG_AT(tls_cert), 0, 0, CFG_SERVE,
	  "PEM certificate (chain): serve HTTPS instead of HTTP (needs --tls-key)" },
	{ "tls-key", "PAYMENTS_TLS_KEY", CFG_STR, NULL, CFG_AT(tls_key), 0, 0, CFG_SERVE,
	  "PEM private key of --tls-cert" },
	{ "metrics-listen", "PAYMENTS_METRICS_LISTEN", CFG_STR, NULL, CFG_AT(metrics_listen), 0, 0,
	  CFG_SERVE,
	  "address:port where serve answers GET /metrics, apart from the API (unset: no metrics endpoint)" },
	{ "relay-metrics-listen", "PAYMENTS_RELAY_METRICS_LISTEN", CFG_STR, NULL,
	  CFG_AT(relay_metrics_listen), 0, 0, CFG_RELAY,
	  "address:port where the relay serves GET /metrics (unset: no metrics endpoint)" },
	{ "migrate-lock-timeout", "PAYMENTS_MIGRATE_LOCK_TIMEOUT", CFG_DURATION, "5s",
	  CFG_AT(migrate_lock_timeout_ms), 1, CFG_DAY, CFG_MIGRATE,
	  "lock_timeout of each migration, so DDL never queues long in front of traffic" },
	{ "migrate-statement-timeout", "PAYMENTS_MIGRATE_STATEMENT_TIMEOUT", CFG_DURATION, "10m",
	  CFG_AT(migrate_statement_timeout_ms), 0, CFG_DAY, CFG_MIGRATE,
	  "statement_timeout of each migration statement (0: none)" },
	{ "sql-tests-dir", "PAYMENTS_SQL_TESTS_DIR", CFG_STR, "sql-tests", CFG_AT(sql_tests_dir), 0, 0,
	  CFG_MIGRATE, "pgTAP files 'migrate verify' runs (in a rolled-back transaction)" },
	{ "migrate-lock-retries", "PAYMENTS_MIGRATE_LOCK_RETRIES", CFG_INT, "3",
	  CFG_AT(migrate_lock_retries), 0, 100, CFG_MIGRATE,
	  "times a migration that hit lock_timeout is retried, with backoff" },
	{ "nats-url", "PAYMENTS_NATS_URL", CFG_STR, "", CFG_AT(nats_url), 0, 0, CFG_RELAY,
	  "NATS server(s) the relay also publishes every event to, e.g. nats://127.0.0.1:4222 (empty: off)" },
	{ "nats-stream", "PAYMENTS_NATS_STREAM", CFG_STR, "PAYMENTS", CFG_AT(nats_stream), 0, 0, CFG_RELAY,
	  "JetStream stream the relay creates (file storage) or checks at start" },
	{ "nats-subject-prefix", "PAYMENTS_NATS_SUBJECT_PREFIX", CFG_STR, "payments.events",
	  CFG_AT(nats_subject_prefix), 0, 0, CFG_RELAY,
	  "events go to subject <prefix>.<type>; the stream holds <prefix>.>" },
	{ "nats-duplicate-window", "PAYMENTS_NATS_DUPLICATE_WINDOW", CFG_DURATION, "2h",
	  CFG_AT(nats_duplicate_window_ms), 1000, 7 * CFG_DAY, CFG_RELAY,
	  "the stream's duplicate window: must exceed the relay lease plus the NATS retry cap (10s)" },
	/* Processor mode: see README "Processor mode" (processor.c). */
	{ "processor-url", "PAYMENTS_PROCESSOR_URL", CFG_STR, "", CFG_AT(processor_url), 0, 0,
	  CFG_SERVE | CFG_PROCESSOR,
	  "base URL of a Stripe-compatible processor, e.g. https://api.stripe.com: charges are created"
	  " pending and 'payments processor' carries them there (empty: test tokens decide at once)" },
	{ "processor-key", "PAYMENTS_PROCESSOR_KEY", CFG_STR, "", CFG_AT(processor_key), 0, 0,
	  CFG_PROCESSOR, "secret API key sent to the processor as 'Authorization: Bearer'" },
	{ "processor-stripe-version", "PAYMENTS_PROCESSOR_STRIPE_VERSION", CFG_STR, "2024-06-20",
	  CFG_AT(processor_stripe_version), 0, 0, CFG_PROCESSOR,
	  "Stripe-Version header of processor calls (empty: none)" },
	{ "processor-max-wait", "PAYMENTS_PROCESSOR_MAX_WAIT", CFG_DURATION, "1h",
	  CFG_AT(processor_max_wait_ms), 0, 30 * CFG_DAY, CFG_PROCESSOR,
	  "a charge whose outcome is still unknown after this is flagged for review (charge.review_required);"
	  " it stays pending and is still asked about" },
	{ "processor-key-window", "PAYMENTS_PROCESSOR_KEY_WINDOW", CFG_DURATION, "23h",
	  CFG_AT(processor_key_window_ms), 0, 30 * CFG_DAY, CFG_PROCESSOR,
	  "how long the processor keeps an idempotency key (Stripe: 24h) less a margin: a charge"
	  " already sent and older than this is not sent again (a new charge could result) but left"
	  " pending, flagged, for 'processor reconcile --fix'" },
	{ "processor-timeout", "PAYMENTS_PROCESSOR_TIMEOUT", CFG_DURATION, "30s",
	  CFG_AT(processor_timeout_ms), 1, 600000, CFG_PROCESSOR,
	  "total timeout of one processor call (past it the outcome is unknown)" },
	{ "processor-lease", "PAYMENTS_PROCESSOR_LEASE", CFG_DURATION, "2m", CFG_AT(processor_lease_ms),
	  10, CFG_DAY, CFG_PROCESSOR,
	  "how long a claimed charge is reserved (above twice processor-timeout: a retry's lookup and"
	  " its call must fit); a crashed worker's charges are retried, with the same key, after it" },
	{ "processor-poll", "PAYMENTS_PROCESSOR_POLL", CFG_DURATION, "100ms", CFG_AT(processor_poll_ms),
	  1, 600000, CFG_PROCESSOR, "how often an idle processor worker looks for due charges" },
	{ "processor-schedule", "PAYMENTS_PROCESSOR_SCHEDULE", CFG_STR, "1s,2s,5s,15s,30s,1m,5m",
	  CFG_AT(processor_schedule), 0, 0, CFG_PROCESSOR,
	  "delay before each retry of a charge whose outcome is unknown (+-20% jitter); the last repeats" },
	{ "processor-batch", "PAYMENTS_PROCESSOR_BATCH", CFG_INT, "8", CFG_AT(processor_batch), 1, 1000,
	  CFG_PROCESSOR, "charges one worker claims per round (called one after another)" },
	{ "processor-metrics-listen", "PAYMENTS_PROCESSOR_METRICS_LISTEN", CFG_STR, NULL,
	  CFG_AT(processor_metrics_listen), 0, 0, CFG_PROCESSOR,
	  "address:port where 'payments processor' serves GET /metrics (unset: none)" },
	{ "processor-test-crash", "PAYMENTS_PROCESSOR_TEST_CRASH", CFG_STR, "",
	  CFG_AT(processor_test_crash), 0, 0, CFG_PROCESSOR,
	  "tests only: PHASE:PERCENT makes the worker _exit(99) at before_call, during_call or"
	  " before_commit with that chance (empty: never)" },
};

#define CFG_NSETTINGS (sizeof(cfg_settings) / sizeof(cfg_settings[0]))

int cfg_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end = NULL;
	long long v;

	if (s == NULL || !((*s >= '0' && *s <= '9') || *s == '-'))
		return PAY_ECONFIG;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return PAY_ECONFIG;
	*out = v;
	return PAY_OK;
}

static int cfg_set(struct cfg *c, const struct cfg_setting *s, const char *value, const char *from)
{
	char *base = (char *)c + s->offset;
	long long v = 0;
	int rc = PAY_OK;

	switch (s->type) {
	case CFG_STR: {
		char *copy = strdup(value);

		if (copy == NULL)
			return PAY_ENOMEM;
		free(*(char **)base);
		*(char **)base = copy;
		break;
	}
	case CFG_INT:
		rc = cfg_parse_int(value, s->min, s->max, &v);
		if (rc == PAY_OK)
			*(int *)base = (int)v;
		break;
	case CFG_DURATION:
		rc = duration_parse(value, &v);
		if (rc == PAY_OK && (v < s->min || v > s->max))
			rc = PAY_ECONFIG;
		if (rc == PAY_OK)
			*(long long *)base = v;
		break;
	}
	if (rc != PAY_OK)
		fprintf(stderr, "payments: invalid value '%s' for %s (%s)\n", value, from, s->help);
	return rc;
}

static const struct cfg_setting *cfg_find_flag(const char *name, size_t len, unsigned scope)
{
	size_t i;

	for (i = 0; i < CFG_NSETTINGS; i++) {
		if ((cfg_settings[i].scope & scope) && strlen(cfg_settings[i].flag) == len &&
		    strncmp(cfg_settings[i].flag, name, len) == 0)
			return &cfg_settings[i];
	}
	return NULL;
}

bool cfg_wants_help(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int cfg_load(struct cfg *c, unsigned scope, int argc, char **argv, int *nargs)
{
	const struct cfg_setting *s;
	int i, kept = 0, rc = PAY_OK;
	size_t k;

	memset(c, 0, sizeof(*c));
	for (k = 0; k < CFG_NSETTINGS && rc == PAY_OK; k++) {
		const char *env = getenv(cfg_settings[k].env);

		s = &cfg_settings[k];
		/* Another command's setting keeps its default: its environment is not ours to judge. */
		if (env != NULL && *env != '\0' && (s->scope & scope))
			rc = cfg_set(c, s, env, s->env);
		else if (s->def != NULL)
			rc = cfg_set(c, s, s->def, "the default");
	}
	for (i = 0; i < argc && rc == PAY_OK; i++) {
		const char *arg = argv[i], *eq, *value;

		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			argv[kept++] = argv[i];
			continue;
		}
		eq = strchr(arg + 2, '=');
		s = cfg_find_flag(arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2), scope);
		if (s == NULL) {
			/* Not a setting: a subcommand's own flag, left for it to read. */
			argv[kept++] = argv[i];
			continue;
		}
		if (eq != NULL) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			fprintf(stderr, "payments: --%s needs a value\n", s->flag);
			rc = PAY_ECONFIG;
			break;
		}
		if (*value == '\0' && s->def == NULL) {
			fprintf(stderr, "payments: --%s needs a value\n", s->flag);
			rc = PAY_ECONFIG;
			break;
		}
		rc = cfg_set(c, s, value, s->flag);
	}
	*nargs = kept;
	if (rc == PAY_OK && c->database_url == NULL) {
		fprintf(stderr, "payments: DATABASE_URL is not set (or pass --database-url)\n");
		rc = PAY_ECONFIG;
	}
	if (rc != PAY_OK)
		cfg_fini(c);
	return rc;
}

void cfg_fini(struct cfg *c)
{
	size_t k;

	for (k = 0; k < CFG_NSETTINGS; k++) {
		if (cfg_settings[k].type == CFG_STR) {
			char **p = (char **)((char *)c + cfg_settings[k].offset);

			free(*p);
			*p = NULL;
		}
	}
}

void cfg_usage(FILE *f, unsigned scope)
{
	size_t k;

	fprintf(f, "Settings (flag / environment variable, default):\n");
	for (k = 0; k < CFG_NSETTINGS; k++) {
		const struct cfg_setting *s = &cfg_settings[k];

		if (!(s->scope & scope))
			continue;
		fprintf(f, "  --%-22s %-30s %s\n      %s\n", s->flag, s->env,
			s->def ? s->def : "(none)", s->help);
	}
}

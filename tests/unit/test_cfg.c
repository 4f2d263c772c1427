/* test_cfg.c - unit tests of settings: durations, integers, env and flag precedence (cfg.c). */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg.h"
#include "duration.h"
#include "err.h"

#define DB_URL "postgresql://postgres@127.0.0.1:54329/payments"
#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Every environment variable cfg.c reads, so each test starts from a clean slate. */
static const char *const cfg_env_names[] = {
	"DATABASE_URL", "PAYMENTS_LISTEN", "PAYMENTS_THREADS", "PAYMENTS_DB_POOL_SIZE",
	"PAYMENTS_DB_POOL_WAIT", "PAYMENTS_DB_CONNECT_TIMEOUT", "PAYMENTS_IDEMPOTENCY_TTL",
	"PAYMENTS_IDEMPOTENCY_WAIT", "PAYMENTS_PURGE_INTERVAL", "PAYMENTS_PURGE_BATCH",
	"PAYMENTS_AUTHORIZATION_TTL",
	"PAYMENTS_REQUEST_TIMEOUT", "PAYMENTS_LOG_LEVEL", "PAYMENTS_MIGRATIONS_DIR",
	"PAYMENTS_MIGRATE_WAIT", "PAYMENTS_MIGRATE_LOCK_TIMEOUT",
	"PAYMENTS_MIGRATE_STATEMENT_TIMEOUT", "PAYMENTS_MIGRATE_LOCK_RETRIES",
	"PAYMENTS_WEBHOOK_ALLOW_PRIVATE", "PAYMENTS_WEBHOOK_ENDPOINTS_MAX", "PAYMENTS_WEBHOOK_SCHEDULE",
	"PAYMENTS_WEBHOOK_MAX_ATTEMPTS", "PAYMENTS_WEBHOOK_CONNECT_TIMEOUT",
	"PAYMENTS_WEBHOOK_TIMEOUT", "PAYMENTS_WEBHOOK_RETRY_AFTER_MAX", "PAYMENTS_RELAY_BATCH", "PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT",
	"PAYMENTS_RELAY_WORKERS",
	"PAYMENTS_RELAY_POLL", "PAYMENTS_RELAY_LEASE", "PAYMENTS_EVENT_RETENTION",
	"PAYMENTS_SQL_TESTS_DIR",
	"PAYMENTS_PROCESSOR_URL", "PAYMENTS_PROCESSOR_KEY", "PAYMENTS_PROCESSOR_STRIPE_VERSION",
	"PAYMENTS_PROCESSOR_MAX_WAIT", "PAYMENTS_PROCESSOR_TIMEOUT", "PAYMENTS_PROCESSOR_LEASE",
	"PAYMENTS_PROCESSOR_POLL", "PAYMENTS_PROCESSOR_SCHEDULE", "PAYMENTS_PROCESSOR_BATCH",
	"PAYMENTS_PROCESSOR_METRICS_LISTEN", "PAYMENTS_PROCESSOR_TEST_CRASH",
	"PAYMENTS_PROCESSOR_KEY_WINDOW",
};

static int clear_env(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEMS(cfg_env_names); i++)
		unsetenv(cfg_env_names[i]);
	return 0;
}

static void assert_duration(const char *s, long long want)
{
	long long ms = -1;

	if (duration_parse(s, &ms) != PAY_OK)
		fail_msg("duration '%s' was refused", s);
	assert_int_equal(ms, want);
}

static void assert_duration_refused(const char *s)
{
	long long ms = 12345;

	if (duration_parse(s, &ms) != PAY_ECONFIG)
		fail_msg("duration '%s' was accepted as %lld ms", s ? s : "(null)", ms);
	assert_int_equal(ms, 12345);
}

static void test_duration_parses_milliseconds(void **state)
{
	(void)state;
	assert_duration("500ms", 500);
	assert_duration("0ms", 0);
}

static void test_duration_parses_seconds(void **state)
{
	(void)state;
	assert_duration("10s", 10000);
}

static void test_duration_without_unit_means_seconds(void **state)
{
	(void)state;
	assert_duration("5", 5000);
	assert_duration("0", 0);
}

static void test_duration_parses_minutes_hours_and_days(void **state)
{
	(void)state;
	assert_duration("2m", 120000);
	assert_duration("24h", 86400000);
	assert_duration("1d", 86400000);
	assert_duration("30d", 30LL * 86400000);
}

static void test_duration_rejects_empty(void **state)
{
	(void)state;
	assert_duration_refused("");
	assert_duration_refused(NULL);
}

static void test_duration_rejects_negative(void **state)
{
	(void)state;
	assert_duration_refused("-1s");
	assert_duration_refused("-1");
	assert_duration_refused("+1s");
}

static void test_duration_rejects_unknown_unit(void **state)
{
	(void)state;
	assert_duration_refused("10x");
	assert_duration_refused("10S");
	assert_duration_refused("10sec");
	assert_duration_refused("10 s");
	assert_duration_refused("1.5s");
	assert_duration_refused("10s ");
}

static void test_duration_rejects_unit_without_number(void **state)
{
	(void)state;
	assert_duration_refused("s");
	assert_duration_refused("ms");
	assert_duration_refused(" 5s");
}

static void test_duration_rejects_overflow(void **state)
{
	(void)state;
	assert_duration_refused("99999999999999999999");
	assert_duration_refused("9223372036854775807d");
	assert_duration_refused("9223372036854775807s");
	assert_duration("9223372036854775807ms", 9223372036854775807LL);
}

static void test_int_accepts_bounds(void **state)
{
	long long v = 0;

	(void)state;
	assert_int_equal(cfg_parse_int("1", 1, 1024, &v), PAY_OK);
	assert_int_equal(v, 1);
	assert_int_equal(cfg_parse_int("1024", 1, 1024, &v), PAY_OK);
	assert_int_equal(v, 1024);
	assert_int_equal(cfg_parse_int("0", 0, 0, &v), PAY_OK);
	assert_int_equal(v, 0);
}

static void test_int_rejects_out_of_bounds(void **state)
{
	long long v = 77;

	(void)state;
	assert_int_equal(cfg_parse_int("0", 1, 1024, &v), PAY_ECONFIG);
	assert_int_equal(cfg_parse_int("1025", 1, 1024, &v), PAY_ECONFIG);
	assert_int_equal(cfg_parse_int("-1", 0, 10, &v), PAY_ECONFIG);
	assert_int_equal(v, 77);
}

static void test_int_rejects_garbage(void **state)
{
	long long v = 77;

	(void)state;
	assert_int_equal(cfg_parse_int("", 0, 10, &v), PAY_ECONFIG);
	assert_int_equal(cfg_parse_int(NULL, 0, 10, &v), PAY_ECONFIG);
	assert_int_equal(cfg_parse_int("abc", 0, 10, &v), PAY_ECONFIG);
	assert_int_equal(cfg_parse_int("5x", 0, 10, &v), PAY_ECONFIG);
	assert_int_equal(cfg_parse_int("5 ", 0, 10, &v), PAY_ECONFIG);
	assert_int_equal(cfg_parse_int("1.0", 0, 10, &v), PAY_ECONFIG);
	assert_int_equal(cfg_parse_int("99999999999999999999", 0, 10, &v), PAY_ECONFIG);
	assert_int_equal(v, 77);
}

static void test_load_fills_defaults(void **state)
{
	char *argv[] = { "serve" };
	struct cfg c;
	int nargs = -1;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_OK);
	assert_string_equal(c.database_url, DB_URL);
	assert_string_equal(c.listen, "127.0.0.1:8080");
	assert_int_equal(c.threads, 128);
	assert_int_equal(c.db_pool_size, 16);
	assert_int_equal(c.db_pool_wait_ms, 2000);
	assert_int_equal(c.db_connect_timeout_ms, 3000);
	assert_int_equal(c.idempotency_ttl_ms, 86400000);
	assert_int_equal(c.idempotency_wait_ms, 5000);
	assert_int_equal(c.purge_interval_ms, 60000);
	assert_int_equal(c.purge_batch, 1000);
	assert_int_equal(c.request_timeout_ms, 10000);
	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.migrations_dir, "migrations");
	assert_int_equal(c.migrate_wait_ms, 30000);
	assert_int_equal(c.migrate_lock_timeout_ms, 5000);
	assert_int_equal(c.migrate_statement_timeout_ms, 600000);
	assert_int_equal(c.migrate_lock_retries, 3);
	assert_int_equal(nargs, 1);
	assert_string_equal(argv[0], "serve");
	cfg_fini(&c);
}

static void test_load_env_overrides_default(void **state)
{
	char *argv[] = { "serve" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	setenv("PAYMENTS_THREADS", "4", 1);
	setenv("PAYMENTS_LISTEN", "0.0.0.0:9000", 1);
	setenv("PAYMENTS_IDEMPOTENCY_TTL", "1h", 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_OK);
	assert_int_equal(c.threads, 4);
	assert_string_equal(c.listen, "0.0.0.0:9000");
	assert_int_equal(c.idempotency_ttl_ms, 3600000);
	cfg_fini(&c);
}

static void test_load_empty_env_keeps_default(void **state)
{
	char *argv[] = { "serve" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	setenv("PAYMENTS_THREADS", "", 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_OK);
	assert_int_equal(c.threads, 128);
	cfg_fini(&c);
}

static void test_load_flag_overrides_env(void **state)
{
	char *argv[] = { "--threads=8", "--listen=127.0.0.1:1" };
	struct cfg c;
	int nargs = -1;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	setenv("PAYMENTS_THREADS", "4", 1);
	setenv("PAYMENTS_LISTEN", "0.0.0.0:9000", 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 2, argv, &nargs), PAY_OK);
	assert_int_equal(c.threads, 8);
	assert_string_equal(c.listen, "127.0.0.1:1");
	assert_int_equal(nargs, 0);
	cfg_fini(&c);
}

static void test_load_accepts_flag_with_separate_value(void **state)
{
	char *argv[] = { "--threads", "9", "--db-pool-wait", "250ms", "--log-level", "debug" };
	struct cfg c;
	int nargs = -1;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 6, argv, &nargs), PAY_OK);
	assert_int_equal(c.threads, 9);
	assert_int_equal(c.db_pool_wait_ms, 250);
	assert_string_equal(c.log_level, "debug");
	assert_int_equal(nargs, 0);
	cfg_fini(&c);
}

static void test_load_takes_database_url_from_flag(void **state)
{
	char *argv[] = { "--database-url", "postgresql://x/y" };
	struct cfg c;
	int nargs;

	(void)state;
	assert_int_equal(cfg_load(&c, CFG_MIGRATE, 2, argv, &nargs), PAY_OK);
	assert_string_equal(c.database_url, "postgresql://x/y");
	cfg_fini(&c);
}

static void test_load_flag_overrides_database_url_env(void **state)
{
	char *argv[] = { "--database-url=postgresql://flag/db" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_OK);
	assert_string_equal(c.database_url, "postgresql://flag/db");
	cfg_fini(&c);
}

static void test_load_later_flag_wins(void **state)
{
	char *argv[] = { "--threads=2", "--threads", "3" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 3, argv, &nargs), PAY_OK);
	assert_int_equal(c.threads, 3);
	cfg_fini(&c);
}

static void test_load_rejects_invalid_env_value(void **state)
{
	char *argv[] = { "serve" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	setenv("PAYMENTS_THREADS", "lots", 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_ECONFIG);
	assert_null(c.database_url);
	setenv("PAYMENTS_THREADS", "0", 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_ECONFIG);
	unsetenv("PAYMENTS_THREADS");
	setenv("PAYMENTS_DB_POOL_WAIT", "10x", 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_ECONFIG);
}

static void test_load_rejects_invalid_flag_value(void **state)
{
	char *a1[] = { "--threads=4097" };
	char *a2[] = { "--threads=" };
	char *a3[] = { "--db-pool-wait", "-1s" };
	char *a4[] = { "--db-connect-timeout=999ms" };
	char *a5[] = { "--idempotency-ttl=366d" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, a1, &nargs), PAY_ECONFIG);
	assert_null(c.database_url);
	assert_null(c.listen);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, a2, &nargs), PAY_ECONFIG);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 2, a3, &nargs), PAY_ECONFIG);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, a4, &nargs), PAY_ECONFIG);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, a5, &nargs), PAY_ECONFIG);
}

/* A retry after the TTL is a new request: it charges again. So the TTL is never short. */
static void test_load_refuses_an_idempotency_ttl_under_an_hour(void **state)
{
	char *a1[] = { "--idempotency-ttl=1ms" };
	char *a2[] = { "--idempotency-ttl=59m" };
	char *a3[] = { "--idempotency-ttl=3599999ms" };
	char *a4[] = { "--idempotency-ttl=1h" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, a1, &nargs), PAY_ECONFIG);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, a2, &nargs), PAY_ECONFIG);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, a3, &nargs), PAY_ECONFIG);
	setenv("PAYMENTS_IDEMPOTENCY_TTL", "1s", 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 0, a4, &nargs), PAY_ECONFIG);
	unsetenv("PAYMENTS_IDEMPOTENCY_TTL");
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, a4, &nargs), PAY_OK);
	assert_int_equal(c.idempotency_ttl_ms, 3600000);
	cfg_fini(&c);
}

static void test_load_rejects_flag_without_value(void **state)
{
	char *argv[] = { "serve", "--threads" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 2, argv, &nargs), PAY_ECONFIG);
}

static void test_load_rejects_missing_database_url(void **state)
{
	char *argv[] = { "serve" };
	struct cfg c;
	int nargs;

	(void)state;
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_ECONFIG);
	assert_null(c.listen);
	setenv("DATABASE_URL", "", 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_ECONFIG);
}

static void test_load_keeps_non_setting_args_in_order(void **state)
{
	char *argv[] = { "create", "--user", "alice", "--threads", "3", "--json", "--", "extra" };
	struct cfg c;
	int nargs = -1;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 8, argv, &nargs), PAY_OK);
	assert_int_equal(c.threads, 3);
	assert_int_equal(nargs, 6);
	assert_string_equal(argv[0], "create");
	assert_string_equal(argv[1], "--user");
	assert_string_equal(argv[2], "alice");
	assert_string_equal(argv[3], "--json");
	assert_string_equal(argv[4], "--");
	assert_string_equal(argv[5], "extra");
	cfg_fini(&c);
}

static void test_every_flag_is_its_variable_without_payments_in_lower_case(void **state)
{
	char line[512], flag[64], env[64], want[64];
	FILE *f = tmpfile();
	size_t i, n = 0;

	(void)state;
	assert_non_null(f);
	cfg_usage(f, CFG_ALL);
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "  --%63s %63s", flag, env) != 2)
			continue;
		/* PAYMENTS_MIGRATE_LOCK_TIMEOUT -> migrate-lock-timeout; DATABASE_URL -> database-url */
		snprintf(want, sizeof(want), "%s",
			 strncmp(env, "PAYMENTS_", 9) == 0 ? env + 9 : env);
		for (i = 0; want[i] != '\0'; i++)
			want[i] = want[i] == '_' ? '-' : (char)tolower((unsigned char)want[i]);
		assert_string_equal(flag, want);
		n++;
	}
	fclose(f);
	assert_true(n > 30);
}

static void test_load_leaves_out_of_scope_flag_as_argument(void **state)
{
	char *argv[] = { "up", "--threads=3", "--migrate-lock-retries=5" };
	struct cfg c;
	int nargs = -1;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_MIGRATE, 3, argv, &nargs), PAY_OK);
	assert_int_equal(c.threads, 128);
	assert_int_equal(c.migrate_lock_retries, 5);
	assert_int_equal(nargs, 2);
	assert_string_equal(argv[0], "up");
	assert_string_equal(argv[1], "--threads=3");
	cfg_fini(&c);
}

static void test_load_does_not_match_flag_prefix(void **state)
{
	char *argv[] = { "--thread=3", "--threadsx=3" };
	struct cfg c;
	int nargs = -1;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 2, argv, &nargs), PAY_OK);
	assert_int_equal(c.threads, 128);
	assert_int_equal(nargs, 2);
	cfg_fini(&c);
}

static void test_fini_clears_strings(void **state)
{
	char *argv[] = { "serve" };
	struct cfg c;
	int nargs;

	(void)state;
	setenv("DATABASE_URL", DB_URL, 1);
	assert_int_equal(cfg_load(&c, CFG_SERVE, 1, argv, &nargs), PAY_OK);
	cfg_fini(&c);
	assert_null(c.database_url);
	assert_null(c.listen);
	assert_null(c.log_level);
	assert_null(c.migrations_dir);
	cfg_fini(&c);
}

static void test_wants_help_finds_help_flags(void **state)
{
	char *a1[] = { "serve", "--help" };
	char *a2[] = { "-h" };
	char *a3[] = { "serve", "--threads=2", "--helpful" };

	(void)state;
	assert_true(cfg_wants_help(2, a1));
	assert_true(cfg_wants_help(1, a2));
	assert_false(cfg_wants_help(3, a3));
	assert_false(cfg_wants_help(0, a3));
}

static void test_usage_lists_only_settings_in_scope(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	cfg_usage(f, CFG_MIGRATE);
	fclose(f);
	assert_non_null(strstr(buf, "--database-url"));
	assert_non_null(strstr(buf, "DATABASE_URL"));
	assert_non_null(strstr(buf, "--migrations-dir"));
	assert_null(strstr(buf, "--threads"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parses_milliseconds),
		cmocka_unit_test(test_duration_parses_seconds),
		cmocka_unit_test(test_duration_without_unit_means_seconds),
		cmocka_unit_test(test_duration_parses_minutes_hours_and_days),
		cmocka_unit_test(test_duration_rejects_empty),
		cmocka_unit_test(test_duration_rejects_negative),
		cmocka_unit_test(test_duration_rejects_unknown_unit),
		cmocka_unit_test(test_duration_rejects_unit_without_number),
		cmocka_unit_test(test_duration_rejects_overflow),
		cmocka_unit_test(test_int_accepts_bounds),
		cmocka_unit_test(test_int_rejects_out_of_bounds),
		cmocka_unit_test(test_int_rejects_garbage),
		cmocka_unit_test_setup(test_load_fills_defaults, clear_env),
		cmocka_unit_test_setup(test_load_env_overrides_default, clear_env),
		cmocka_unit_test_setup(test_load_empty_env_keeps_default, clear_env),
		cmocka_unit_test_setup(test_load_flag_overrides_env, clear_env),
		cmocka_unit_test_setup(test_load_accepts_flag_with_separate_value, clear_env),
		cmocka_unit_test_setup(test_load_takes_database_url_from_flag, clear_env),
		cmocka_unit_test_setup(test_load_flag_overrides_database_url_env, clear_env),
		cmocka_unit_test_setup(test_load_later_flag_wins, clear_env),
		cmocka_unit_test_setup(test_load_rejects_invalid_env_value, clear_env),
		cmocka_unit_test_setup(test_load_rejects_invalid_flag_value, clear_env),
		cmocka_unit_test_setup(test_load_rejects_flag_without_value, clear_env),
		cmocka_unit_test_setup(test_load_rejects_missing_database_url, clear_env),
		cmocka_unit_test_setup(test_load_keeps_non_setting_args_in_order, clear_env),
		cmocka_unit_test_setup(test_load_leaves_out_of_scope_flag_as_argument, clear_env),
		cmocka_unit_test_setup(test_load_does_not_match_flag_prefix, clear_env),
		cmocka_unit_test_setup(test_fini_clears_strings, clear_env),
		cmocka_unit_test_setup(test_load_refuses_an_idempotency_ttl_under_an_hour, clear_env),
		cmocka_unit_test(test_wants_help_finds_help_flags),
		cmocka_unit_test(test_usage_lists_only_settings_in_scope),
		cmocka_unit_test(test_every_flag_is_its_variable_without_payments_in_lower_case),
	};

	return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}

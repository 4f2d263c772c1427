/* test_migfile.c - unit tests of migration file names, normalisation, checksums, statement counts and loading (migfile.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "migfile.h"

static void assert_name(const char *filename, int want_version, const char *want_name)
{
	char name[MIGFILE_NAME_MAX];
	int version = -1;

	if (migfile_parse_name(filename, &version, name) != PAY_OK)
		fail_msg("'%s' was refused", filename);
	assert_int_equal(version, want_version);
	assert_string_equal(name, want_name);
}

static void assert_name_refused(const char *filename)
{
	char name[MIGFILE_NAME_MAX];
	int version = -1;

	if (migfile_parse_name(filename, &version, name) != PAY_EPARAM_INVALID)
		fail_msg("'%s' was accepted", filename);
	assert_int_equal(version, -1);
}

/* Normalises a copy of text (len bytes) and returns its checksum in hex. */
static void normalised_checksum(const char *text, size_t len, char *hex)
{
	char *copy = malloc(len + 1);
	size_t n;

	assert_non_null(copy);
	memcpy(copy, text, len);
	copy[len] = '\0';
	n = migfile_normalise(copy, len);
	migfile_checksum(copy, n, hex);
	free(copy);
}

static void test_parse_name_accepts_four_digits_and_name(void **state)
{
	(void)state;
	assert_name("0001_charges.sql", 1, "charges");
	assert_name("0002_webhooks.sql", 2, "webhooks");
	assert_name("0042_add_index_2.sql", 42, "add_index_2");
	assert_name("0001_a.sql", 1, "a");
}

static void test_parse_name_accepts_more_digits(void **state)
{
	(void)state;
	assert_name("12345_x.sql", 12345, "x");
	assert_name("123456789_x.sql", 123456789, "x");
	assert_name("20240101_init.sql", 20240101, "init");
}

static void test_parse_name_refuses_fewer_than_four_digits(void **state)
{
	(void)state;
	assert_name_refused("001_charges.sql");
	assert_name_refused("1_charges.sql");
	assert_name_refused("_charges.sql");
}

static void test_parse_name_refuses_more_than_nine_digits(void **state)
{
	(void)state;
	assert_name_refused("1234567890_x.sql");
}

static void test_parse_name_refuses_version_zero(void **state)
{
	(void)state;
	assert_name_refused("0000_zero.sql");
}

static void test_parse_name_refuses_missing_underscore(void **state)
{
	(void)state;
	assert_name_refused("0001-charges.sql");
	assert_name_refused("0001charges.sql");
}

static void test_parse_name_refuses_bad_name_characters(void **state)
{
	(void)state;
	assert_name_refused("0001_Charges.sql");
	assert_name_refused("0001_char-ges.sql");
	assert_name_refused("0001_char ges.sql");
	assert_name_refused("0001_char.ges.sql");
	assert_name_refused("0001_caf\xC3\xA9s.sql");
}

static void test_parse_name_refuses_empty_name(void **state)
{
	(void)state;
	assert_name_refused("0001_.sql");
	assert_name_refused("00001_.sql");
}

static void test_parse_name_refuses_wrong_extension(void **state)
{
	(void)state;
	assert_name_refused("0001_charges.SQL");
	assert_name_refused("0001_charges.sql.bak");
	assert_name_refused("0001_charges.sq");
	assert_name_refused("0001_charges");
	assert_name_refused("0001_charges.psql");
	assert_name_refused("");
	assert_name_refused(".sql");
}

static void test_parse_name_refuses_leading_letters(void **state)
{
	(void)state;
	assert_name_refused("abcd_x.sql");
	assert_name_refused("v0001_x.sql");
}

static void test_parse_name_limits_name_length(void **state)
{
	char filename[MIGFILE_NAME_MAX + 16];
	char want[MIGFILE_NAME_MAX];

	(void)state;
	/* A name of MIGFILE_NAME_MAX - 1 characters fits with its NUL. */
	memcpy(filename, "0001_", 5);
	memset(filename + 5, 'n', MIGFILE_NAME_MAX - 1);
	memcpy(filename + 5 + MIGFILE_NAME_MAX - 1, ".sql", 5);
	memset(want, 'n', MIGFILE_NAME_MAX - 1);
	want[MIGFILE_NAME_MAX - 1] = '\0';
	assert_name(filename, 1, want);

	memset(filename + 5, 'n', MIGFILE_NAME_MAX);
	memcpy(filename + 5 + MIGFILE_NAME_MAX, ".sql", 5);
	assert_name_refused(filename);
}

static void test_normalise_strips_bom(void **state)
{
	char text[] = "\xEF\xBB\xBFSELECT 1;\n";
	size_t n;

	(void)state;
	n = migfile_normalise(text, sizeof(text) - 1);
	assert_int_equal(n, 10);
	assert_string_equal(text, "SELECT 1;\n");
}

static void test_normalise_keeps_bom_like_bytes_later_in_text(void **state)
{
	char text[] = "-- \xEF\xBB\xBF\n";
	size_t n;

	(void)state;
	n = migfile_normalise(text, sizeof(text) - 1);
	assert_int_equal(n, sizeof(text) - 1);
	assert_string_equal(text, "-- \xEF\xBB\xBF\n");
}

static void test_normalise_turns_crlf_into_lf(void **state)
{
	char text[] = "SELECT 1;\r\nSELECT 2;\r\n";
	size_t n;

	(void)state;
	n = migfile_normalise(text, sizeof(text) - 1);
	assert_int_equal(n, 20);
	assert_string_equal(text, "SELECT 1;\nSELECT 2;\n");
}

static void test_normalise_keeps_lone_cr(void **state)
{
	char text[] = "a\rb\r";
	size_t n;

	(void)state;
	n = migfile_normalise(text, sizeof(text) - 1);
	assert_int_equal(n, 4);
	assert_string_equal(text, "a\rb\r");
}

static void test_normalise_leaves_lf_text_unchanged(void **state)
{
	char text[] = "CREATE TABLE t (id int);\n";
	size_t n;

	(void)state;
	n = migfile_normalise(text, sizeof(text) - 1);
	assert_int_equal(n, sizeof(text) - 1);
	assert_string_equal(text, "CREATE TABLE t (id int);\n");
}

static void test_normalise_handles_empty_and_bom_only_text(void **state)
{
	char empty[] = "";
	char bom[] = "\xEF\xBB\xBF";

	(void)state;
	assert_int_equal(migfile_normalise(empty, 0), 0);
	assert_int_equal(migfile_normalise(bom, 3), 0);
	assert_string_equal(bom, "");
}

static void test_normalise_makes_checksum_independent_of_editor(void **state)
{
	static const char lf[] = "CREATE TABLE t (\n    id int\n);\n";
	static const char crlf[] = "CREATE TABLE t (\r\n    id int\r\n);\r\n";
	static const char bom_crlf[] = "\xEF\xBB\xBF" "CREATE TABLE t (\r\n    id int\r\n);\r\n";
	char a[MIGFILE_CHECKSUM_HEX], b[MIGFILE_CHECKSUM_HEX], c[MIGFILE_CHECKSUM_HEX];

	(void)state;
	normalised_checksum(lf, sizeof(lf) - 1, a);
	normalised_checksum(crlf, sizeof(crlf) - 1, b);
	normalised_checksum(bom_crlf, sizeof(bom_crlf) - 1, c);
	assert_string_equal(a, b);
	assert_string_equal(a, c);
}

static void test_checksum_is_sha256_hex(void **state)
{
	char hex[MIGFILE_CHECKSUM_HEX];

	(void)state;
	/* printf 'SELECT 1;\n' | sha256sum */
	migfile_checksum("SELECT 1;\n", 10, hex);
	assert_string_equal(hex, "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd");
	migfile_checksum("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_no_transaction_finds_marker_on_its_own_line(void **state)
{
	(void)state;
	assert_true(migfile_is_no_transaction("-- payments:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n"));
	assert_true(migfile_is_no_transaction("-- 0003: an index\n-- payments:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n"));
	assert_true(migfile_is_no_transaction("SELECT 1;\n-- payments:no-transaction"));
}

static void test_no_transaction_ignores_marker_inside_text(void **state)
{
	(void)state;
	assert_false(migfile_is_no_transaction("SELECT 1; -- payments:no-transaction\n"));
	assert_false(migfile_is_no_transaction("  -- payments:no-transaction\n"));
	assert_false(migfile_is_no_transaction("SELECT '\n-- payments:no-transactional';\n"));
	assert_false(migfile_is_no_transaction("--payments:no-transaction\n"));
	assert_false(migfile_is_no_transaction("-- payments:no-transaction-please\n"));
	assert_false(migfile_is_no_transaction("CREATE TABLE t (id int);\n"));
	assert_false(migfile_is_no_transaction(""));
}

static void test_no_transaction_finds_later_marker_after_inline_one(void **state)
{
	(void)state;
	assert_true(migfile_is_no_transaction("SELECT 1; -- payments:no-transaction\n-- payments:no-transaction\n"));
}

static void assert_statements(const char *text, int want)
{
	int got = migfile_count_statements(text);

	if (got != want)
		fail_msg("%d statements counted in <%s>, want %d", got, text, want);
}

static void test_count_statements_is_zero_for_empty_and_comment_only_text(void **state)
{
	(void)state;
	assert_statements("", 0);
	assert_statements("\n  \t\n", 0);
	assert_statements("-- payments:no-transaction\n-- nothing else\n", 0);
	assert_statements("/* a; b */", 0);
	assert_statements(";;", 0);
}

static void test_count_statements_counts_semicolons_and_a_final_statement(void **state)
{
	(void)state;
	assert_statements("SELECT 1", 1);
	assert_statements("SELECT 1;", 1);
	assert_statements("SELECT 1;\n", 1);
	assert_statements("SELECT 1; SELECT 2;", 2);
	assert_statements("SELECT 1; SELECT 2", 2);
	assert_statements("SELECT 1;;\n;", 1);
}

static void test_count_statements_ignores_semicolons_in_comments(void **state)
{
	(void)state;
	assert_statements("-- payments:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a); -- one; two\n", 1);
	assert_statements("/* first; second */ CREATE INDEX CONCURRENTLY i ON t (a);", 1);
	assert_statements("SELECT 1 /* ; */ + 1;", 1);
}

static void test_count_statements_ignores_semicolons_in_quotes(void **state)
{
	(void)state;
	assert_statements("SELECT ';';", 1);
	assert_statements("SELECT 'it''s; fine';", 1);
	assert_statements("SELECT 1 AS \"a;b\";", 1);
	assert_statements("SELECT '--'; SELECT 2;", 2);
	assert_statements("SELECT '/*'; SELECT 2;", 2);
}

static void test_count_statements_ignores_semicolons_in_dollar_quotes(void **state)
{
	(void)state;
	assert_statements("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;", 1);
	assert_statements("CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\n"
			  "BEGIN PERFORM $$;$$; RETURN 1; END\n$body$;\nSELECT f();", 2);
	assert_statements("PREPARE p AS SELECT $1; EXECUTE p(1);", 2);
}

/* PostgreSQL block comments nest: the first "*" "/" closes only the inner one. */
static void test_count_statements_handles_nested_block_comments(void **state)
{
	(void)state;
	assert_statements("/* outer /* inner */ still; a comment */\nCREATE INDEX CONCURRENTLY i ON t (a);", 1);
}

/* In an E'' string a backslash escapes the quote, so the string does not end there. */
static void test_count_statements_handles_backslash_escapes_in_e_strings(void **state)
{
	(void)state;
	assert_statements("SELECT E'\\''; CREATE INDEX CONCURRENTLY i ON t (a); SELECT 'x';", 3);
	assert_statements("SELECT e'a\\'; b';", 1);
}

/* Writes text into dir/name. */
static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void remove_file(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static void test_load_dir_sorts_and_ignores_other_files(void **state)
{
	char dir[] = "/tmp/test_migfile_XXXXXX";
	struct migfile_set set;
	char lf[MIGFILE_CHECKSUM_HEX];

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "0010_ten.sql", "\xEF\xBB\xBFSELECT 10;\r\n");
	write_file(dir, "0002_two.sql", "-- payments:no-transaction\nSELECT 2;\n");
	write_file(dir, "README.md", "not a migration\n");
	write_file(dir, "0003_three.sql.orig", "SELECT 3;\n");
	assert_int_equal(migfile_load_dir(dir, &set), PAY_OK);
	assert_int_equal(set.n, 2);
	assert_int_equal(set.files[0].version, 2);
	assert_string_equal(set.files[0].name, "two");
	assert_string_equal(set.files[0].filename, "0002_two.sql");
	assert_true(set.files[0].no_transaction);
	assert_int_equal(set.files[1].version, 10);
	assert_string_equal(set.files[1].sql, "SELECT 10;\n");
	assert_false(set.files[1].no_transaction);
	migfile_checksum("SELECT 10;\n", 11, lf);
	assert_string_equal(set.files[1].checksum, lf);
	migfile_set_fini(&set);
	assert_null(set.files);
	assert_int_equal(set.n, 0);
	remove_file(dir, "0010_ten.sql");
	remove_file(dir, "0002_two.sql");
	remove_file(dir, "README.md");
	remove_file(dir, "0003_three.sql.orig");
	rmdir(dir);
}

static void test_load_dir_refuses_two_files_with_one_version(void **state)
{
	char dir[] = "/tmp/test_migfile_XXXXXX";
	struct migfile_set set;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "0001_a.sql", "SELECT 1;\n");
	write_file(dir, "0001_b.sql", "SELECT 1;\n");
	assert_int_equal(migfile_load_dir(dir, &set), PAY_ECONFIG);
	assert_null(set.files);
	assert_int_equal(set.n, 0);
	remove_file(dir, "0001_a.sql");
	remove_file(dir, "0001_b.sql");
	rmdir(dir);
}

static void test_load_dir_reports_missing_directory(void **state)
{
	struct migfile_set set;

	(void)state;
	assert_int_equal(migfile_load_dir("/nonexistent/migrations", &set), PAY_EIO);
	assert_int_equal(set.n, 0);
}

static void test_load_dir_accepts_empty_directory(void **state)
{
	char dir[] = "/tmp/test_migfile_XXXXXX";
	struct migfile_set set;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(migfile_load_dir(dir, &set), PAY_OK);
	assert_int_equal(set.n, 0);
	migfile_set_fini(&set);
	rmdir(dir);
}

static void test_parse_repeatable_name_accepts_r_and_name(void **state)
{
	char name[MIGFILE_NAME_MAX];

	(void)state;
	assert_int_equal(migfile_parse_repeatable_name("R__create_charge.sql", name), PAY_OK);
	assert_string_equal(name, "create_charge");
	assert_int_equal(migfile_parse_repeatable_name("R__a.sql", name), PAY_OK);
	assert_string_equal(name, "a");
	assert_int_equal(migfile_parse_repeatable_name("R__relay_2.sql", name), PAY_OK);
	assert_string_equal(name, "relay_2");
}

static void test_parse_repeatable_name_refuses_other_shapes(void **state)
{
	static const char *const bad[] = {
		"R__.sql", "R_a.sql", "r__a.sql", "R__A.sql", "R__a-b.sql", "R__a.SQL", "R__a.sql.orig",
		"V1__a.sql", "0001_a.sql", "R__a b.sql", "R__",
	};
	char name[MIGFILE_NAME_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (migfile_parse_repeatable_name(bad[i], name) != PAY_EPARAM_INVALID)
			fail_msg("'%s' was accepted", bad[i]);
	}
	/* And a versioned name parser never takes a repeatable one. */
	assert_name_refused("R__create_charge.sql");
}

static void test_load_dir_puts_repeatables_after_versioned_files_by_name(void **state)
{
	char dir[] = "/tmp/test_migfile_XXXXXX";
	struct migfile_set set;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "R__zeta.sql", "SELECT 'z';\n");
	write_file(dir, "0002_two.sql", "SELECT 2;\n");
	write_file(dir, "R__alpha.sql", "SELECT 'a';\n");
	write_file(dir, "0001_one.sql", "SELECT 1;\n");
	assert_int_equal(migfile_load_dir(dir, &set), PAY_OK);
	assert_int_equal(set.n, 4);
	assert_string_equal(set.files[0].filename, "0001_one.sql");
	assert_false(set.files[0].repeatable);
	assert_string_equal(set.files[1].filename, "0002_two.sql");
	assert_string_equal(set.files[2].filename, "R__alpha.sql");
	assert_true(set.files[2].repeatable);
	assert_int_equal(set.files[2].version, 0);
	assert_string_equal(set.files[2].name, "alpha");
	assert_string_equal(set.files[3].name, "zeta");
	migfile_set_fini(&set);
	remove_file(dir, "R__zeta.sql");
	remove_file(dir, "0002_two.sql");
	remove_file(dir, "R__alpha.sql");
	remove_file(dir, "0001_one.sql");
	rmdir(dir);
}

static void test_load_dir_refuses_a_no_transaction_repeatable(void **state)
{
	char dir[] = "/tmp/test_migfile_XXXXXX";
	struct migfile_set set;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "0001_one.sql", "SELECT 1;\n");
	write_file(dir, "R__idx.sql", "-- payments:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);\n");
	assert_int_equal(migfile_load_dir(dir, &set), PAY_ECONFIG);
	assert_null(set.files);
	assert_int_equal(set.n, 0);
	remove_file(dir, "0001_one.sql");
	remove_file(dir, "R__idx.sql");
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_name_accepts_four_digits_and_name),
		cmocka_unit_test(test_parse_name_accepts_more_digits),
		cmocka_unit_test(test_parse_name_refuses_fewer_than_four_digits),
		cmocka_unit_test(test_parse_name_refuses_more_than_nine_digits),
		cmocka_unit_test(test_parse_name_refuses_version_zero),
		cmocka_unit_test(test_parse_name_refuses_missing_underscore),
		cmocka_unit_test(test_parse_name_refuses_bad_name_characters),
		cmocka_unit_test(test_parse_name_refuses_empty_name),
		cmocka_unit_test(test_parse_name_refuses_wrong_extension),
		cmocka_unit_test(test_parse_name_refuses_leading_letters),
		cmocka_unit_test(test_parse_name_limits_name_length),
		cmocka_unit_test(test_normalise_strips_bom),
		cmocka_unit_test(test_normalise_keeps_bom_like_bytes_later_in_text),
		cmocka_unit_test(test_normalise_turns_crlf_into_lf),
		cmocka_unit_test(test_normalise_keeps_lone_cr),
		cmocka_unit_test(test_normalise_leaves_lf_text_unchanged),
		cmocka_unit_test(test_normalise_handles_empty_and_bom_only_text),
		cmocka_unit_test(test_normalise_makes_checksum_independent_of_editor),
		cmocka_unit_test(test_checksum_is_sha256_hex),
		cmocka_unit_test(test_no_transaction_finds_marker_on_its_own_line),
		cmocka_unit_test(test_no_transaction_ignores_marker_inside_text),
		cmocka_unit_test(test_no_transaction_finds_later_marker_after_inline_one),
		cmocka_unit_test(test_count_statements_is_zero_for_empty_and_comment_only_text),
		cmocka_unit_test(test_count_statements_counts_semicolons_and_a_final_statement),
		cmocka_unit_test(test_count_statements_ignores_semicolons_in_comments),
		cmocka_unit_test(test_count_statements_ignores_semicolons_in_quotes),
		cmocka_unit_test(test_count_statements_ignores_semicolons_in_dollar_quotes),
		cmocka_unit_test(test_count_statements_handles_nested_block_comments),
		cmocka_unit_test(test_count_statements_handles_backslash_escapes_in_e_strings),
		cmocka_unit_test(test_load_dir_sorts_and_ignores_other_files),
		cmocka_unit_test(test_load_dir_refuses_two_files_with_one_version),
		cmocka_unit_test(test_load_dir_reports_missing_directory),
		cmocka_unit_test(test_load_dir_accepts_empty_directory),
		cmocka_unit_test(test_parse_repeatable_name_accepts_r_and_name),
		cmocka_unit_test(test_parse_repeatable_name_refuses_other_shapes),
		cmocka_unit_test(test_load_dir_puts_repeatables_after_versioned_files_by_name),
		cmocka_unit_test(test_load_dir_refuses_a_no_transaction_repeatable),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("migfile", tests, NULL, NULL);
}

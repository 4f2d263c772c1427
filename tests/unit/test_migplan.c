/* test_migplan.c - unit tests of migration planning: states, refusals and what up runs (migplan.c), and the TAP tally (migtap.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "migfile.h"
#include "migplan.h"
#include "migtap.h"

/* A file on "disk": versioned when version > 0, else the repeatable called name. */
static struct migfile file(int version, const char *name, const char *checksum)
{
	struct migfile f;

	memset(&f, 0, sizeof(f));
	f.version = version;
	f.repeatable = version == 0;
	snprintf(f.name, sizeof(f.name), "%s", name);
	if (version > 0)
		snprintf(f.filename, sizeof(f.filename), "%04d_%s.sql", version, name);
	else
		snprintf(f.filename, sizeof(f.filename), "R__%s.sql", name);
	snprintf(f.checksum, sizeof(f.checksum), "%s", checksum);
	return f;
}

/* A history row written at rank: versioned when version > 0. */
static struct migplan_row row(long long rank, int version, const char *name, const char *checksum,
			      const char *status)
{
	struct migplan_row r;

	memset(&r, 0, sizeof(r));
	r.rank = rank;
	r.version = version;
	r.repeatable = version == 0;
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.checksum, sizeof(r.checksum), "%s", checksum);
	snprintf(r.status, sizeof(r.status), "%s", status);
	return r;
}

/* The names of the files pending would run, joined by spaces. */
static int plan(const struct migplan_history *h, const struct migfile_set *s, int target,
		bool out_of_order, char *out, size_t len)
{
	const struct migfile *pending[16];
	int i, n = 0, rc;

	out[0] = '\0';
	rc = migplan_pending(h, s, target, out_of_order, pending, &n);
	for (i = 0; rc == PAY_OK && i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? " " : "", pending[i]->filename);
	return rc;
}

static void test_state_of_a_versioned_file_follows_its_row(void **state)
{
	struct migplan_row rows[] = { row(1, 1, "a", "c1", "applied"), row(2, 2, "b", "c2", "applied"),
				      row(3, 3, "c", "c3", "failed") };
	struct migplan_history h = { rows, 3 };
	struct migfile f1 = file(1, "a", "c1"), f2 = file(2, "b", "other"), f3 = file(3, "c", "c3"),
		       f4 = file(4, "d", "c4");

	(void)state;
	assert_int_equal(migplan_state(&h, &f1), MIGPLAN_APPLIED);
	assert_int_equal(migplan_state(&h, &f2), MIGPLAN_MODIFIED);
	assert_int_equal(migplan_state(&h, &f3), MIGPLAN_FAILED);
	assert_int_equal(migplan_state(&h, &f4), MIGPLAN_PENDING);
	assert_string_equal(migplan_state_name(MIGPLAN_MODIFIED), "MODIFIED");
	assert_false(migplan_state_runs(MIGPLAN_MODIFIED));
	assert_true(migplan_state_runs(MIGPLAN_FAILED));
}

static void test_state_of_a_repeatable_follows_its_last_run(void **state)
{
	/* Rows out of rank order, as nothing promises the table's order. */
	struct migplan_row rows[] = { row(5, 0, "f", "new", "failed"), row(2, 0, "f", "old", "applied"),
				      row(3, 0, "g", "g1", "failed"), row(4, 0, "g", "g2", "applied") };
	struct migplan_history h = { rows, 4 };
	struct migfile f_old = file(0, "f", "old"), g2 = file(0, "g", "g2"), g3 = file(0, "g", "g3"),
		       k = file(0, "k", "k1");

	(void)state;
	assert_ptr_equal(migplan_find_repeatable_row(&h, "f"), &rows[0]);
	assert_int_equal(migplan_state(&h, &f_old), MIGPLAN_FAILED);
	assert_int_equal(migplan_state(&h, &g2), MIGPLAN_APPLIED);
	assert_int_equal(migplan_state(&h, &g3), MIGPLAN_CHANGED);
	assert_int_equal(migplan_state(&h, &k), MIGPLAN_PENDING);
	assert_true(migplan_state_runs(MIGPLAN_CHANGED));
	assert_true(migplan_row_is_current(&h, &rows[3]));
	assert_false(migplan_row_is_current(&h, &rows[2]));
	/* A repeatable's row never stands for a versioned file, nor the other way round. */
	assert_null(migplan_find_row(&h, 0));
}

static void test_pending_runs_versioned_files_then_new_changed_and_failed_repeatables(void **state)
{
	struct migplan_row rows[] = { row(1, 1, "a", "c1", "applied"), row(2, 0, "same", "s", "applied"),
				      row(3, 0, "edited", "e1", "applied"), row(4, 0, "broken", "b", "failed") };
	struct migplan_history h = { rows, 4 };
	struct migfile files[] = { file(1, "a", "c1"), file(2, "b", "c2"), file(0, "broken", "b"),
				   file(0, "edited", "e2"), file(0, "fresh", "f"), file(0, "same", "s") };
	struct migfile_set s = { files, 6 };
	char out[512];

	(void)state;
	assert_int_equal(plan(&h, &s, 0, false, out, sizeof(out)), PAY_OK);
	assert_string_equal(out, "0002_b.sql R__broken.sql R__edited.sql R__fresh.sql");
}

static void test_pending_runs_no_repeatable_when_the_target_stops_short(void **state)
{
	struct migplan_row rows[] = { row(1, 1, "a", "c1", "applied") };
	struct migplan_history h = { rows, 1 };
	struct migfile files[] = { file(1, "a", "c1"), file(2, "b", "c2"), file(3, "c", "c3"),
				   file(0, "r", "r1") };
	struct migfile_set s = { files, 4 };
	char out[512];

	(void)state;
	assert_int_equal(plan(&h, &s, 2, false, out, sizeof(out)), PAY_OK);
	assert_string_equal(out, "0002_b.sql");
	assert_int_equal(plan(&h, &s, 3, false, out, sizeof(out)), PAY_OK);
	assert_string_equal(out, "0002_b.sql 0003_c.sql R__r.sql");
}

static void test_pending_refuses_a_modified_or_missing_versioned_file_only(void **state)
{
	struct migplan_row rows[] = { row(1, 1, "a", "c1", "applied"), row(2, 0, "gone", "g", "applied"),
				      row(3, 0, "r", "r1", "applied") };
	struct migplan_history h = { rows, 3 };
	struct migfile modified[] = { file(1, "a", "changed"), file(0, "r", "r2") };
	struct migfile changed_repeatable[] = { file(1, "a", "c1"), file(0, "r", "r2") };
	struct migfile_set s1 = { modified, 2 }, s2 = { changed_repeatable, 2 }, s3 = { NULL, 0 };
	char out[512];

	(void)state;
	assert_int_equal(plan(&h, &s1, 0, false, out, sizeof(out)), PAY_ESTATE);
	/* A repeatable that changed runs again, and one whose file went away is no refusal. */
	assert_int_equal(plan(&h, &s2, 0, false, out, sizeof(out)), PAY_OK);
	assert_string_equal(out, "R__r.sql");
	assert_int_equal(plan(&h, &s3, 0, false, out, sizeof(out)), PAY_ESTATE);
}

static void test_pending_refuses_a_file_below_the_last_applied_unless_allowed(void **state)
{
	struct migplan_row rows[] = { row(1, 1, "a", "c1", "applied"), row(2, 5, "e", "c5", "applied") };
	struct migplan_history h = { rows, 2 };
	struct migfile files[] = { file(1, "a", "c1"), file(3, "c", "c3"), file(5, "e", "c5") };
	struct migfile_set s = { files, 3 };
	char out[512];

	(void)state;
	assert_int_equal(migplan_max_applied(&h), 5);
	assert_int_equal(plan(&h, &s, 0, false, out, sizeof(out)), PAY_ESTATE);
	assert_int_equal(plan(&h, &s, 0, true, out, sizeof(out)), PAY_OK);
	assert_string_equal(out, "0003_c.sql");
}

static void test_tap_tally_counts_failures_errors_and_a_short_plan(void **state)
{
	struct migtap ok = { 0 }, bad = { 0 }, shortfall = { 0 };

	(void)state;
	migtap_line(&ok, "1..2", false);
	migtap_line(&ok, "ok 1 - one", false);
	migtap_line(&ok, "# a diagnostic", false);
	migtap_line(&ok, "ok 2 - two", false);
	assert_int_equal(migtap_failures(&ok), 0);

	migtap_line(&bad, "1..2", false);
	migtap_line(&bad, "ok 1 - one", false);
	migtap_line(&bad, "not ok 2 - two", false);
	migtap_line(&bad, "ERROR: relation does not exist\n", true);
	assert_int_equal(migtap_failures(&bad), 2);

	migtap_line(&shortfall, "1..3", false);
	migtap_line(&shortfall, "ok 1 - one", false);
	assert_int_equal(migtap_failures(&shortfall), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_of_a_versioned_file_follows_its_row),
		cmocka_unit_test(test_state_of_a_repeatable_follows_its_last_run),
		cmocka_unit_test(test_pending_runs_versioned_files_then_new_changed_and_failed_repeatables),
		cmocka_unit_test(test_pending_runs_no_repeatable_when_the_target_stops_short),
		cmocka_unit_test(test_pending_refuses_a_modified_or_missing_versioned_file_only),
		cmocka_unit_test(test_pending_refuses_a_file_below_the_last_applied_unless_allowed),
		cmocka_unit_test(test_tap_tally_counts_failures_errors_and_a_short_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#!/usr/bin/env bash
# test.sh - runs the test suites (unit, fuzz, sql, openapi, integration, chaos, ha, compose) and counts them.
#
# Usage: scripts/test.sh [--only unit|fuzz|sql|openapi|integration|chaos|ha|compose] [UNIT_BIN...]
#   unit         each UNIT_BIN (a cmocka binary) is one suite
#   fuzz         tests/fuzz/run.sh: every libFuzzer target of build/fuzz/ (make fuzz-build)
#                over its seeds and then for PAYMENTS_TEST_FUZZ_SECONDS (8) seconds in all
#   sql          sql-tests/run.sh: pgTAP, sql-tests/*.sql against a fresh, migrated database
#   openapi      tests/openapi/lint.sh: openapi.yaml against Redocly and the sources
#   integration  python3 tests/integration/run.py (the real binary over HTTP),
#                PAYMENTS_TEST_JOBS (3) modules at once
#   chaos        tests/chaos/run_short.sh: 15 s of load and crashes, then the invariants
#   ha           tests/ha/run_short.sh: a kill -9 of the primary and a controlled failover
#                under load on scripts/ha.sh's topology, when pg_autoctl exists
#   compose      docker-compose -f compose.yaml config -q, when docker-compose exists
# Every selected suite runs even when an earlier one fails; the last line is
# "N passed, N failed" and the exit status is 1 when any suite failed.
#
# Database (sql, integration and chaos): with DATABASE_URL unset, the embedded
# cluster (scripts/pg.sh) is started and left running; with it set, that
# server is used and must let its user create databases. Suites read
# PAYMENTS_TEST_ADMIN_URL (a database URL with the right to create databases)
# and PAYMENTS_TEST_EMBEDDED (1: the cluster is scripts/pg.sh's, which tests
# may stop and start).
#
# Each suite has a time budget in seconds, after which it is killed and
# counted as failed: PAYMENTS_TEST_BUDGET_UNIT (per binary, 120),
# PAYMENTS_TEST_BUDGET_FUZZ (180), PAYMENTS_TEST_BUDGET_SQL (180),
# PAYMENTS_TEST_BUDGET_OPENAPI (300), PAYMENTS_TEST_BUDGET_INTEGRATION (540),
# PAYMENTS_TEST_BUDGET_CHAOS (240), PAYMENTS_TEST_BUDGET_HA (240),
# PAYMENTS_TEST_BUDGET_COMPOSE (60).
set -uo pipefail # no -e: a failing suite is counted, not fatal

usage() {
	sed -n '2,15p' "$0" >&2
	exit 2
}

only=
case ${1:-} in
--only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
--only=*) only=${1#--only=}; shift ;;
-h | --help) usage ;;
esac
case $only in
'' | unit | fuzz | sql | openapi | integration | chaos | ha | compose) ;;
*) echo "test.sh: --only takes unit, fuzz, sql, openapi, integration, chaos, ha or compose" >&2; usage ;;
esac
unit_bins=()
for bin in "$@"; do
	# Absolute, since the suites run from the top of the repo.
	case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
	unit_bins+=("$bin")
done
cd "$(dirname "$0")/.." || exit 2
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
export PYTHONUNBUFFERED=1

passed=0
failed=0
failures=()
child=
current=

wants() {
	[ -z "$only" ] || [ "$only" = "$1" ]
}

summary() {
	echo
	[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
	echo "$passed passed, $failed failed"
}

fail_suite() {
	failed=$((failed + 1))
	failures+=("$1")
	echo "== $1: FAILED${2:+ ($2)}"
}

# run_suite NAME BUDGET COMMAND... runs COMMAND, killing it (and whatever it
# started) after BUDGET seconds, and counts the suite as passed or failed.
run_suite() {
	local name=$1 budget=$2 rc
	shift 2

	echo "== $name"
	# timeout(1) runs the command in a process group of its own and, when the
	# budget is spent or it is told to stop, signals that whole group.
	current=$name
	timeout --kill-after=10 "$budget" "$@" &
	child=$!
	wait "$child"
	rc=$?
	child=
	current=
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "== $name: ok"
	elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail_suite "$name" "over its budget of ${budget}s"
	else
		fail_suite "$name" "exit status $rc"
	fi
}

# run_db_suite NAME BUDGET COMMAND...: run_suite, or a failure when there is no database.
run_db_suite() {
	if [ "$db_ok" = 1 ]; then
		run_suite "$@"
	else
		fail_suite "$1" "no database"
	fi
}

# Ctrl-C or SIGTERM: stop the running suite, report what ran, and exit.
interrupt() {
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child"
	fi
	[ -z "$current" ] || fail_suite "$current" interrupted
	summary
	exit 130
}
trap interrupt INT TERM

db_ok=0
if wants sql || wants integration || wants chaos; then
	if [ -n "${DATABASE_URL:-}" ]; then
		db_ok=1
		PAYMENTS_TEST_ADMIN_URL=$DATABASE_URL
		PAYMENTS_TEST_EMBEDDED=0
	elif scripts/pg.sh start >/dev/null; then
		db_ok=1
		echo "PostgreSQL: the embedded cluster, left running (scripts/pg.sh stop)"
		PAYMENTS_TEST_ADMIN_URL=$(scripts/pg.sh url postgres)
		PAYMENTS_TEST_EMBEDDED=1
	else
		fail_suite postgresql "scripts/pg.sh start; see .pg/server.log"
	fi
	export PAYMENTS_TEST_ADMIN_URL PAYMENTS_TEST_EMBEDDED
fi

if wants unit; then
	for bin in "${unit_bins[@]}"; do
		run_suite "unit:$(basename "$bin")" "${PAYMENTS_TEST_BUDGET_UNIT:-120}" "$bin"
	done
fi

if wants fuzz; then
	run_suite fuzz-short "${PAYMENTS_TEST_BUDGET_FUZZ:-180}" \
		tests/fuzz/run.sh --seconds "${PAYMENTS_TEST_FUZZ_SECONDS:-8}"
fi

if wants sql; then
	run_db_suite sql "${PAYMENTS_TEST_BUDGET_SQL:-180}" sql-tests/run.sh "${PAYMENTS_TEST_ADMIN_URL:-}"
fi

if wants openapi; then
	run_suite openapi "${PAYMENTS_TEST_BUDGET_OPENAPI:-300}" tests/openapi/lint.sh
fi

if wants integration; then
	# Suites hammer one user far above the default rate limit; the tests of
	# the limiter set their own.
	PAYMENTS_RATE_LIMIT=${PAYMENTS_RATE_LIMIT:-0} \
		run_db_suite integration "${PAYMENTS_TEST_BUDGET_INTEGRATION:-540}" \
		python3 tests/integration/run.py -j "${PAYMENTS_TEST_JOBS:-3}"
fi

if wants chaos; then
	run_db_suite chaos "${PAYMENTS_TEST_BUDGET_CHAOS:-240}" tests/chaos/run_short.sh
fi

if wants ha; then
	# Its own topology (a monitor, a primary, a synchronous standby), not the
	# embedded cluster: scripts/deps.sh installs pg_auto_failover.
	if command -v pg_autoctl >/dev/null; then
		run_suite ha "${PAYMENTS_TEST_BUDGET_HA:-240}" tests/ha/run_short.sh
	else
		echo "== ha: pg_autoctl (postgresql-15-auto-failover) is not installed (skipped)"
	fi
fi

if wants compose; then
	if command -v docker-compose >/dev/null; then
		run_suite compose "${PAYMENTS_TEST_BUDGET_COMPOSE:-60}" \
			docker-compose -f compose.yaml config -q
	else
		echo "== compose: docker-compose is not installed (skipped)"
	fi
fi

summary
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# test.sh - runs the test suites (unit, sql, openapi, integration, chaos, compose) and counts them.
#
# Usage: scripts/test.sh [--only unit|sql|openapi|integration|chaos|compose] [UNIT_BIN...]
#   unit         each UNIT_BIN (a cmocka binary, or the short fuzz run) is one suite
#   sql          pgTAP: sql-tests/*.sql against a fresh, migrated payments_sqltest
#   openapi      tests/openapi/lint.sh: openapi.yaml against Redocly and the sources
#   integration  python3 tests/integration/run.py (the real binary over HTTP)
#   chaos        tests/chaos/run_short.sh: 15 s of load and crashes, then the invariants
#   compose      docker-compose -f compose.yaml config -q, when docker-compose exists
# Every selected suite runs even when an earlier one fails; the last line is
# "N passed, N failed" and the exit status is 1 when any suite failed.
#
# Database: with DATABASE_URL unset, the embedded cluster (scripts/pg.sh) is
# started and left running; with it set, that server is used and must let its
# user create databases. Suites read PAYMENTS_TEST_ADMIN_URL (a database URL
# with the right to create databases) and PAYMENTS_TEST_EMBEDDED (1: the
# cluster is scripts/pg.sh's, which tests may stop and start).
#
# Each suite has a time budget in seconds, after which it is killed and
# counted as failed: PAYMENTS_TEST_BUDGET_UNIT (per binary, 120),
# PAYMENTS_TEST_BUDGET_SQL (180), PAYMENTS_TEST_BUDGET_INTEGRATION (360),
# PAYMENTS_TEST_BUDGET_COMPOSE (60).
set -uo pipefail # no -e: a failing suite is counted, not fatal

repo=$(cd "$(dirname "$0")/.." && pwd)
self=$repo/scripts/test.sh
sql_db=payments_sqltest

usage() {
	sed -n '2,10p' "$self" >&2
	exit 2
}

# pg_env URL prints shell 'export PG...=' lines that make libpq clients (psql,
# pg_prove, bin/payments) reach the server and database of URL, a libpq URI or
# conninfo string. pg_prove mangles a conninfo passed as --dbname, and the
# environment also lets us switch databases without rewriting URLs.
pg_env() {
	python3 - "$1" <<'PY'
import re
import shlex
import sys
import urllib.parse as up

ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER",
    "password": "PGPASSWORD", "dbname": "PGDATABASE", "passfile": "PGPASSFILE",
    "options": "PGOPTIONS", "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL", "gssencmode": "PGGSSENCMODE", "channel_binding": "PGCHANNELBINDING",
    "connect_timeout": "PGCONNECT_TIMEOUT", "target_session_attrs": "PGTARGETSESSIONATTRS",
}

def from_uri(url):
    rest = url.split("://", 1)[1]
    netloc, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    out = {}
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, colon, password = userinfo.partition(":")
        if user:
            out["user"] = up.unquote(user)
        if colon:
            out["password"] = up.unquote(password)
    hosts, ports = [], []
    for spec in netloc.split(","):
        m = re.fullmatch(r"(\[[^]]*\]|[^:]*)(?::(\d*))?", spec)
        if m is None:
            sys.exit("test.sh: cannot read the host of " + url)
        hosts.append(up.unquote(m.group(1).strip("[]")))
        ports.append(m.group(2) or "")
    if any(hosts):
        out["host"] = ",".join(hosts)
    if any(ports):
        out["port"] = ",".join(ports)
    if path:
        out["dbname"] = up.unquote(path)
    out.update(up.parse_qsl(query, keep_blank_values=True))
    return out

def from_conninfo(s):
    out, i = {}, 0
    pat = re.compile(r"\s*(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)")
    while s[i:].strip():
        m = pat.match(s, i)
        if m is None:
            sys.exit("test.sh: cannot read the conninfo string " + repr(s))
        value = m.group(2)
        if value.startswith("'"):
            value = value[1:-1]
        out[m.group(1)] = re.sub(r"\\(.)", r"\1", value)
        i = m.end()
    return out

url = sys.argv[1]
params = from_uri(url) if re.match(r"postgres(ql)?://", url) else from_conninfo(url)
for key, value in params.items():
    if key not in ENV:
        sys.exit("test.sh: no environment variable for the connection parameter " + key)
    print("export %s=%s" % (ENV[key], shlex.quote(value)))
PY
}

# The sql suite, run as 'test.sh --suite-sql' so that it can run under timeout(1).
suite_sql() {
	local env

	set -e
	cd "$repo"
	env=$(pg_env "$PAYMENTS_TEST_ADMIN_URL")
	eval "$env"
	# Keep "does not exist, skipping" notices out of the report.
	export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
	psql -X -q -v ON_ERROR_STOP=1 \
		-c "DROP DATABASE IF EXISTS $sql_db WITH (FORCE)" \
		-c "CREATE DATABASE $sql_db"
	# From here on every client connects to the new database, with the rest
	# of the connection coming from the PG* variables.
	export PGDATABASE=$sql_db
	DATABASE_URL="dbname=$sql_db" bin/payments migrate up
	psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION IF NOT EXISTS pgtap'
	pg_prove --failures --comments sql-tests/*.sql
}

if [ "${1:-}" = --suite-sql ]; then
	suite_sql
	exit
fi

only=
while [ $# -gt 0 ]; do
	case $1 in
	--only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
	--only=*) only=${1#--only=}; shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "test.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
case $only in
'' | unit | sql | openapi | integration | chaos | compose) ;;
*) echo "test.sh: --only takes unit, sql, openapi, integration, chaos or compose" >&2; usage ;;
esac
unit_bins=()
for bin in "$@"; do
	# Absolute, since the suites run from the top of the repo.
	case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
	unit_bins+=("$bin")
done
cd "$repo"
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

db_ok=1
if [ "$only" != compose ]; then
	if [ -z "${DATABASE_URL:-}" ]; then
		if "$repo/scripts/pg.sh" start >/dev/null; then
			echo "PostgreSQL: the embedded cluster, left running (scripts/pg.sh stop)"
		else
			db_ok=0
			fail_suite postgresql "scripts/pg.sh start; see .pg/server.log"
		fi
		PAYMENTS_TEST_ADMIN_URL=$("$repo/scripts/pg.sh" url postgres)
		PAYMENTS_TEST_EMBEDDED=1
	else
		PAYMENTS_TEST_ADMIN_URL=$DATABASE_URL
		PAYMENTS_TEST_EMBEDDED=0
	fi
	export PAYMENTS_TEST_ADMIN_URL PAYMENTS_TEST_EMBEDDED
fi

if wants unit; then
	if [ ${#unit_bins[@]} -eq 0 ]; then
		echo "== unit: no test binaries given (skipped)"
	fi
	for bin in "${unit_bins[@]}"; do
		if [ -x "$bin" ]; then
			run_suite "unit:$(basename "$bin")" "${PAYMENTS_TEST_BUDGET_UNIT:-120}" "$bin"
		else
			fail_suite "unit:$(basename "$bin")" "$bin is not an executable"
		fi
	done
fi

if wants sql; then
	if ! compgen -G "sql-tests/*.sql" >/dev/null; then
		echo "== sql: sql-tests/ has no .sql files yet (skipped)"
	elif [ "$db_ok" = 0 ]; then
		fail_suite sql "no database"
	else
		run_suite sql "${PAYMENTS_TEST_BUDGET_SQL:-180}" "$self" --suite-sql
	fi
fi

if wants openapi; then
	run_suite openapi "${PAYMENTS_TEST_BUDGET_OPENAPI:-300}" tests/openapi/lint.sh
fi

if wants integration; then
	if [ ! -f tests/integration/run.py ]; then
		echo "== integration: tests/integration/run.py does not exist yet (skipped)"
	elif [ "$db_ok" = 0 ]; then
		fail_suite integration "no database"
	else
		# Suites hammer one user far above the default rate limit; the tests of
		# the limiter set their own.
		# Modules run 3 at a time: each has its own database and servers and mostly waits.
		PAYMENTS_RATE_LIMIT=${PAYMENTS_RATE_LIMIT:-0} \
			run_suite integration "${PAYMENTS_TEST_BUDGET_INTEGRATION:-540}" \
			python3 tests/integration/run.py -j "${PAYMENTS_TEST_JOBS:-3}"
	fi
fi

if wants chaos; then
	if [ "$db_ok" = 0 ]; then
		fail_suite chaos "no database"
	else
		# 15 s of load with serve, relay and PostgreSQL crashes, then every invariant.
		run_suite chaos "${PAYMENTS_TEST_BUDGET_CHAOS:-240}" tests/chaos/run_short.sh
	fi
fi

if wants compose; then
	if ! command -v docker-compose >/dev/null; then
		echo "== compose: docker-compose is not installed (skipped)"
	else
		run_suite compose "${PAYMENTS_TEST_BUDGET_COMPOSE:-60}" \
			docker-compose -f compose.yaml config -q
	fi
fi

summary
[ "$failed" -eq 0 ]

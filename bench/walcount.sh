#!/usr/bin/env bash
# walcount.sh - the database's write work per new charge, counted (not timed): WAL records,
# their bytes, b-tree entries and row locks per transaction, of create_charge() and of the limit.
#
#   DATABASE_URL=... bench/walcount.sh [N]     N transactions of each (default 3000)
#
# Runs bench/charge.pgbench (the service's SQL for one new charge) and bench/limit.pgbench
# (three bare inserts, bench/limit_schema.sql) N times each on one connection, and reads the
# WAL written in between with pg_walinspect (PostgreSQL 15; the extension is created if
# missing, so the URL's user must be allowed to). Unlike a rate, these counts do not depend
# on what else the machine is doing: use them to decide whether a schema change pays.
# record bytes leave out full-page images (fpi bytes): the run starts with a CHECKPOINT, so
# they count the pages touched for the first time since, which grows with the indexes that
# take their entries at random places (ids, keys) as the tables grow; compare them only
# between runs on tables of the same size.
# Writes into the database it is given (new charges of user "bench", the bench_limit
# schema): run it against a scratch database or the bench's, never production.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-3000}
url=${DATABASE_URL:?walcount.sh needs DATABASE_URL}
psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -X -qAt -v ON_ERROR_STOP=1 "$url" "$@"; }

psql_q -c "CREATE EXTENSION IF NOT EXISTS pg_walinspect" >/dev/null
psql_q -c "SELECT to_regclass('bench_limit.charges') IS NOT NULL" | grep -q t ||
	psql_q -f bench/limit_schema.sql >/dev/null 2>&1
# The limit stores a body as long as the service's charge object.
body='{"id":"ch_000000000000000000000000","object":"charge","amount":2000,"currency":"usd","status":"succeeded","source":"tok_visa","description":"bench","metadata":{},"amount_refunded":0,"refunded":false,"captured":true,"amount_captured":2000,"released_at":null,"release_reason":null,"failure_code":null,"decline_code":null,"created":1795318526}'

# count NAME SCRIPT [pgbench -D ...]: one line of per-transaction counts of SCRIPT.
count() {
	local name=$1 script=$2 start end
	shift 2
	psql_q -c CHECKPOINT >/dev/null
	start=$(psql_q -c "SELECT pg_current_wal_insert_lsn()")
	pgbench -n -M prepared -c 1 -t "$n" -f "$script" "$@" "$url" >/dev/null
	end=$(psql_q -c "SELECT pg_current_wal_insert_lsn()")
	psql_q -F ' ' -c "
		SELECT rpad('$name', 16),
		       lpad(round(sum(count)::numeric / $n, 2)::text, 8),
		       lpad(round(sum(record_size)::numeric / $n)::text, 13),
		       lpad(round(sum(fpi_size)::numeric / $n)::text, 10),
		       lpad(round(coalesce(sum(count) FILTER (WHERE \"resource_manager/record_type\"
		                                      IN ('Btree/INSERT_LEAF', 'Btree/INSERT_POST')), 0)
		                  ::numeric / $n, 2)::text, 15),
		       lpad(round(coalesce(sum(count) FILTER (WHERE \"resource_manager/record_type\"
		                                      = 'Heap/LOCK'), 0)::numeric / $n, 2)::text, 10)
		  FROM pg_get_wal_stats('$start', '$end', true)"
}

echo "per transaction, $n of each (pg_walinspect):"
echo "what             records  record bytes  fpi bytes  b-tree entries  row locks"
count create_charge bench/charge.pgbench -D user_id=bench -D key_id=-
count limit bench/limit.pgbench -D user_id=bench -D body="$body"

#!/usr/bin/env bash
# run.sh - make bench: the service's throughput, latency, memory and relay figures beside PostgreSQL's own limit and a Node.js peer.
#
# Usage: bench/run.sh   (make bench builds bin/payments and the tools, and installs the peer's
#                        npm packages, first)
#        BENCH_SECONDS=3 BENCH_SOAK_SECONDS=5 BENCH_GROWTH_ROWS=10000 bench/run.sh   (a quick check
#                        that the tooling works; its figures mean nothing)
#
# Starts its own PostgreSQL (scripts/pg.sh, a separate cluster on
# BENCH_PG_PORT) or, with DATABASE_URL set, creates a fresh database on that
# server; migrates; creates API keys and the limit's tables (bench_limit, see
# bench/limit_schema.sql); starts bin/payments serve and the Node.js peer
# (bench/peer/), and later the relay and a loopback webhook receiver; then
# measures, in this order:
#   1. the limit: pgbench -M prepared running bench/limit.pgbench, one
#      statement writing a charge's three rows into tables with primary keys
#      only, at BENCH_CONNECTIONS; beside it bench/charge.pgbench, the
#      service's own SQL (create_charge; the key comes from the cache) at the pool's
#      connections
#   2. new charges/s through HTTP (wrk, bench/charges.lua) at
#      BENCH_CONNECTIONS, then the peer's with the same wrk script
#   3. replays/s: retries of stored keys, ours and the peer's
#      Each run of (2) and (3) follows a run of (1): one "pair" per run, and
#      every ratio (to the limit, to the peer) is the median of the pairs'
#   4. open-loop latency at 50% of (2) (build/bench/openloop), and beside it
#      pgbench -R at the same rate, of create_charge and of the limit: the
#      database's own open-loop latency
#   5. scaling: charges/s at 1, 4, 16, 64 and 256 connections
#   8. the relay: deliveries/s draining a backlog (with the default share per
#      endpoint, then with the share at the batch, as for one fast receiver),
#      then the commit-to-delivery lag at BENCH_LAG_RATE charges/s during
#   7. the soak (BENCH_SOAK_SECONDS), with serve's RSS before and after it;
#      serve's peak RSS (VmHWM) is read right after (2)
#   6. growth: (2) and (3) again after bench/bulk_*.sql put 1M charges and
#      their idempotency keys in the tables
# It prints one table (figure, its ratios to the limit and to the peer,
# target, PASS/FAIL) and writes the same as JSON to
# bench/results/<timestamp>.json. Loopback only; everything it started is
# stopped on exit, and by a watchdog if this script is killed with SIGKILL
# (the peer also stops by itself when this script is gone).
# Durability is never relaxed (synchronous_commit stays on).
#
# Settings (environment):
#   BENCH_RUNS=1          runs (pairs) of each measurement; BENCH_RUNS=3 reports
#                         medians of 3 (the issue's targets), at about twice the time
#   BENCH_SECONDS=10      length of each measurement
#   BENCH_CONNECTIONS=16  connections of (2), (3), the peer's runs and the limit's pgbench
#   BENCH_SOAK_SECONDS=60 length of the soak (run once)
#   BENCH_LAG_RATE=1000   charges/s of the soak, where the relay lag is measured
#   BENCH_GROWTH_ROWS=1000000   charges bulk-inserted before the growth runs
#   BENCH_RELAY_EVENTS=20000    backlog the relay drains for deliveries/s
#   BENCH_RELAYS=1        relay processes (they share the outbox with SKIP LOCKED)
#   BENCH_REPLAY_KEYS=2000      stored keys the replay runs cycle through
#   BENCH_PEER=1          0 leaves the Node.js peer out (no node or npm here)
#   BENCH_PEER_WORKERS=2  the peer's cluster workers; its pool is PAYMENTS_DB_POOL_SIZE in all
#   BENCH_PORT_BASE       fixed loopback ports: the cluster on BASE (unless BENCH_PG_PORT),
#                         serve on BASE+1, the peer on BASE+2, the webhook receiver on
#                         BASE+3; so that benches of several people on one machine
#                         never collide (default: free ports picked at start)
#   BENCH_PG_PORT         port of the benchmark's own cluster
#   BENCH_KEEP=1          keep the logs under tmp/bench-<timestamp>/
#   BENCH_COMMIT          the commit recorded in the JSON (default: git rev-parse HEAD)
#   PAYMENTS_DB_POOL_SIZE (16), PAYMENTS_THREADS (16), PAYMENTS_RELAY_WORKERS (2) and the other PAYMENTS_*
#   settings are passed to serve as usual; the pool size is also create_charge's pgbench -c.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

runs=${BENCH_RUNS:-1}
secs=${BENCH_SECONDS:-10}
soak_secs=${BENCH_SOAK_SECONDS:-60}
lag_rate=${BENCH_LAG_RATE:-1000}
growth_rows=${BENCH_GROWTH_ROWS:-1000000}
relay_events=${BENCH_RELAY_EVENTS:-20000}
relays=${BENCH_RELAYS:-1}
relay_workers=${PAYMENTS_RELAY_WORKERS:-2}
relay_batch=${PAYMENTS_RELAY_BATCH:-200}
share=${PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT:-50}
replay_keys=${BENCH_REPLAY_KEYS:-2000}
pool=${PAYMENTS_DB_POOL_SIZE:-16}
threads=${PAYMENTS_THREADS:-16}
conns=${BENCH_CONNECTIONS:-16}
with_peer=${BENCH_PEER:-1}
peer_workers=${BENCH_PEER_WORKERS:-2}
port_base=${BENCH_PORT_BASE:-}
openloop=build/bench/openloop
receiver=build/bench/receiver

stamp=$(date -u +%Y%m%dT%H%M%SZ)
tag=$(date -u +%Y%m%d%H%M%S)
work=$repo/tmp/bench-$stamp
figures=$work/figures.tsv
mkdir -p "$work" bench/results
: >"$figures"
start_s=$SECONDS
bulk_pids=()

# ---------------------------------------------------------------- helpers

say() { printf '[bench %3ds] %s\n' $((SECONDS - start_s)) "$*" >&2; }
die() { say "error: $*"; exit 1; }

q() { psql -X -qAt -v ON_ERROR_STOP=1 "$db_url" -c "$1"; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_port OFFSET: BENCH_PORT_BASE + OFFSET, which must be free on 127.0.0.1; without
# BENCH_PORT_BASE, a free port.
bench_port() {
	local p

	if [ -z "$port_base" ]; then
		free_port
		return
	fi
	p=$((port_base + $1))
	# SO_REUSEADDR, as the servers set it: only a listener fails the check, not the last run's
	# connections in TIME_WAIT.
	python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()' "$p" 2>/dev/null || die "port $p (BENCH_PORT_BASE + $1) is in use"
	echo "$p"
}

# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# verdict VALUE OP LIMIT: PASS or FAIL.
verdict() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= l : v <= l; print ok ? "PASS" : "FAIL" }'; }

# figure KEY LABEL VALUE UNIT TARGET VERDICT NOTE [X_LIMIT [X_PEER]]: one row of the table and the
# JSON; X_LIMIT and X_PEER are the value as a ratio to the limit and to the peer's figure.
figure() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "${8:-}" "${9:-}" >>"$figures"
}

calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# rss_kb PID FIELD: VmRSS or VmHWM of a process, in kB.
rss_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- processes

pids=()
started_pg=0
admin_url=
dbname=

watchdog_pid=

# start_time PID: the process's start time (field 22 of /proc/PID/stat), which tells it from a
# later process that gets the same PID.
start_time() { awk '{ print $22 }' "/proc/$1/stat" 2>/dev/null; }

# watch_over PID: run in the background, does cleanup's work once PID (this script) is gone
# without doing it itself (kill -9): stops the processes listed in $work/pids ("PID
# START_TIME" a line; a PID that now names another process is left alone) and the cluster
# whose directory and port are in $work/pg, then removes $work (unless BENCH_KEEP=1).
watch_over() {
	local main=$1 pid st dir port

	while kill -0 "$main" 2>/dev/null; do
		sleep 1
	done
	if [ -f "$work/pids" ]; then
		while read -r pid st; do
			[ "$(start_time "$pid")" = "$st" ] && kill -TERM "$pid" 2>/dev/null
		done <"$work/pids"
	fi
	if [ -f "$work/pg" ]; then
		read -r dir port <"$work/pg"
		PAYMENTS_PG_DIR=$dir PAYMENTS_PG_PORT=$port scripts/pg.sh stop >/dev/null 2>&1
		rm -rf "$dir"
	fi
	if [ "${BENCH_KEEP:-0}" != 1 ]; then
		rm -rf "$work"
	fi
}

cleanup() {
	local pid

	trap - EXIT INT TERM
	if [ -n "$watchdog_pid" ]; then
		kill -TERM "$watchdog_pid" 2>/dev/null || true
	fi
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "$dbname" ]; then
		psql -X -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$dbname\" WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	if [ "$started_pg" = 1 ]; then
		scripts/pg.sh stop || true
		rm -rf "$pg_dir"
	fi
	if [ "${BENCH_KEEP:-0}" != 1 ]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
( set +e; watch_over $$ ) </dev/null >/dev/null 2>&1 &
watchdog_pid=$!

# start NAME COMMAND...: runs COMMAND in the background with its output in $work/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	last_pid=$!
	echo "$last_pid $(start_time "$last_pid")" >>"$work/pids"
}

# stop PID: stops one process started with start.
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------- database

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_start%% *}" 'BEGIN { exit !(l > 1.0) }'; then
	say "warning: load average $load_start before starting: other processes share the $(nproc) cores," \
		"so the figures will be low and noisy"
fi

if [ -n "${DATABASE_URL:-}" ]; then
	admin_url=$DATABASE_URL
else
	# A throwaway cluster of our own, on a free port: make test's .pg/ and other
	# sessions' clusters are left alone, and nothing of this run outlives it.
	# The port first: a port in use stops the run before there is a directory to clean up.
	pg_port=${BENCH_PG_PORT:-$(bench_port 0)}
	pg_dir=$(mktemp -d /tmp/payments-bench-pg.XXXXXX)
	# Open to the postgres user, or pg.sh would fall back to a directory shared with make test.
	chmod 755 "$pg_dir"
	export PAYMENTS_PG_DIR=$pg_dir
	export PAYMENTS_PG_PORT=$pg_port
	started_pg=1
	echo "$pg_dir $pg_port" >"$work/pg"
	say "starting PostgreSQL on 127.0.0.1:$PAYMENTS_PG_PORT ($PAYMENTS_PG_DIR)"
	scripts/pg.sh start postgres >/dev/null
	admin_url=$(scripts/pg.sh url postgres)
fi
dbname=payments_bench_$tag
if [[ $admin_url =~ ^postgres(ql)?:// ]]; then
	db_url=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
q = [(k, v) for k, v in u.parse_qsl(p.query, keep_blank_values=True) if k != "dbname"]
print(u.urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], u.urlencode(q), "")))' "$admin_url" "$dbname")
else
	db_url="$admin_url dbname='$dbname'"
fi
psql -X -q -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE \"$dbname\"" >/dev/null
sync_commit=$(q "SHOW synchronous_commit")
[ "$sync_commit" = on ] || die "synchronous_commit is $sync_commit: the benchmark only runs with it on"

port=$(bench_port 1)
base_url=http://127.0.0.1:$port
export DATABASE_URL=$db_url
export PAYMENTS_LISTEN=127.0.0.1:$port
export PAYMENTS_DB_POOL_SIZE=$pool
export PAYMENTS_THREADS=$threads
export PAYMENTS_RELAY_WORKERS=$relay_workers
# The per-user rate limit would measure itself, not the service; loopback receivers need this.
export PAYMENTS_RATE_LIMIT=0
export PAYMENTS_MAX_CONNECTIONS_PER_CLIENT=0   # wrk opens up to 256 connections from one address
export PAYMENTS_WEBHOOK_ALLOW_PRIVATE=1

bin/payments migrate up >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate failed"; }
key=$(bin/payments keys create --user bench)
relay_key=$(bin/payments keys create --user bench_relay)
key_id=${key:8:12}
relay_key_id=${relay_key:8:12}
psql -X -q -v ON_ERROR_STOP=1 "$db_url" -f bench/limit_schema.sql >/dev/null 2>&1 || die "bench/limit_schema.sql failed"

start serve bin/payments serve
serve_pid=$last_pid
for _ in $(seq 1 100); do
	curl -sf "$base_url/healthz" >/dev/null 2>&1 && break
	kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "serve did not start"; }
	sleep 0.1
done
say "serve pid $serve_pid on $base_url, pool $pool, threads $threads; database $dbname"

# wait_ready NAME PID URL: waits until URL answers 2xx, or dies when PID has exited or after 10 s.
wait_ready() {
	local i

	for i in $(seq 1 100); do
		curl -sf "$3" >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	cat "$work/$1.log" >&2
	die "$1 did not start"
}

# The peer: bench/peer/server.js, with the service's pool split over its workers, and a key of
# its own. It exits by itself once this script is gone (PEER_PARENT_PID).
peer_pid=
if [ "$with_peer" = 1 ]; then
	[ -d bench/peer/node_modules ] || die "bench/peer/node_modules is missing: run make bench (npm ci), or BENCH_PEER=0"
	peer_port=$(bench_port 2)
	peer_url=http://127.0.0.1:$peer_port
	peer_key=sk_test_peer_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	PEER_LISTEN=127.0.0.1:$peer_port PEER_API_KEY=$peer_key PEER_POOL=$pool PEER_WORKERS=$peer_workers \
		PEER_USER=bench PEER_PARENT_PID=$$ start peer node bench/peer/server.js
	peer_pid=$last_pid
	wait_ready peer "$peer_pid" "$peer_url/healthz"
	say "peer pid $peer_pid on $peer_url (Node.js $(node --version), $peer_workers workers, pool $pool in all)"
fi

# ---------------------------------------------------------------- measurements

# pgbench_run SCRIPT CONNS [pgbench flags...]: tps of a pgbench script at CONNS connections.
pgbench_run() {
	local script=$1 c=$2 out
	shift 2
	out=$(pgbench -n -M prepared -c "$c" -j $((c < 2 ? c : 2)) -f "$script" "$@" "$db_url" 2>&1) ||
		{ echo "$out" >&2; die "pgbench $script failed"; }
	awk '/^tps = / { print $3; exit }' <<<"$out"
}

# pgbench_tps USER_ID KEY_ID [pgbench flags...]: tps of bench/charge.pgbench (the service's own
# SQL) at the pool's connections.
pgbench_tps() {
	local user=$1 kid=$2
	shift 2
	pgbench_run bench/charge.pgbench "$pool" -D user_id="$user" -D key_id="$kid" "$@"
}

# limit_tps [pgbench flags...]: tps of bench/limit.pgbench at BENCH_CONNECTIONS, storing
# $limit_body, the body of one of the service's own replies, in each idempotency row.
limit_tps() {
	pgbench_run bench/limit.pgbench "$conns" -D user_id=bench -D body="$limit_body" "$@"
}

# db_latency FUNCTION RATE: "p50 p99" in ms of FUNCTION (pgbench_tps or limit_tps) run open loop
# with pgbench -R RATE for BENCH_SECONDS. pgbench -R counts each transaction from its scheduled
# start, like openloop: the per-transaction log's latency plus its schedule lag.
db_latency() {
	local fn=$1 rate=$2

	rm -f "$work"/pgb_lat.*
	if [ "$fn" = pgbench_tps ]; then
		pgbench_tps bench "$key_id" -T "$secs" -R "$rate" -l --log-prefix="$work/pgb_lat" >/dev/null
	else
		"$fn" -T "$secs" -R "$rate" -l --log-prefix="$work/pgb_lat" >/dev/null
	fi
	cat "$work"/pgb_lat.* | awk '{ print ($3 + $NF) / 1000 }' | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.3f %.3f\n", v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1] }'
}

# wrk_charges URL API_KEY CONNS PREFIX [REPLAY_KEYS]: "rate errors p99_ms" of BENCH_SECONDS of
# POST URL/v1/charges (the service or the peer); rate counts 2xx responses only.
wrk_charges() {
	local url=$1 api_key=$2 c=$3 prefix=$4 replay=${5:-0} out line

	out=$(wrk -t $((c < 2 ? c : 2)) -c "$c" -d "${secs}s" -s bench/charges.lua \
		"$url/v1/charges" -- "$api_key" "$prefix" "$replay" 2>&1) || { echo "$out" >&2; die "wrk failed"; }
	line=$(grep '^BENCH ' <<<"$out") || { echo "$out" >&2; die "wrk printed no result"; }
	awk '{ for (i = 2; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] }
	       printf "%.1f %d %.2f\n", (v["requests"] - v["status_errors"]) * 1e6 / v["duration_us"],
	              v["status_errors"] + v["connect_errors"] + v["read_errors"] + v["write_errors"] + v["timeouts"],
	              v["p99_us"] / 1000 }' <<<"$line"
}

# json_field JSON NAME: a number from openloop's one-line JSON.
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# openloop_run RATE SECONDS API_KEY PREFIX [REQUESTS [URL]]: openloop's JSON line; URL is the
# service's by default.
openloop_run() {
	local n=${5:-$(calc "$1 * $2" 0)} url=${6:-$base_url}

	"$openloop" --url "$url/v1/charges" --rate "$1" --requests "$n" --connections "$threads" \
		--header "Authorization: Bearer $3" --key-prefix "$4" \
		--body '{"amount":2000,"currency":"usd","source":"tok_visa","description":"bench"}'
}

# prepare_replays PREFIX [API_KEY URL]: stores BENCH_REPLAY_KEYS keys PREFIX0.. with wrk's body,
# on the service or the peer.
prepare_replays() {
	local out

	out=$(openloop_run 2000 0 "${2:-$key}" "$1" "$replay_keys" "${3:-$base_url}")
	[ "$(json_field "$out" ok)" = "$replay_keys" ] || die "storing the replay keys failed: $out"
}

# ratio A B: A / B to 2 decimals ("-" when B is 0 or empty).
ratio() { awk -v a="$1" -v b="${2:-0}" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

# median_of NAME: the median of the array NAME's numbers.
median_of() {
	local -n arr=$1
	printf '%s\n' "${arr[@]}" | median
}

# measure_new_and_replays LABEL [PAIRS]: (2) and (3) BENCH_RUNS times; sets new_rate, new_err,
# rep_rate, rep_err, and hwm_kb: serve's peak RSS right after the first new-charges run.
# With PAIRS=1 each run is a pair: first (1), the limit and create_charge by pgbench, then our
# new charges, the peer's, our replays and the peer's, so that each HTTP figure has its limit
# and peer figures from the same minute (this machine's speed drifts by tens of percent). Then
# it also sets lim_tps, db_tps, peer_new, peer_rep and the medians of the pairs' ratios:
# x_new_lim, x_new_peer, x_rep_lim, x_rep_peer, x_db_lim, x_peer_new_lim, x_peer_rep_lim.
measure_new_and_replays() {
	local pairs=${2:-0} i r e t l res before after
	local -a rates=() rrates=() lims=() tps=() pnews=() preps=()
	local -a r_new_lim=() r_new_peer=() r_rep_lim=() r_rep_peer=() r_db_lim=() r_pn_lim=() r_pr_lim=()

	new_err=0 rep_err=0 peer_err=0
	prepare_replays "rp-$1-$tag-"
	if [ "$pairs" = 1 ] && [ "$with_peer" = 1 ]; then
		prepare_replays "prp-$1-$tag-" "$peer_key" "$peer_url"
	fi
	for i in $(seq 1 "$runs"); do
		if [ "$pairs" = 1 ]; then
			l=$(limit_tps -T "$secs")
			t=$(pgbench_tps bench "$key_id" -T "$secs")
			lims+=("$l") tps+=("$t")
			r_db_lim+=("$(ratio "$t" "$l")")
			say "  run $i: limit $(calc "$l") tx/s (-c $conns); create_charge $(calc "$t") tx/s (-c $pool)"
		fi
		res=$(wrk_charges "$base_url" "$key" "$conns" "new-$1-$tag-$i-")
		read -r r e _ <<<"$res"
		if [ "$i" = 1 ]; then
			hwm_kb=$(rss_kb "$serve_pid" VmHWM)
		fi
		rates+=("$r")
		new_err=$((new_err + e))
		say "  $1 run $i: new charges $r/s ($e errors)"
		if [ "$pairs" = 1 ]; then
			r_new_lim+=("$(ratio "$r" "$l")")
		fi
		if [ "$pairs" = 1 ] && [ "$with_peer" = 1 ]; then
			res=$(wrk_charges "$peer_url" "$peer_key" "$conns" "pnew-$1-$tag-$i-")
			read -r t e _ <<<"$res"
			pnews+=("$t")
			peer_err=$((peer_err + e))
			r_new_peer+=("$(ratio "$r" "$t")") r_pn_lim+=("$(ratio "$t" "$l")")
			say "  $1 run $i: peer's new charges $t/s ($e errors)"
		fi

		before=$(q "SELECT count(*) FROM charges")
		res=$(wrk_charges "$base_url" "$key" "$conns" "rp-$1-$tag-" "$replay_keys")
		read -r r e _ <<<"$res"
		after=$(q "SELECT count(*) FROM charges")
		[ "$before" = "$after" ] || die "the replay run created $((after - before)) charges"
		rrates+=("$r")
		rep_err=$((rep_err + e))
		say "  $1 run $i: replays $r/s ($e errors)"
		if [ "$pairs" = 1 ]; then
			r_rep_lim+=("$(ratio "$r" "$l")")
		fi
		if [ "$pairs" = 1 ] && [ "$with_peer" = 1 ]; then
			before=$(q "SELECT count(*) FROM bench_limit.charges")
			res=$(wrk_charges "$peer_url" "$peer_key" "$conns" "prp-$1-$tag-" "$replay_keys")
			read -r t e _ <<<"$res"
			after=$(q "SELECT count(*) FROM bench_limit.charges")
			[ "$before" = "$after" ] || die "the peer's replay run created $((after - before)) charges"
			preps+=("$t")
			peer_err=$((peer_err + e))
			r_rep_peer+=("$(ratio "$r" "$t")") r_pr_lim+=("$(ratio "$t" "$l")")
			say "  $1 run $i: peer's replays $t/s ($e errors)"
		fi
	done
	new_rate=$(median_of rates)
	rep_rate=$(median_of rrates)
	if [ "$pairs" = 1 ]; then
		lim_tps=$(median_of lims) db_tps=$(median_of tps)
		x_new_lim=$(median_of r_new_lim) x_rep_lim=$(median_of r_rep_lim) x_db_lim=$(median_of r_db_lim)
		if [ "$with_peer" = 1 ]; then
			peer_new=$(median_of pnews) peer_rep=$(median_of preps)
			x_new_peer=$(median_of r_new_peer) x_rep_peer=$(median_of r_rep_peer)
			x_peer_new_lim=$(median_of r_pn_lim) x_peer_rep_lim=$(median_of r_pr_lim)
		fi
	fi
}

# The body the limit stores in each idempotency row: one of the service's own, so that the
# rows are as long as the service's.
limit_body=$(curl -sf -X POST "$base_url/v1/charges" -H "Authorization: Bearer $key" \
	-H "Idempotency-Key: body-$tag" -H 'Content-Type: application/json' \
	-d '{"amount":2000,"currency":"usd","source":"tok_visa","description":"bench"}') ||
	die "the first charge failed"

say "1./2./3. pairs: the limit (pgbench -c $conns) and create_charge (pgbench -c $pool), then new" \
	"charges and replays through HTTP and the peer's, wrk -c $conns, ${secs}s each, x $runs"
measure_new_and_replays empty 1
if awk -v r="$new_rate" -v d="$lim_tps" 'BEGIN { exit !(r < 1 || d < 1) }'; then
	tail -n 20 "$work/serve.log" >&2
	die "no charges were created (limit $lim_tps/s, HTTP $new_rate/s)"
fi
if [ "$with_peer" = 1 ]; then
	# Its part is done: its processes and connections stay out of the later measurements.
	stop "$peer_pid"
else
	x_new_peer=- x_rep_peer=-
fi

figure limit_tps "1. limit: bench/limit.pgbench, -c $conns" "$(calc "$lim_tps")" "tx/s" "-" "-" \
	"three rows, primary keys only, one statement" "1.00"
figure db_create_charge_tps "1. pgbench: create_charge, -c $pool" "$(calc "$db_tps")" "tx/s" \
	"-" "-" "the service's own SQL" "$x_db_lim"
figure new_charges_per_s "2. new charges/s (wrk -c $conns)" "$new_rate" "req/s" "-" "-" "$new_err errors" \
	"$x_new_lim" "$x_new_peer"
if [ "$with_peer" = 1 ]; then
	figure peer_new_per_s "2. peer: new charges/s (Node.js, wrk -c $conns)" "$(calc "$peer_new")" "req/s" \
		"-" "-" "$peer_workers workers, pool $pool in all; $peer_err errors in its runs" "$x_peer_new_lim" "1.00"
fi
figure replays_per_s "3. replays/s (wrk -c $conns, $replay_keys keys)" "$rep_rate" "req/s" "-" "-" \
	"$rep_err errors" "$x_rep_lim" "$x_rep_peer"
if [ "$with_peer" = 1 ]; then
	figure peer_replays_per_s "3. peer: replays/s (Node.js, wrk -c $conns)" "$(calc "$peer_rep")" "req/s" \
		"-" "-" "" "$x_peer_rep_lim" "1.00"
fi
figure new_vs_limit "2. target: new charges / the limit" "$x_new_lim" "x" ">= 0.55" \
	"$(verdict "$x_new_lim" ">=" 0.55)" "median of the $runs pairs' ratios"
if [ "$with_peer" = 1 ]; then
	figure new_vs_peer "2. target: new charges / the peer's" "$x_new_peer" "x" ">= 3" \
		"$(verdict "$x_new_peer" ">=" 3)" "median of the $runs pairs' ratios"
	figure replays_vs_peer "3. target: replays / the peer's replays" "$x_rep_peer" "x" ">= 5" \
		"$(verdict "$x_rep_peer" ">=" 5)" "median of the $runs pairs' ratios"
fi

ol_rate=$(calc "$new_rate / 2" 0)
# Beside each run, the database alone at the same rate, open loop too: create_charge (the
# service's SQL at its pool) and the limit (at BENCH_CONNECTIONS). They are the floor under (4)
# on this machine's disk and cores.
say "4. open-loop latency at $ol_rate/s (50% of $new_rate), and pgbench -R $ol_rate of create_charge" \
	"and of the limit, ${secs}s each, x $runs"
p50s=() p99s=() p999s=() ol_err=0 db_p50s=() db_p99s=() lim_p50s=() lim_p99s=()
for i in $(seq 1 "$runs"); do
	out=$(openloop_run "$ol_rate" "$secs" "$key" "ol-$tag-$i-")
	p50s+=("$(json_field "$out" p50_ms)")
	p99s+=("$(json_field "$out" p99_ms)")
	p999s+=("$(json_field "$out" p999_ms)")
	ol_err=$((ol_err + $(json_field "$out" errors)))
	say "  run $i: $out"
	read -r a b <<<"$(db_latency pgbench_tps "$ol_rate")"
	db_p50s+=("$a") db_p99s+=("$b")
	say "  run $i: create_charge alone: p50 $a ms, p99 $b ms"
	read -r a b <<<"$(db_latency limit_tps "$ol_rate")"
	lim_p50s+=("$a") lim_p99s+=("$b")
	say "  run $i: the limit alone: p50 $a ms, p99 $b ms"
done
p99=$(median_of p99s)
db_p99=$(median_of db_p99s)
lim_p99=$(median_of lim_p99s)
p50=$(median_of p50s)
lim_p50=$(median_of lim_p50s)
figure openloop_p50_ms "4. latency p50 at $ol_rate/s, open loop" "$p50" "ms" "-" "-" "" "$(ratio "$p50" "$lim_p50")"
figure openloop_p99_ms "4. latency p99 at $ol_rate/s, open loop" "$p99" "ms" "<= 10" "$(verdict "$p99" "<=" 10)" \
	"$ol_err errors; the database's own p99 at this rate: create_charge $db_p99 ms, the limit $lim_p99 ms" \
	"$(ratio "$p99" "$lim_p99")"
figure openloop_p999_ms "4. latency p99.9 at $ol_rate/s, open loop" "$(median_of p999s)" "ms" "-" "-" ""
figure db_openloop_p50_ms "4. create_charge alone at $ol_rate/s: p50 (-R, -c $pool)" "$(median_of db_p50s)" \
	"ms" "-" "-" ""
figure db_openloop_p99_ms "4. create_charge alone at $ol_rate/s: p99 (-R, -c $pool)" "$db_p99" "ms" "-" "-" \
	"HTTP p99 = $(ratio "$p99" "$db_p99") x create_charge's own"
figure limit_openloop_p50_ms "4. the limit alone at $ol_rate/s: p50 (-R, -c $conns)" "$lim_p50" "ms" "-" "-" \
	"" "1.00"
figure limit_openloop_p99_ms "4. the limit alone at $ol_rate/s: p99 (-R, -c $conns)" "$lim_p99" "ms" "-" "-" \
	"HTTP p99 = $(ratio "$p99" "$lim_p99") x the limit's own" "1.00"

say "5. scaling: 1, 4, 16, 64, 256 connections, ${secs}s x $runs each"
peak=$new_rate
declare -A scale scale_err
for c in 1 4 16 64 256; do
	rates=() errs=0
	for i in $(seq 1 "$runs"); do
		res=$(wrk_charges "$base_url" "$key" "$c" "sc-$c-$tag-$i-")
		read -r r e _ <<<"$res"
		rates+=("$r")
		errs=$((errs + e))
	done
	scale[$c]=$(median_of rates)
	scale_err[$c]=$errs
	say "  $c connections: ${scale[$c]}/s ($errs errors)"
	peak=$(awk -v a="$peak" -v b="${scale[$c]}" 'BEGIN { print (b > a) ? b : a }')
done
# The scaling runs have no pairs: their ratios are to the median limit of (1).
for c in 1 4 16 64; do
	figure "scale_${c}_per_s" "5. charges/s at $c connections" "${scale[$c]}" "req/s" "-" "-" \
		"${scale_err[$c]} errors" "$(ratio "${scale[$c]}" "$lim_tps")"
done
figure scale_256_per_s "5. charges/s at 256 connections" "${scale[256]}" "req/s" \
	">= 80% of peak $peak = $(calc "0.8 * $peak")" "$(verdict "${scale[256]}" ">=" "$(calc "0.8 * $peak")")" \
	"$(calc "100 * ${scale[256]} / $peak" 0)% of peak; ${scale_err[256]} errors" \
	"$(ratio "${scale[256]}" "$lim_tps")"

say "8. relay: receiver, endpoint, a backlog of $relay_events events"
rport=$(bench_port 3)
start receiver "$receiver" --listen "127.0.0.1:$rport" --log "$work/received.tsv"
receiver_pid=$last_pid
sleep 0.2
curl -sf -X POST "$base_url/v1/webhook_endpoints" -H "Authorization: Bearer $relay_key" \
	-H 'Content-Type: application/json' \
	-d "{\"url\":\"http://127.0.0.1:$rport/hook\",\"enabled_events\":[\"*\"]}" >/dev/null ||
	die "creating the webhook endpoint failed"
# The earlier phases' events belong to a user without endpoints: nothing to deliver. Mark them
# published so that the relay's figures measure deliveries, not the fan-out of that history.
q "UPDATE outbox_events SET published_at = now() WHERE published_at IS NULL" >/dev/null
# That update (every event of the earlier phases at once, which no relay does) leaves a dead
# version of each row in the outbox's indexes; vacuumed here, so that the drains measure the
# relay rather than autovacuum cleaning up after the bench.
q "VACUUM ANALYZE outbox_events" >/dev/null
per_client=$(( (relay_events + pool - 1) / pool ))
relay_events=$((per_client * pool))
pgbench_tps bench_relay "$relay_key_id" -t "$per_client" >/dev/null
# start_relays / stop_relays: the BENCH_RELAYS relay processes.
start_relays() {
	local k

	relay_pids=()
	for k in $(seq 1 "$relays"); do
		start "relay$k" bin/payments relay
		relay_pids+=("$last_pid")
	done
}
stop_relays() {
	local pid

	for pid in "${relay_pids[@]}"; do
		stop "$pid"
	done
}

# relay_drain: BENCH_RUNS drains of a fresh backlog of relay_events (the first is there already);
# sets relay_rate to the median deliveries/s.
relay_drain() {
	local i base t0 t1 done_n r rates=() cap=$((secs * 4 > 30 ? secs * 4 : 30))

	for i in $(seq 1 "$runs"); do
		if [ "$i" -gt 1 ]; then
			pgbench_tps bench_relay "$relay_key_id" -t "$per_client" >/dev/null
		fi
		base=$(q "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
		start_relays
		t0=$(date +%s.%N)
		# At the target's 5,000/s the default backlog drains in 4 s: a look every 0.1 s keeps the
		# time counted past the last delivery under 3% of it.
		while :; do
			sleep 0.1
			done_n=$(( $(q "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'") - base ))
			t1=$(date +%s.%N)
			[ "$done_n" -ge "$relay_events" ] && break
			awk -v a="$t0" -v b="$t1" -v c="$cap" 'BEGIN { exit !(b - a > c) }' && break
		done
		r=$(calc "$done_n / ($t1 - $t0)")
		rates+=("$r")
		say "  run $i: $done_n deliveries in $(calc "$t1 - $t0" 2)s: $r/s"
		stop_relays
		if [ "$done_n" -lt "$relay_events" ]; then
			# What is left would be in the soak's way: its lag is about new events only.
			say "  the relay did not drain the backlog within ${cap}s: setting the rest aside"
			q "UPDATE outbox_events SET published_at = now() WHERE published_at IS NULL" >/dev/null
			q "UPDATE webhook_deliveries SET status = 'dead', locked_until = NULL WHERE status = 'pending'" >/dev/null
		fi
	done
	relay_rate=$(median_of rates)
}

relay_drain
figure relay_deliveries_per_s "8. relay deliveries/s ($relays relay x $relay_workers workers, backlog of $relay_events)" "$relay_rate" "req/s" ">= 5000" \
	"$(verdict "$relay_rate" ">=" 5000)" "the default share: $share in flight per endpoint and worker"
# The share (PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT) is what keeps one tenant's hanging receiver from
# holding a worker's pipeline; with a single receiver it only caps each claim. Beside the default,
# the same drain with the share at the batch, as the README advises for a few fast receivers.
say "8. relay again, PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT=$relay_batch (the batch)"
pgbench_tps bench_relay "$relay_key_id" -t "$per_client" >/dev/null
export PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT=$relay_batch
relay_drain
export PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT=$share
figure relay_full_share_per_s "8. relay deliveries/s, share = batch ($relay_batch)" "$relay_rate" "req/s" "-" "-" \
	"one endpoint: PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT=$relay_batch"

say "7./8. soak: ${soak_secs}s at $lag_rate charges/s with the relay delivering"
start_relays
sleep 1
rss_before=$(rss_kb "$serve_pid" VmRSS)
soak_start=$(q "SELECT now()")
out=$(openloop_run "$lag_rate" "$soak_secs" "$relay_key" "soak-$tag-")
rss_after=$(rss_kb "$serve_pid" VmRSS)
say "  $out"
soak_err=$(json_field "$out" errors)
sleep 2   # the last deliveries, and the receiver's flush
lag=$(psql -X -qAt -v ON_ERROR_STOP=1 "$db_url" <<SQL
CREATE TEMP TABLE received (id text, at_us bigint);
\copy received FROM '$work/received.tsv'
WITH firsts AS (SELECT id, min(at_us) AS at_us FROM received GROUP BY id),
     lags AS (SELECT extract(epoch FROM to_timestamp(f.at_us / 1e6) - e.created) * 1000 AS ms
                FROM outbox_events e JOIN firsts f ON f.id = e.id
               WHERE e.created >= '$soak_start' AND e.user_id = 'bench_relay')
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
       count(*),
       (SELECT count(*) FROM outbox_events WHERE created >= '$soak_start' AND user_id = 'bench_relay')
  FROM lags;
SQL
)
IFS='|' read -r lag_p50 lag_p99 lag_n lag_total <<<"$lag"
stop_relays
stop "$receiver_pid"
figure relay_lag_p50_ms "8. commit-to-delivery lag p50 at $lag_rate/s" "${lag_p50:-0}" "ms" "-" "-" \
	"$lag_n of $lag_total events delivered"
figure relay_lag_p99_ms "8. commit-to-delivery lag p99 at $lag_rate/s" "${lag_p99:-0}" "ms" "<= 100" \
	"$(verdict "${lag_p99:-99999}" "<=" 100)" ""
figure serve_peak_rss_mib "7. serve peak RSS (VmHWM) after (2)" "$(mib "$hwm_kb")" "MiB" "<= 32" \
	"$(verdict "$(mib "$hwm_kb")" "<=" 32)" ""
figure soak_rss_growth_mib "7. serve RSS growth over the ${soak_secs}s soak" "$(mib $((rss_after - rss_before)))" \
	"MiB" "<= 2" "$(verdict "$(mib $((rss_after - rss_before)))" "<=" 2)" \
	"$(mib "$rss_before") -> $(mib "$rss_after") MiB; soak $soak_err errors"

say "6. growth: bulk-inserting $growth_rows charges and their keys, then VACUUM ANALYZE"
t0=$SECONDS
# One session per table, so that both cores work on the load.
for part in charges keys; do
	start "bulk_$part" psql -X -q -v ON_ERROR_STOP=1 -v rows="$growth_rows" -v user=bench \
		-f "bench/bulk_$part.sql" "$db_url"
	bulk_pids+=("$last_pid")
done
for pid in "${bulk_pids[@]}"; do
	wait "$pid" || { cat "$work"/bulk_*.log >&2; die "the bulk load failed"; }
done
say "  loaded in $((SECONDS - t0))s; $(q "SELECT pg_size_pretty(pg_database_size(current_database()))")"
# The load's 1.4 GB would still be going to disk during the runs: (6) is about a full table, not
# about the flush of the load. A checkpoint writes it now (a superuser or pg_checkpoint may; if
# the DATABASE_URL user may not, the runs share the disk with the flush, and the note says so).
if q "CHECKPOINT" >/dev/null 2>&1; then
	growth_note=""
else
	growth_note="no CHECKPOINT after the load; "
fi
empty_new=$new_rate empty_rep=$rep_rate
measure_new_and_replays grown
figure growth_new_per_s "6. new charges/s with $growth_rows rows" "$new_rate" "req/s" \
	">= 80% of $empty_new = $(calc "0.8 * $empty_new")" "$(verdict "$new_rate" ">=" "$(calc "0.8 * $empty_new")")" \
	"$growth_note$(calc "100 * $new_rate / $empty_new" 0)% of empty; $new_err errors" \
	"$(ratio "$new_rate" "$lim_tps")"
figure growth_replays_per_s "6. replays/s with $growth_rows rows" "$rep_rate" "req/s" \
	">= 80% of $empty_rep = $(calc "0.8 * $empty_rep")" "$(verdict "$rep_rate" ">=" "$(calc "0.8 * $empty_rep")")" \
	"$(calc "100 * $rep_rate / $empty_rep" 0)% of empty; $rep_err errors" \
	"$(ratio "$rep_rate" "$lim_tps")"

say "done in $((SECONDS - start_s))s"
python3 bench/report.py "$figures" "bench/results/$stamp.json" \
	stamp="$stamp" commit="${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}" \
	dirty="$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l | tr -d ' ')" \
	runs="$runs" seconds="$secs" soak_seconds="$soak_secs" connections="$conns" pool="$pool" threads="$threads" peer_workers="$peer_workers" \
	cores="$(nproc)" loadavg_start="$load_start" loadavg_end="$(cut -d' ' -f1-3 /proc/loadavg)" elapsed_s="$((SECONDS - start_s))"

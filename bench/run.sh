#!/usr/bin/env bash
# run.sh - make bench: the service's throughput, latency, memory and relay figures beside PostgreSQL's own limit.
#
# Usage: bench/run.sh   (make bench builds bin/payments and the tools first)
#
# Starts its own PostgreSQL (scripts/pg.sh, a separate cluster on
# BENCH_PG_PORT) or, with DATABASE_URL set, creates a fresh database on that
# server; migrates; creates API keys; starts bin/payments serve, and later the
# relay and a loopback webhook receiver; then measures, in this order:
#   1. the database limit: pgbench -M prepared running bench/charge.pgbench
#      (the API key read + create_charge, new keys) at the pool's connections
#   2. new charges/s through HTTP (wrk, bench/charges.lua), same concurrency,
#      each run right after a run of (1): the ratio is the median of the pairs'
#   3. replays/s: retries of stored keys
#   4. open-loop latency at 50% of (2) (build/bench/openloop), and beside it
#      pgbench -R at the same rate: the database's own open-loop latency
#   5. scaling: charges/s at 1, 4, 16, 64 and 256 connections
#   8. the relay: deliveries/s draining a backlog, then the commit-to-delivery
#      lag at BENCH_LAG_RATE charges/s during
#   7. the soak (BENCH_SOAK_SECONDS), with serve's RSS before and after it;
#      serve's peak RSS (VmHWM) is read right after (2)
#   6. growth: (2) and (3) again after bench/bulk_*.sql put 1M charges and
#      their idempotency keys in the tables
# It prints one table (figure, target, PASS/FAIL) and writes the same as JSON
# to bench/results/<timestamp>.json. Loopback only; everything it started is
# stopped on exit. Durability is never relaxed (synchronous_commit stays on).
#
# Settings (environment):
#   BENCH_RUNS=1          runs of each measurement; BENCH_RUNS=3 reports medians
#                         of 3 (the issue's targets), at about twice the time
#   BENCH_SECONDS=10      length of each measurement
#   BENCH_SOAK_SECONDS=60 length of the soak (run once)
#   BENCH_LAG_RATE=500    charges/s of the soak, where the relay lag is measured
#   BENCH_GROWTH_ROWS=1000000   charges bulk-inserted before the growth runs
#   BENCH_RELAY_EVENTS=20000    backlog the relay drains for deliveries/s
#   BENCH_RELAYS=1        relay processes (they share the outbox with SKIP LOCKED)
#   BENCH_REPLAY_KEYS=2000      stored keys the replay runs cycle through
#   BENCH_PORT_BASE       fixed loopback ports: the cluster on BASE (unless BENCH_PG_PORT),
#                         serve on BASE+1, the webhook receiver on BASE+3; so that benches
#                         of several people on one machine never collide (default: free
#                         ports picked at start)
#   BENCH_PG_PORT         port of the benchmark's own cluster
#   BENCH_KEEP=1          keep the logs under tmp/bench-<timestamp>/
#   BENCH_COMMIT          the commit recorded in the JSON (default: git rev-parse HEAD)
#   PAYMENTS_DB_POOL_SIZE (8), PAYMENTS_THREADS (16), PAYMENTS_RELAY_WORKERS (2) and the other PAYMENTS_*
#   settings are passed to serve as usual; the pool size is also pgbench's -c.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

runs=${BENCH_RUNS:-1}
secs=${BENCH_SECONDS:-10}
soak_secs=${BENCH_SOAK_SECONDS:-60}
lag_rate=${BENCH_LAG_RATE:-500}
growth_rows=${BENCH_GROWTH_ROWS:-1000000}
relay_events=${BENCH_RELAY_EVENTS:-20000}
relays=${BENCH_RELAYS:-1}
relay_workers=${PAYMENTS_RELAY_WORKERS:-2}
replay_keys=${BENCH_REPLAY_KEYS:-2000}
pool=${PAYMENTS_DB_POOL_SIZE:-8}
threads=${PAYMENTS_THREADS:-16}
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
	python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null ||
		die "port $p (BENCH_PORT_BASE + $1) is in use"
	echo "$p"
}

# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# verdict VALUE OP LIMIT: PASS or FAIL.
verdict() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= l : v <= l; print ok ? "PASS" : "FAIL" }'; }

# figure KEY LABEL VALUE UNIT TARGET VERDICT NOTE: one row of the table and the JSON.
figure() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$figures"; }

calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# rss_kb PID FIELD: VmRSS or VmHWM of a process, in kB.
rss_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- processes

pids=()
started_pg=0
admin_url=
dbname=

cleanup() {
	local pid

	trap - EXIT INT TERM
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

# start NAME COMMAND...: runs COMMAND in the background with its output in $work/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	last_pid=$!
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
	pg_dir=$(mktemp -d /tmp/payments-bench-pg.XXXXXX)
	# Open to the postgres user, or pg.sh would fall back to a directory shared with make test.
	chmod 755 "$pg_dir"
	export PAYMENTS_PG_DIR=$pg_dir
	pg_port=${BENCH_PG_PORT:-$(bench_port 0)}
	export PAYMENTS_PG_PORT=$pg_port
	started_pg=1
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
export PAYMENTS_WEBHOOK_ALLOW_PRIVATE=1

bin/payments migrate up >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate failed"; }
key=$(bin/payments keys create --user bench)
relay_key=$(bin/payments keys create --user bench_relay)
key_id=${key:8:12}
relay_key_id=${relay_key:8:12}

start serve bin/payments serve
serve_pid=$last_pid
for _ in $(seq 1 100); do
	curl -sf "$base_url/healthz" >/dev/null 2>&1 && break
	kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "serve did not start"; }
	sleep 0.1
done
say "serve pid $serve_pid on $base_url, pool $pool, threads $threads; database $dbname"

# ---------------------------------------------------------------- measurements

# pgbench_tps USER_ID KEY_ID [pgbench flags...]: tps of bench/charge.pgbench at the pool's connections.
pgbench_tps() {
	local user=$1 kid=$2 out
	shift 2
	out=$(pgbench -n -M prepared -c "$pool" -j $((pool < 2 ? pool : 2)) -D user_id="$user" \
		-D key_id="$kid" -f bench/charge.pgbench "$@" "$db_url" 2>&1) ||
		{ echo "$out" >&2; die "pgbench failed"; }
	awk '/^tps = / { print $3; exit }' <<<"$out"
}

# wrk_charges CONNS PREFIX [REPLAY_KEYS]: "rate errors p99_ms" of BENCH_SECONDS of POST /v1/charges;
# rate counts 2xx responses only.
wrk_charges() {
	local conns=$1 prefix=$2 replay=${3:-0} out line

	out=$(wrk -t $((conns < 2 ? conns : 2)) -c "$conns" -d "${secs}s" -s bench/charges.lua \
		"$base_url/v1/charges" -- "$key" "$prefix" "$replay" 2>&1) || { echo "$out" >&2; die "wrk failed"; }
	line=$(grep '^BENCH ' <<<"$out") || { echo "$out" >&2; die "wrk printed no result"; }
	awk '{ for (i = 2; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] }
	       printf "%.1f %d %.2f\n", (v["requests"] - v["status_errors"]) * 1e6 / v["duration_us"],
	              v["status_errors"] + v["connect_errors"] + v["read_errors"] + v["write_errors"] + v["timeouts"],
	              v["p99_us"] / 1000 }' <<<"$line"
}

# json_field JSON NAME: a number from openloop's one-line JSON.
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# openloop_run RATE SECONDS API_KEY PREFIX [REQUESTS]: openloop's JSON line.
openloop_run() {
	local n=${5:-$(calc "$1 * $2" 0)}

	"$openloop" --url "$base_url/v1/charges" --rate "$1" --requests "$n" --connections "$threads" \
		--header "Authorization: Bearer $3" --key-prefix "$4" \
		--body '{"amount":2000,"currency":"usd","source":"tok_visa","description":"bench"}'
}

# prepare_replays PREFIX: stores BENCH_REPLAY_KEYS keys PREFIX0.. with wrk's body.
prepare_replays() {
	local out

	out=$(openloop_run 2000 0 "$key" "$1" "$replay_keys")
	[ "$(json_field "$out" ok)" = "$replay_keys" ] || die "storing the replay keys failed: $out"
}

# measure_new_and_replays LABEL [DB]: (2) and (3) BENCH_RUNS times; sets new_rate, new_err, rep_rate,
# rep_err, and hwm_kb: serve's peak RSS right after the first new-charges run. With DB=1 each run
# starts with (1), pgbench, so that each HTTP figure has its database figure from the same minute
# (this machine's speed drifts by tens of percent): sets db_tps and ratio, the median of the
# runs' new-charges/pgbench ratios.
measure_new_and_replays() {
	local with_db=${2:-0} i r e t res rates=() rrates=() tps=() ratios=() before after
	new_err=0 rep_err=0
	prepare_replays "rp-$1-$tag-"
	for i in $(seq 1 "$runs"); do
		if [ "$with_db" = 1 ]; then
			t=$(pgbench_tps bench "$key_id" -T "$secs")
			tps+=("$t")
			say "  run $i: pgbench $t tx/s"
		fi
		res=$(wrk_charges "$pool" "new-$1-$tag-$i-")
		read -r r e _ <<<"$res"
		if [ "$i" = 1 ]; then
			hwm_kb=$(rss_kb "$serve_pid" VmHWM)
		fi
		rates+=("$r")
		new_err=$((new_err + e))
		if [ "$with_db" = 1 ]; then
			ratios+=("$(calc "$r / ($t + 0.001)" 3)")
		fi
		say "  $1 run $i: new charges $r/s ($e errors)"
		before=$(q "SELECT count(*) FROM charges")
		res=$(wrk_charges "$pool" "rp-$1-$tag-" "$replay_keys")
		read -r r e _ <<<"$res"
		after=$(q "SELECT count(*) FROM charges")
		[ "$before" = "$after" ] || die "the replay run created $((after - before)) charges"
		rrates+=("$r")
		rep_err=$((rep_err + e))
		say "  $1 run $i: replays $r/s ($e errors)"
	done
	new_rate=$(printf '%s\n' "${rates[@]}" | median)
	rep_rate=$(printf '%s\n' "${rrates[@]}" | median)
	if [ "$with_db" = 1 ]; then
		db_tps=$(printf '%s\n' "${tps[@]}" | median)
		ratio=$(printf '%s\n' "${ratios[@]}" | median)
	fi
}

say "1./2./3. pgbench -M prepared -c $pool, then new charges and replays through HTTP at $pool" \
	"connections, ${secs}s each, x $runs"
measure_new_and_replays empty 1
figure db_limit_tps "1. pgbench: API key read + create_charge, -c $pool" "$(calc "$db_tps")" "tx/s" "-" "-" ""
if awk -v r="$new_rate" -v d="$db_tps" 'BEGIN { exit !(r < 1 || d < 1) }'; then
	tail -n 20 "$work/serve.log" >&2
	die "no charges were created (pgbench $db_tps/s, HTTP $new_rate/s)"
fi
figure new_charges_per_s "2. new charges/s (wrk -c $pool)" "$new_rate" "req/s" \
	">= 0.70 x pgbench of its run" "$(verdict "$ratio" ">=" 0.70)" \
	"ratio $(calc "$ratio" 2) (median of the runs' ratios); $new_err errors"
figure replays_per_s "3. replays/s (wrk -c $pool, $replay_keys keys)" "$rep_rate" "req/s" \
	">= 1.5 x new = $(calc "1.5 * $new_rate")" "$(verdict "$rep_rate" ">=" "$(calc "1.5 * $new_rate")")" \
	"$rep_err errors"

ol_rate=$(calc "$new_rate / 2" 0)
# Beside each run, the database alone at the same rate, open loop too (pgbench -R counts from each
# transaction's scheduled start, like openloop): the floor under (4) on this machine's disk and cores.
say "4. open-loop latency at $ol_rate/s (50% of $new_rate), and pgbench -R $ol_rate -c $pool," \
	"${secs}s each, x $runs"
p50s=() p99s=() p999s=() ol_err=0 db_p50s=() db_p99s=()
for i in $(seq 1 "$runs"); do
	out=$(openloop_run "$ol_rate" "$secs" "$key" "ol-$tag-$i-")
	p50s+=("$(json_field "$out" p50_ms)")
	p99s+=("$(json_field "$out" p99_ms)")
	p999s+=("$(json_field "$out" p999_ms)")
	ol_err=$((ol_err + $(json_field "$out" errors)))
	say "  run $i: $out"
	rm -f "$work"/pgb_lat.*
	pgbench_tps bench "$key_id" -T "$secs" -R "$ol_rate" -l --log-prefix="$work/pgb_lat" >/dev/null
	read -r a b < <(cat "$work"/pgb_lat.* | awk '{ print ($3 + $NF) / 1000 }' | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.3f %.3f\n", v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1] }')
	db_p50s+=("$a") db_p99s+=("$b")
	say "  run $i: pgbench alone: p50 $a ms, p99 $b ms"
done
p99=$(printf '%s\n' "${p99s[@]}" | median)
db_p99=$(printf '%s\n' "${db_p99s[@]}" | median)
figure openloop_p50_ms "4. latency p50 at $ol_rate/s, open loop" "$(printf '%s\n' "${p50s[@]}" | median)" "ms" "-" "-" ""
figure openloop_p99_ms "4. latency p99 at $ol_rate/s, open loop" "$p99" "ms" "<= 10" "$(verdict "$p99" "<=" 10)" \
	"$ol_err errors"
figure openloop_p999_ms "4. latency p99.9 at $ol_rate/s, open loop" "$(printf '%s\n' "${p999s[@]}" | median)" "ms" \
	"-" "-" ""
figure db_openloop_p50_ms "4. pgbench alone at $ol_rate/s: p50 (-R, -c $pool)" \
	"$(printf '%s\n' "${db_p50s[@]}" | median)" "ms" "-" "-" ""
figure db_openloop_p99_ms "4. pgbench alone at $ol_rate/s: p99 (-R, -c $pool)" "$db_p99" "ms" "-" "-" \
	"HTTP p99 = $(calc "$p99 / $db_p99" 1) x the database's own"

say "5. scaling: 1, 4, 16, 64, 256 connections, ${secs}s x $runs each"
peak=$new_rate
declare -A scale scale_err
for c in 1 4 16 64 256; do
	rates=() errs=0
	for i in $(seq 1 "$runs"); do
		res=$(wrk_charges "$c" "sc-$c-$tag-$i-")
		read -r r e _ <<<"$res"
		rates+=("$r")
		errs=$((errs + e))
	done
	scale[$c]=$(printf '%s\n' "${rates[@]}" | median)
	scale_err[$c]=$errs
	say "  $c connections: ${scale[$c]}/s ($errs errors)"
	peak=$(awk -v a="$peak" -v b="${scale[$c]}" 'BEGIN { print (b > a) ? b : a }')
done
for c in 1 4 16 64; do
	figure "scale_${c}_per_s" "5. charges/s at $c connections" "${scale[$c]}" "req/s" "-" "-" "${scale_err[$c]} errors"
done
figure scale_256_per_s "5. charges/s at 256 connections" "${scale[256]}" "req/s" \
	">= 80% of peak $peak = $(calc "0.8 * $peak")" "$(verdict "${scale[256]}" ">=" "$(calc "0.8 * $peak")")" \
	"$(calc "100 * ${scale[256]} / $peak" 0)% of peak; ${scale_err[256]} errors"

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

rates=()
cap=$((secs * 4 > 30 ? secs * 4 : 30))
for i in $(seq 1 "$runs"); do
	if [ "$i" -gt 1 ]; then
		pgbench_tps bench_relay "$relay_key_id" -t "$per_client" >/dev/null
	fi
	base=$(q "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
	start_relays
	t0=$(date +%s.%N)
	while :; do
		sleep 0.2
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
relay_rate=$(printf '%s\n' "${rates[@]}" | median)
figure relay_deliveries_per_s "8. relay deliveries/s ($relays relay x $relay_workers workers, backlog of $relay_events)" "$relay_rate" "req/s" ">= 2000" \
	"$(verdict "$relay_rate" ">=" 2000)" ""

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
figure relay_lag_p99_ms "8. commit-to-delivery lag p99 at $lag_rate/s" "${lag_p99:-0}" "ms" "<= 250" \
	"$(verdict "${lag_p99:-99999}" "<=" 250)" ""
figure serve_peak_rss_mib "7. serve peak RSS (VmHWM) after (2)" "$(mib "$hwm_kb")" "MiB" "<= 64" \
	"$(verdict "$(mib "$hwm_kb")" "<=" 64)" ""
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
	"$growth_note$(calc "100 * $new_rate / $empty_new" 0)% of empty; $new_err errors"
figure growth_replays_per_s "6. replays/s with $growth_rows rows" "$rep_rate" "req/s" \
	">= 80% of $empty_rep = $(calc "0.8 * $empty_rep")" "$(verdict "$rep_rate" ">=" "$(calc "0.8 * $empty_rep")")" \
	"$(calc "100 * $rep_rate / $empty_rep" 0)% of empty; $rep_err errors"

say "done in $((SECONDS - start_s))s"
python3 bench/report.py "$figures" "bench/results/$stamp.json" \
	stamp="$stamp" commit="${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}" \
	dirty="$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l | tr -d ' ')" \
	runs="$runs" seconds="$secs" soak_seconds="$soak_secs" pool="$pool" threads="$threads" \
	cores="$(nproc)" loadavg_start="$load_start" loadavg_end="$(cut -d' ' -f1-3 /proc/loadavg)" elapsed_s="$((SECONDS - start_s))"

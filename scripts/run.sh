#!/usr/bin/env bash
# run.sh - what 'make run' does after building: database, migrations, a demo key, the API.
#
# Usage: scripts/run.sh
#   With DATABASE_URL unset, starts the embedded cluster (scripts/pg.sh) and
#   uses it; it keeps running afterwards (stop it with scripts/pg.sh stop).
#   Migrates, creates an API key for user "demo", prints a curl example and
#   serves on PAYMENTS_LISTEN (default 127.0.0.1:8080) until Ctrl-C.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

started_pg=0
if [ -z "${DATABASE_URL:-}" ]; then
	DATABASE_URL=$(scripts/pg.sh start | tail -n 1)
	started_pg=1
fi
export DATABASE_URL
export PAYMENTS_LISTEN=${PAYMENTS_LISTEN:-127.0.0.1:8080}
# make run is for trying webhooks against receivers on this machine.
export PAYMENTS_WEBHOOK_ALLOW_PRIVATE=1

pids=()

# start_background NAME COMMAND... starts COMMAND beside the API; it is
# stopped with everything else when run.sh ends.
start_background() {
	local name=$1
	shift
	"$@" &
	pids+=($!)
	echo "started $name (pid $!)"
}

# The relay publishes committed events as signed webhooks, beside the API.
start_relay() {
	start_background relay bin/payments relay
}

# stop_all stops what start_background started; the traps below call it.
# shellcheck disable=SC2317
stop_all() {
	local pid

	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$started_pg" = 1 ]; then
		echo "PostgreSQL is still running; stop it with: scripts/pg.sh stop"
	fi
}
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

bin/payments migrate up
key=$(bin/payments keys create --user demo)

# The address curl reaches the API on: a wildcard listen address means loopback.
host=${PAYMENTS_LISTEN%:*}
port=${PAYMENTS_LISTEN##*:}
case $host in '' | 0.0.0.0 | '[::]') host=127.0.0.1 ;; esac
idem=$(cat /proc/sys/kernel/random/uuid)

cat <<EOF

API key for user demo: $key
Create a charge (sending it again with the same Idempotency-Key replays the answer):

curl -sS -X POST http://$host:$port/v1/charges \\
  -H 'Authorization: Bearer $key' \\
  -H 'Idempotency-Key: $idem' \\
  -H 'Content-Type: application/json' \\
  -d '{"amount":5000,"currency":"usd","source":"tok_visa","description":"Order 123"}'

Ctrl-C stops the service.
EOF

# The API runs as a background job that we wait for, so that the traps above
# run as soon as a signal arrives, and so that when any of the processes ends
# (a port in use, a crash) the others are stopped too.
start_relay
start_background api bin/payments serve
set +e
wait -n "${pids[@]}"
status=$?
set -e
exit "$status"

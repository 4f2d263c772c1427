#!/usr/bin/env bash
# ha.sh - a throwaway high-availability PostgreSQL 15 under the repo (.ha/):
# a pg_auto_failover monitor, a primary and a synchronous standby on loopback.
#
# Usage: scripts/ha.sh start|stop|status|url|primary|kill-primary|kill-standby|failover [DBNAME]
#   start         create what is missing, start what is stopped (idempotent), wait
#                 until one node is primary and the other its synchronous standby,
#                 and print the multi-host DATABASE_URL of DBNAME on the last line
#   url           print that URL (default DBNAME: payments)
#   status        each node's name, address, reported and goal state
#   primary       the current primary's address (127.0.0.1:PORT)
#   kill-primary  kill -9 the current primary's node, as if its machine died: its
#                 postmaster, the postmaster's children and its pg_autoctl keeper
#                 (the keeper would restart a lone postmaster within a second);
#                 the monitor then promotes the standby. start brings it back as
#                 the new standby.
#   kill-standby  the same for the standby: the primary waits for it until the
#                 monitor turns synchronous replication off, then goes on alone
#   failover      a controlled failover (pg_autoctl perform failover): the primary
#                 drains and is demoted, the standby promoted; returns once the old
#                 primary is the new standby, and prints the new primary's address
#   stop          stop the nodes, then the monitor
# Settings: PAYMENTS_HA_DIR (default <repo>/.ha), PAYMENTS_HA_PORT (default 54370:
#           the monitor; the nodes take the next two ports), PAYMENTS_PG_BIN
#           (default /usr/lib/postgresql/15/bin), PAYMENTS_HA_WAIT (default 120 s).
# initdb and pg_autoctl refuse root, so as root they run as the postgres user,
# and when that user cannot enter the repo the data lives under /tmp (like pg.sh).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${PAYMENTS_HA_DIR:-$repo/.ha}
# shellcheck source=scripts/datadir.sh
. "$repo/scripts/datadir.sh"
port=${PAYMENTS_HA_PORT:-54370}
bin=${PAYMENTS_PG_BIN:-/usr/lib/postgresql/15/bin}
wait_s=${PAYMENTS_HA_WAIT:-120}
db=${2:-payments}
nodes=(node1 node2)

node_port() {
	case "$1" in
	monitor) echo "$port" ;;
	node1) echo $((port + 1)) ;;
	node2) echo $((port + 2)) ;;
	esac
}

url() {
	echo "postgresql://postgres@127.0.0.1:$(node_port node1),127.0.0.1:$(node_port node2)/${1:-$db}?target_session_attrs=read-write"
}

monitor_url() {
	echo "postgresql://autoctl_node@127.0.0.1:${port}/pg_auto_failover?sslmode=disable"
}

# The data as the servers see it: .ha itself, or the /tmp folder it links to
# (see scripts/pg.sh); pg_autoctl is always handed these real paths.
locate() {
	real=$(readlink -f "$dir")
}

ensure_dir() {
	datadir_ensure "$dir" payments-ha
	locate
}

# The environment of pg_autoctl: its configuration, state and pid files live
# under the data folder too (XDG_RUNTIME_DIR must exist, or it uses /tmp).
owner_env() {
	env=(env "XDG_CONFIG_HOME=$real/xdg/config" "XDG_DATA_HOME=$real/xdg/data"
		"XDG_RUNTIME_DIR=$real/xdg/run" "PG_CONFIG=$bin/pg_config" "PATH=$bin:$PATH")
}

# Runs a command as the owner of the data, in owner_env.
as_owner() {
	local env
	owner_env
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "${env[@]}" "$@")
	else
		"${env[@]}" "$@"
	fi
}

# The pid of node $1's pg_autoctl service, read from the pid file it keeps,
# when that service runs; fails otherwise.
keeper_pid() {
	local pid
	pid=$(head -1 "$real/xdg/run/pg_autoctl$real/$1/pg_autoctl.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^pg_autoctl run --pgdata $real/$1 $" &&
		echo "$pid"
}

keeper_alive() {
	keeper_pid "$1" >/dev/null
}

# Starts the pg_autoctl service of node $1 in a session of its own (so
# kill-primary can take the whole node down), unless it runs already, and
# waits (up to 10 s) for its pid file.
run_keeper() {
	local n=$1 env i
	keeper_alive "$n" && return 0
	# A keeper killed with kill -9 stays a zombie until init reaps it, and
	# pg_autoctl takes its pid file for a running instance while the pid
	# exists: the file is stale once keeper_alive says no.
	rm -f "$real/xdg/run/pg_autoctl$real/$n/pg_autoctl.pid"
	owner_env
	if [ "$(id -u)" = 0 ]; then
		(cd / && exec setsid runuser -u postgres -- "${env[@]}" pg_autoctl run --pgdata "$real/$n" \
			>>"$real/$n.log" 2>&1 </dev/null) &
	else
		(exec setsid "${env[@]}" pg_autoctl run --pgdata "$real/$n" >>"$real/$n.log" 2>&1 </dev/null) &
	fi
	for i in $(seq 1 50); do
		keeper_alive "$n" && return 0
		sleep 0.2
	done
	echo "ha.sh: pg_autoctl run of $n did not start; see $real/$n.log" >&2
	return 1
}

# Settings every data node gets on top of pg_auto_failover's (appended once,
# before its first start): the application's connections, small buffers for a
# shared test machine, and synchronous_commit on, so a commit returns only once
# the synchronous standby has flushed it.
node_conf() {
	grep -q '^# payments ha.sh' "$1/postgresql.conf" && return 0
	as_owner tee -a "$1/postgresql.conf" >/dev/null <<CONF
# payments ha.sh
max_connections = 300
shared_buffers = 64MB
synchronous_commit = on
log_min_messages = warning
log_line_prefix = '%m [%p] '
CONF
}

# The monitor's health checks, tuned for a loopback topology where a dead
# node refuses connections at once: a check every second, a node unhealthy
# after 3 s without a report and a failed check, and a 3 s wait for an
# unreachable primary to demote itself. (pg_auto_failover's defaults, for
# real networks: 5 s, 20 s and 30 s.)
monitor_conf() {
	grep -q '^# payments ha.sh' "$1/postgresql.conf" && return 0
	as_owner tee -a "$1/postgresql.conf" >/dev/null <<CONF
# payments ha.sh
shared_buffers = 16MB
log_min_messages = warning
pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 1000
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 500
pgautofailover.node_considered_unhealthy_timeout = 3000
pgautofailover.primary_demote_timeout = 3000
CONF
}

# node|port|reported state|goal state, one line per data node.
states() {
	psql -qAtX "$(monitor_url)" -c \
		"SELECT nodename, nodeport, reportedstate, goalstate FROM pgautofailover.node ORDER BY nodeid" \
		2>/dev/null
}

# Waits (up to wait_s) until $1 is true, printing $2 while waiting.
wait_for() {
	local check=$1 what=$2 i
	for i in $(seq 1 $((wait_s * 5))); do
		"$check" && return 0
		[ $((i % 50)) = 0 ] && echo "ha.sh: waiting for $what..." >&2
		sleep 0.2
	done
	echo "ha.sh: timed out after ${wait_s}s waiting for $what" >&2
	states >&2 || true
	return 1
}

monitor_up() { "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; }

# The first node is primary (single, alone) and accepts writes.
first_ready() {
	states | grep -q '^node1|[0-9]*|single|single$'
}

# One primary and one secondary, each in the state the monitor wants, and the
# primary replicating synchronously: synchronous_standby_names names the
# standby ('ANY 1 (pgautofailover_standby_N)': pg_auto_failover's
# number_sync_standbys 0, which with one standby means that one; it refuses 1
# until there are two standbys) and the standby's walsender is in the quorum.
healthy() {
	local s
	s=$(states) || return 1
	[ "$(grep -c '|primary|primary$' <<<"$s")" = 1 ] &&
		[ "$(grep -c '|secondary|secondary$' <<<"$s")" = 1 ] &&
		[ "$(psql -qAtX "$(url postgres)" -c "SELECT current_setting('synchronous_standby_names') <> ''
			AND current_setting('synchronous_commit') = 'on'
			AND EXISTS (SELECT FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum'))" 2>/dev/null)" = t ]
}

# Creates data node $1 and registers it with the monitor. A standby's
# creation sometimes gives up after its base backup (pg_autoctl 2.0 restarts
# its own postgres service while the backup replaces the data directory);
# pg_autoctl run then continues where it stopped, so that is not fatal.
create_node() {
	local n=$1
	as_owner pg_autoctl create postgres --pgdata "$real/$n" --pgctl "$bin/pg_ctl" \
		--pgport "$(node_port "$n")" --hostname 127.0.0.1 --listen 127.0.0.1 --name "$n" \
		--dbname payments --monitor "$(monitor_url)" --auth trust --no-ssl \
		>>"$real/$n.log" 2>&1 ||
		echo "ha.sh: pg_autoctl create $n stopped early (see $real/$n.log); pg_autoctl run continues it" >&2
	[ -f "$real/$n/PG_VERSION" ] || { tail -20 "$real/$n.log" >&2; exit 1; }
	# A primary cut off from the monitor and the standby stops itself after
	# this long (default 20 s): before the monitor promotes the standby (3 s
	# unhealthy + 3 s demote timeout), and before PAYMENTS_REQUEST_TIMEOUT
	# (10 s) cancels a commit's wait for the standby, which PostgreSQL would
	# then acknowledge with the commit on the primary alone.
	as_owner pg_autoctl config set --pgdata "$real/$n" timeout.network_partition_timeout 3 \
		>>"$real/$n.log" 2>&1
}

start() {
	ensure_dir
	mkdir -p "$real/xdg/run"
	chmod 700 "$real/xdg/run"
	[ "$(id -u)" = 0 ] && chown -R postgres: "$real/xdg"
	if [ ! -f "$real/monitor/PG_VERSION" ]; then
		as_owner pg_autoctl create monitor --pgdata "$real/monitor" --pgctl "$bin/pg_ctl" \
			--pgport "$port" --hostname 127.0.0.1 --auth trust --no-ssl \
			>>"$real/monitor.log" 2>&1 || { tail -20 "$real/monitor.log" >&2; exit 1; }
		monitor_conf "$real/monitor"
		as_owner pg_autoctl config set --pgdata "$real/monitor" postgresql.listen_addresses 127.0.0.1 \
			>>"$real/monitor.log" 2>&1
	fi
	run_keeper monitor
	wait_for monitor_up "the monitor"
	if [ ! -f "$real/node1/PG_VERSION" ]; then
		create_node node1
		node_conf "$real/node1"
		run_keeper node1
		wait_for first_ready "node1 to start as primary"
	fi
	run_keeper node1
	if [ ! -f "$real/node2/PG_VERSION" ]; then
		create_node node2
		node_conf "$real/node2"
	fi
	run_keeper node2
	wait_for healthy "a primary and its synchronous standby"
	if ! psql -qAtX "$(url postgres)" -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
		psql -qX "$(url postgres)" -c "CREATE DATABASE \"$db\"" >/dev/null
	fi
}

primary() {
	local p
	p=$(states | awk -F'|' '$3 ~ /^(primary|wait_primary|single)$/ && $4 ~ /^(primary|wait_primary|single)$/ { print $2 }')
	[ -n "$p" ] || { echo "ha.sh: no primary now" >&2; return 1; }
	echo "127.0.0.1:$p"
}

# Every process of node $1: the session of its pg_autoctl service (which
# holds the service and the postmaster), the postmaster and its children
# (each backend has a session of its own).
node_pids() {
	local n=$1 pid sid pm pids=()
	if pid=$(keeper_pid "$n"); then
		sid=$(ps -o sid= -p "$pid" | tr -d ' ')
		# shellcheck disable=SC2207 # pids: numbers, one a line
		pids+=($(ps -o pid= -s "$sid"))
	fi
	pm=$(head -1 "$real/$n/postmaster.pid" 2>/dev/null || true)
	if [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null; then
		# shellcheck disable=SC2207 # pids: numbers, one a line
		pids+=("$pm" $(ps -o pid= --ppid "$pm"))
	fi
	echo "${pids[@]}"
}

# The current synchronous standby's address.
standby() {
	local p
	p=$(states | awk -F'|' '$3 == "secondary" && $4 == "secondary" { print $2 }')
	[ -n "$p" ] || { echo "ha.sh: no standby now" >&2; return 1; }
	echo "127.0.0.1:$p"
}

# kill -9 of every process of the node at address $1 (see node_pids).
kill_node() {
	local p=$1 n pids
	for n in "${nodes[@]}"; do
		[ "127.0.0.1:$(node_port "$n")" = "$p" ] || continue
		pids=$(node_pids "$n")
		[ -n "$pids" ] || { echo "ha.sh: $n has no processes" >&2; exit 1; }
		# shellcheck disable=SC2086 # a list of pids
		kill -9 $pids 2>/dev/null || true
		for _ in $(seq 1 50); do
			keeper_alive "$n" || break
			sleep 0.1
		done
		if keeper_alive "$n"; then
			echo "ha.sh: the pg_autoctl service of $n survived kill -9" >&2
			exit 1
		fi
		echo "killed $n ($p)"
		return 0
	done
	echo "ha.sh: $p is not one of this topology's nodes" >&2
	exit 1
}

stop_node() {
	local n=$1 pid i
	if pid=$(keeper_pid "$n"); then
		# pg_autoctl stops its postgres (fast) on SIGTERM.
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 150); do
			keeper_alive "$n" || break
			sleep 0.2
		done
	fi
	if [ -f "$real/$n/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$real/$n" status >/dev/null 2>&1; then
		as_owner "$bin/pg_ctl" -D "$real/$n" -m fast -w stop >/dev/null 2>&1 || true
	fi
}

# A controlled failover: the monitor demotes the primary and promotes the
# standby; pg_autoctl waits (up to wait_s) until both are in their new roles.
failover() {
	local before after out i
	wait_for healthy "a primary and its synchronous standby before the failover"
	before=$(primary)
	for i in 1 2 3; do
		if out=$(as_owner pg_autoctl perform failover --monitor "$(monitor_url)" \
			--wait "$wait_s" 2>&1); then
			printf '%s\n' "$out" >>"$real/monitor.log"
			break
		fi
		printf '%s\n' "$out" >>"$real/monitor.log"
		# The monitor's perform_failover() can deadlock with a keeper reporting
		# its state at that moment (seen in make test); the monitor rolled it
		# back, so nothing changed and asking again is safe.
		if [ "$i" = 3 ] || ! grep -q "deadlock detected" <<<"$out"; then
			tail -20 <<<"$out" >&2
			exit 1
		fi
		echo "ha.sh: the monitor's failover deadlocked with a keeper; asking again" >&2
		sleep 1
	done
	wait_for healthy "the old primary to rejoin as the synchronous standby"
	after=$(primary)
	[ "$after" != "$before" ] || { echo "ha.sh: $before is still the primary" >&2; exit 1; }
	echo "$after"
}

status() {
	local s
	s=$(states) || { echo "monitor: stopped"; exit 3; }
	echo "monitor 127.0.0.1:$port"
	awk -F'|' '{ printf "%s 127.0.0.1:%s %s (goal %s)\n", $1, $2, $3, $4 }' <<<"$s"
}

locate
case "${1:-}" in
start) start; url ;;
url) url ;;
status) status ;;
primary) primary ;;
kill-primary) kill_node "$(primary)" ;;
kill-standby) kill_node "$(standby)" ;;
failover) failover ;;
stop) for n in node2 node1 monitor; do stop_node "$n"; done ;;
*) sed -n '2,27p' "$0" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# pg.sh - the embedded, throwaway PostgreSQL 15 cluster under the repo (.pg/).
#
# Usage: scripts/pg.sh start|stop|restart|kill|status|url|psql [DBNAME]
#   start    initialise .pg/ if needed, start the server on 127.0.0.1, create the database
#   stop     fast shutdown; kill: immediate shutdown (a crash, for tests)
#   url      print the DATABASE_URL of DBNAME (default: payments)
# Settings: PAYMENTS_PG_DIR (default <repo>/.pg), PAYMENTS_PG_PORT (default 54329),
#           PAYMENTS_PG_BIN (default /usr/lib/postgresql/15/bin).
# initdb refuses root, so when run as root the server runs as the postgres user.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${PAYMENTS_PG_DIR:-$repo/.pg}
# shellcheck source=scripts/datadir.sh
. "$repo/scripts/datadir.sh"
port=${PAYMENTS_PG_PORT:-54329}
bin=${PAYMENTS_PG_BIN:-/usr/lib/postgresql/15/bin}
db=${2:-payments}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		# From /, since the caller's folder may be closed to postgres.
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

url() {
	echo "postgresql://postgres@127.0.0.1:${port}/${db}"
}

# The data directory as the server sees it: .pg itself, or, when a parent of
# the repo is closed to the postgres user (a clone under /root, a mktemp -d
# folder), the folder under /tmp that .pg links to. The server and pg_ctl are
# always handed this real path, since a path through the link would still run
# through the closed parent.
locate() {
	real=$(readlink -f "$dir")
	data=$real/data
}

ensure_dir() {
	datadir_ensure "$dir" payments-pg
	locate
}

running() {
	[ -f "$data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
	ensure_dir
	if [ ! -f "$data/PG_VERSION" ]; then
		as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
			--locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
		cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
log_min_messages = warning
log_line_prefix = '%m [%p] '
CONF
	fi
	if ! running; then
		as_owner "$bin/pg_ctl" -D "$data" -l "$real/server.log" -w -t 60 start >/dev/null
	fi
	for _ in $(seq 1 100); do
		"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
		sleep 0.1
	done
	if ! psql -qAtX "$(url_of postgres)" -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
		psql -qX "$(url_of postgres)" -c "CREATE DATABASE \"$db\"" >/dev/null
	fi
}

url_of() {
	echo "postgresql://postgres@127.0.0.1:${port}/$1"
}

locate
case "${1:-}" in
start) start; url ;;
stop) if running; then as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi ;;
kill) as_owner "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null ;;
restart) as_owner "$bin/pg_ctl" -D "$data" -l "$real/server.log" -m fast -w restart >/dev/null ;;
status) if running; then echo "running on 127.0.0.1:${port} ($data)"; else echo stopped; exit 3; fi ;;
url) url ;;
psql) shift; exec psql "$(url)" "${@:2}" ;;
*) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac

#!/bin/sh
# ha-node.sh NAME - one data node of compose.yaml's profile ha: registers with
# the pg_auto_failover monitor on first start (the first node becomes the
# primary, the next its synchronous standby), then runs pg_autoctl, which runs
# and supervises PostgreSQL.
set -eu
name=$1
PGDATA=/var/lib/postgresql/data/node
export PGDATA
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	# A standby's creation can stop after its base backup; pg_autoctl run continues it.
	pg_autoctl create postgres --pgdata "$PGDATA" --pgport 5432 --hostname "$name" --name "$name" \
		--dbname payments \
		--monitor "postgresql://autoctl_node@ha-monitor:5432/pg_auto_failover?sslmode=require" \
		--auth trust --ssl-self-signed || true
	# pg_autoctl only opens the database to its own user; the API (payments_api)
	# and migrate (postgres) connect from the compose network too.
	grep -q '^host all all samenet trust' "$PGDATA/pg_hba.conf" ||
		echo 'host all all samenet trust' >>"$PGDATA/pg_hba.conf"
fi
exec pg_autoctl run --pgdata "$PGDATA"

#!/usr/bin/env bash
# run.sh - the sql suite of make test: every sql-tests/*.sql under pg_prove, in a fresh, migrated database.
#
# Usage: sql-tests/run.sh ADMIN_URL
#   ADMIN_URL  a libpq URI or conninfo string whose user may create databases;
#              payments_sqltest is dropped and created again on its server.
set -euo pipefail

cd "$(dirname "$0")/.."
admin=$1
db=payments_sqltest

# The same connection with the database replaced. libpq takes the last dbname
# it is given: a URI's query parameter wins over its path, and a later
# conninfo keyword over an earlier one. psql and bin/payments take either form.
case $admin in
postgres://*\?* | postgresql://*\?*) url="$admin&dbname=$db" ;;
postgres://* | postgresql://*) url="$admin?dbname=$db" ;;
*) url="$admin dbname=$db" ;;
esac

# Keep "does not exist, skipping" notices out of the report.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql -X -q -v ON_ERROR_STOP=1 -d "$admin" \
	-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
	-c "CREATE DATABASE $db"
DATABASE_URL=$url bin/payments migrate up
psql -X -q -v ON_ERROR_STOP=1 -d "$url" -c 'CREATE EXTENSION IF NOT EXISTS pgtap'
# pg_prove hands --dbname to psql through prove's "--pgtap-option dbname=VALUE",
# which reads an unescaped '=' in VALUE as a nested option: escape them.
pg_prove --dbname "${url//=/\\=}" --failures --comments sql-tests/*.sql

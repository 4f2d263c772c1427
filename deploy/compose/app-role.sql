-- app-role.sql: the application role of compose.yaml's API and relay, made
-- the way README.md (Least privilege) tells a DBA to: a login role that is
-- only a member of payments_app (created by migration 0004). Run as the
-- owner after 'migrate up', with psql -v password=... -f app-role.sql;
-- running it again sets the password again.
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE payments_api LOGIN PASSWORD %L IN ROLE payments_app', :'password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'payments_api')
\gexec
SELECT format('ALTER ROLE payments_api PASSWORD %L', :'password')
\gexec

-- 040_privileges: payments_app reads every table and writes only through the SECURITY DEFINER
-- functions meant for it (0004_least_privilege.sql, kept by every R__ file), and the migration
-- history is complete.
BEGIN;
SELECT plan(92);

-- The role itself: a group role, with no power beyond what it is granted.
SELECT has_role('payments_app', 'The role payments_app exists.');
SELECT ok(NOT rolcanlogin, 'payments_app cannot log in: login roles are made members of it.')
  FROM pg_roles WHERE rolname = 'payments_app';
SELECT isnt_superuser('payments_app', 'payments_app is not a superuser.');
SELECT ok(NOT (rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls),
          'payments_app cannot create roles or databases, replicate or bypass row security.')
  FROM pg_roles WHERE rolname = 'payments_app';
SELECT schema_privs_are('public', 'payments_app', ARRAY['USAGE'],
    'payments_app may use the public schema but not create objects in it.');

-- Every table: SELECT only, plus INSERT on webhook_endpoints.
SELECT tables_are('public',
    ARRAY['api_keys', 'charges', 'idempotency_keys', 'outbox_events', 'refunds',
          'webhook_endpoints', 'webhook_deliveries', 'webhook_attempts', 'payments_schema_history',
          'processor_jobs'],
    'The public schema holds exactly the tables whose privileges are checked below.');
SELECT table_privs_are('public', 'api_keys', 'payments_app', ARRAY['SELECT'],
    'payments_app may only read api_keys.');
SELECT table_privs_are('public', 'charges', 'payments_app', ARRAY['SELECT'],
    'payments_app may only read charges.');
SELECT table_privs_are('public', 'idempotency_keys', 'payments_app', ARRAY['SELECT'],
    'payments_app may only read idempotency_keys.');
SELECT table_privs_are('public', 'outbox_events', 'payments_app', ARRAY['SELECT'],
    'payments_app may only read outbox_events.');
SELECT table_privs_are('public', 'processor_jobs', 'payments_app', ARRAY['SELECT'],
    'payments_app may only read processor_jobs.');
SELECT table_privs_are('public', 'refunds', 'payments_app', ARRAY['SELECT'],
    'payments_app may only read refunds.');
SELECT table_privs_are('public', 'webhook_endpoints', 'payments_app', ARRAY['SELECT', 'INSERT'],
    'payments_app may read and insert webhook_endpoints, and nothing more.');
SELECT table_privs_are('public', 'webhook_deliveries', 'payments_app', ARRAY['SELECT'],
    'payments_app may only read webhook_deliveries.');
SELECT table_privs_are('public', 'webhook_attempts', 'payments_app', ARRAY['SELECT'],
    'payments_app may only read webhook_attempts.');
SELECT table_privs_are('public', 'payments_schema_history', 'payments_app', ARRAY[]::name[],
    'payments_app has no privilege on the migration history.');
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')
                   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                      AND d.objid = c.oid AND d.deptype = 'e')
                   AND (has_table_privilege('public', c.oid, 'SELECT')
                        OR has_table_privilege('public', c.oid, 'INSERT')
                        OR has_table_privilege('public', c.oid, 'UPDATE')
                        OR has_table_privilege('public', c.oid, 'DELETE')
                        OR has_table_privilege('public', c.oid, 'TRUNCATE'))
                 ORDER BY 1),
          ARRAY[]::text[],
          'PUBLIC has no privilege on any table or sequence.');
SELECT sequence_privs_are('public', 'outbox_events_seq_seq', 'payments_app', ARRAY[]::name[],
    'payments_app has no privilege on the outbox''s sequence.');
SELECT sequence_privs_are('public', 'webhook_attempts_seq_seq', 'payments_app', ARRAY[]::name[],
    'payments_app has no privilege on the attempts'' sequence.');

-- The writing functions: payments_app may execute each.
SELECT function_privs_are('public', 'create_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'text',
          'text', 'json', 'text', 'text', 'text', 'text', 'boolean'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute create_charge.');
SELECT function_privs_are('public', 'create_refund',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'json',
          'text', 'text', 'text'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute create_refund.');
SELECT function_privs_are('public', 'relay_fanout', ARRAY['integer'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute relay_fanout.');
SELECT function_privs_are('public', 'relay_claim', ARRAY['integer', 'bigint', 'integer', 'json'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute relay_claim.');
SELECT function_privs_are('public', 'relay_record', ARRAY['json'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute relay_record.');
SELECT function_privs_are('public', 'relay_replay', ARRAY['text', 'text'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute relay_replay.');
SELECT function_privs_are('public', 'relay_replay_dead', ARRAY['text'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute relay_replay_dead.');
SELECT function_privs_are('public', 'purge_idempotency_keys', ARRAY['integer'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute purge_idempotency_keys.');
SELECT function_privs_are('public', 'purge_published_events', ARRAY['bigint', 'integer'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute purge_published_events.');
SELECT function_privs_are('public', 'create_webhook_endpoint',
    ARRAY['text', 'text', 'text', 'json', 'text', 'integer'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute create_webhook_endpoint.');
SELECT function_privs_are('public', 'delete_webhook_endpoint', ARRAY['text', 'text'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute delete_webhook_endpoint.');
SELECT function_privs_are('public', 'relay_nats_claim', ARRAY['integer', 'bigint'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute relay_nats_claim.');
SELECT function_privs_are('public', 'relay_nats_record', ARRAY['bigint[]', 'bigint[]'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute relay_nats_record.');
SELECT function_privs_are('public', 'purge_published_events_nats', ARRAY['bigint', 'integer'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute purge_published_events_nats.');
SELECT function_privs_are('public', 'update_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'json', 'integer', 'text', 'text'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute update_charge.');
SELECT function_privs_are('public', 'update_refund',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'json', 'integer', 'text', 'text'],
    'payments_app', ARRAY['EXECUTE'], 'payments_app may execute update_refund.');

-- Helpers that only the writing functions call are closed to it.
SELECT function_privs_are('public', 'random_id', ARRAY['text'], 'payments_app', ARRAY[]::name[],
    'payments_app may not execute random_id.');
SELECT function_privs_are('public', 'check_refund_sum', ARRAY[]::name[], 'payments_app',
    ARRAY[]::name[], 'payments_app may not execute the trigger function check_refund_sum.');
SELECT function_privs_are('public', 'merge_metadata', ARRAY['json', 'json'], 'payments_app',
    ARRAY[]::name[], 'payments_app may not execute merge_metadata.');

-- Exactly these functions (outside extensions) are open to payments_app, and none to PUBLIC.
SELECT set_eq(
    $$SELECT p.proname::text FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                            AND d.objid = p.oid AND d.deptype = 'e')
         AND has_function_privilege('payments_app', p.oid, 'EXECUTE')$$,
    ARRAY['charge_object', 'refund_object', 'event_object', 'webhook_endpoint_object',
          'webhook_delivery_object', 'idempotency_lookup', 'list_page', 'create_charge',
          'create_refund', 'relay_fanout', 'relay_claim', 'relay_record', 'relay_release', 'relay_replay',
          'relay_replay_dead', 'purge_idempotency_keys', 'purge_published_events',
          'delete_webhook_endpoint', 'create_webhook_endpoint', 'relay_nats_claim', 'relay_nats_record',
          'purge_published_events_nats', 'capture_charge', 'expire_authorizations', 'update_charge',
          'update_refund', 'create_charge_pending', 'processor_claim', 'processor_resolve',
          'processor_defer'],
    'payments_app may execute exactly the object renderers, the reads and the writing functions.');
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace = 'public'::regnamespace
                   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                      AND d.objid = p.oid AND d.deptype = 'e')
                   AND has_function_privilege('public', p.oid, 'EXECUTE')
                 ORDER BY 1),
          ARRAY[]::text[],
          'PUBLIC may execute none of the service''s functions.');

-- The writing functions run as their owner, with a fixed search_path.
SELECT set_eq(
    $$SELECT p.proname::text FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef$$,
    ARRAY['create_charge', 'create_refund', 'relay_fanout', 'relay_claim', 'relay_record', 'relay_release',
          'relay_replay', 'relay_replay_dead', 'purge_idempotency_keys', 'purge_published_events',
          'delete_webhook_endpoint', 'create_webhook_endpoint', 'relay_nats_claim', 'relay_nats_record',
          'purge_published_events_nats', 'capture_charge', 'expire_authorizations', 'update_charge',
          'update_refund', 'create_charge_pending', 'processor_claim', 'processor_resolve',
          'processor_defer'],
    'Exactly the writing functions are SECURITY DEFINER.');
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
                   AND NOT coalesce('search_path=public, pg_temp' = ANY (p.proconfig), false)
                 ORDER BY 1),
          ARRAY[]::text[],
          'Every SECURITY DEFINER function pins search_path to public, pg_temp.');
SELECT is_definer('public', 'create_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'text',
          'text', 'json', 'text', 'text', 'text', 'text', 'boolean'],
    'create_charge is SECURITY DEFINER.');
SELECT isnt_definer('public', 'list_page',
    ARRAY['text', 'text', 'integer', 'text', 'text', 'timestamp with time zone',
          'timestamp with time zone', 'text', 'text'],
    'list_page, a read, runs as the caller.');

-- The migration history: a row per versioned migration and per run of a repeatable, every one applied.
SELECT has_table('public', 'payments_schema_history', 'The migration history table exists.');
SELECT columns_are('public', 'payments_schema_history',
    ARRAY['version', 'name', 'checksum', 'status', 'installed_by', 'installed_at', 'execution_ms',
          'error_sqlstate', 'error_message', 'installed_rank', 'type'],
    'The migration history has version, name, checksum, status, who, when, how long, the error, its rank and type.');
SELECT col_is_pk('payments_schema_history', 'installed_rank',
    'Each row of the history has its rank, the order it was written in.');
SELECT col_is_unique('payments_schema_history', 'version', 'A version appears once in the history.');
SELECT is((SELECT count(*) FROM payments_schema_history
            WHERE (type = 'versioned') <> (version IS NOT NULL)),
          0::bigint, 'Versioned migrations have a version and repeatable ones none.');
SELECT col_has_check('payments_schema_history', 'status',
    'The history''s status is checked (applied or failed).');
SELECT results_eq(
    $$SELECT version, name, status FROM payments_schema_history WHERE version <= 5 ORDER BY version$$,
    $$VALUES (1, 'charges', 'applied'), (2, 'webhooks', 'applied'),
             (3, 'refunds_and_lists', 'applied'), (4, 'least_privilege', 'applied'),
             (5, 'nats', 'applied')$$,
    'The first five migrations are recorded as applied, in order.');
SELECT is((SELECT count(*) FROM payments_schema_history WHERE status <> 'applied'), 0::bigint,
    'No migration is recorded as failed.');
-- Numbers from 0020 on are handed out per branch (so that concurrent branches
-- do not collide), which leaves a gap between 0009 and 0020.
SELECT is((SELECT count(*)::integer FROM payments_schema_history
            WHERE type = 'versioned' AND version <= 9), 9,
          'The recorded versions run from 1 to 9 without a gap, and each is recorded once.');
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace = 'public'::regnamespace
                   AND NOT EXISTS (SELECT FROM pg_depend d
                                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                      AND d.deptype = 'e')
                EXCEPT SELECT name FROM payments_schema_history WHERE type = 'repeatable'
                ORDER BY 1),
          ARRAY[]::text[],
          'Every function of the schema has its current definition in a repeatable migration of its name.');
SELECT is((SELECT count(*) FROM (SELECT DISTINCT ON (name) status FROM payments_schema_history
                                  WHERE type = 'repeatable' ORDER BY name, installed_rank DESC) r
            WHERE status <> 'applied'),
          0::bigint, 'The last run of every repeatable migration applied.');
SELECT is((SELECT count(*) FROM payments_schema_history WHERE checksum !~ '^[0-9a-f]{64}$'),
          0::bigint, 'Every recorded checksum is a SHA-256 in hex.');
SELECT is((SELECT count(*) FROM payments_schema_history
            WHERE status = 'applied' AND (error_sqlstate IS NOT NULL OR execution_ms < 0)),
          0::bigint, 'Applied migrations carry no error and a duration of zero or more.');
SELECT is(ARRAY(SELECT i.indexrelid::regclass::text FROM pg_index i
                  JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE c.relnamespace = 'public'::regnamespace AND NOT i.indisvalid),
          ARRAY[]::text[],
          'No index is left INVALID by a failed CREATE INDEX CONCURRENTLY.');

-- As payments_app: reads and the writing functions work.
SET LOCAL ROLE payments_app;
SELECT is(current_user::text, 'payments_app', 'The rest runs as payments_app.');
SELECT lives_ok($$SELECT count(*) FROM charges$$, 'payments_app can read charges.');
SELECT is((SELECT outcome FROM create_charge(
              'priv_user', 'priv-key-1', sha256('priv-1'), 86400000, 1000,
              'ch_privtest0000000000000001', 'evt_privtest0000000000000001', 2000, 'usd',
              'tok_visa', NULL, '{}', NULL, NULL, NULL, 'req_priv_1')),
          'created', 'payments_app creates a charge through create_charge.');
SELECT is((SELECT outcome FROM create_refund(
              'priv_user', 'priv-key-2', sha256('priv-2'), 86400000, 1000,
              're_privtest0000000000000001', 'ch_privtest0000000000000001', 500, NULL, '{}',
              'req_priv_2', 'evt_privtest0000000000000002', 'evt_privtest0000000000000003')),
          'created', 'payments_app refunds it through create_refund.');
SELECT is((SELECT amount_refunded FROM charges WHERE id = 'ch_privtest0000000000000001'),
          500::bigint, 'payments_app reads the refunded amount back.');
SELECT is(purge_idempotency_keys(10), 0::bigint,
    'payments_app runs the purge through purge_idempotency_keys.');

-- As payments_app: no direct UPDATE or DELETE of the money or the outbox's history.
SELECT throws_ok($$UPDATE charges SET amount = 1 WHERE id = 'ch_privtest0000000000000001'$$,
    '42501', 'permission denied for table charges', 'payments_app cannot UPDATE charges.');
SELECT throws_ok($$DELETE FROM charges WHERE id = 'ch_privtest0000000000000001'$$,
    '42501', 'permission denied for table charges', 'payments_app cannot DELETE charges.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_privtest0000000000000009', 'priv_user', 1, 'usd', 'tok_visa',
                           'succeeded')$$,
    '42501', 'permission denied for table charges',
    'payments_app cannot INSERT charges except through create_charge.');
SELECT throws_ok($$UPDATE refunds SET amount = 1$$,
    '42501', 'permission denied for table refunds', 'payments_app cannot UPDATE refunds.');
SELECT throws_ok($$DELETE FROM refunds$$,
    '42501', 'permission denied for table refunds', 'payments_app cannot DELETE refunds.');
SELECT throws_ok($$UPDATE idempotency_keys SET expires_at = now() + interval '1 year'$$,
    '42501', 'permission denied for table idempotency_keys',
    'payments_app cannot UPDATE idempotency_keys.');
SELECT throws_ok($$DELETE FROM idempotency_keys$$,
    '42501', 'permission denied for table idempotency_keys',
    'payments_app cannot DELETE idempotency_keys.');
SELECT throws_ok($$UPDATE outbox_events SET published_at = NULL$$,
    '42501', 'permission denied for table outbox_events',
    'payments_app cannot UPDATE the outbox.');
SELECT throws_ok($$DELETE FROM outbox_events$$,
    '42501', 'permission denied for table outbox_events',
    'payments_app cannot DELETE the outbox''s published history.');
SELECT throws_ok($$TRUNCATE outbox_events CASCADE$$,
    '42501', 'permission denied for table outbox_events',
    'payments_app cannot TRUNCATE the outbox.');
SELECT throws_ok($$UPDATE api_keys SET revoked_at = NULL$$,
    '42501', 'permission denied for table api_keys',
    'payments_app cannot un-revoke API keys.');
SELECT throws_ok($$UPDATE webhook_endpoints SET url = 'https://attacker.example/'$$,
    '42501', 'permission denied for table webhook_endpoints',
    'payments_app cannot UPDATE webhook endpoints (deletion goes through its function).');
SELECT throws_ok($$DELETE FROM webhook_deliveries$$,
    '42501', 'permission denied for table webhook_deliveries',
    'payments_app cannot DELETE webhook deliveries.');
SELECT throws_ok($$DELETE FROM webhook_attempts$$,
    '42501', 'permission denied for table webhook_attempts',
    'payments_app cannot DELETE the dead-letter record.');
SELECT throws_ok($$SELECT * FROM payments_schema_history$$,
    '42501', 'permission denied for table payments_schema_history',
    'payments_app cannot read the migration history.');
SELECT throws_ok($$UPDATE payments_schema_history SET status = 'applied'$$,
    '42501', 'permission denied for table payments_schema_history',
    'payments_app cannot rewrite the migration history.');
SELECT throws_ok($$SELECT random_id('ch_')$$,
    '42501', 'permission denied for function random_id',
    'payments_app cannot call random_id directly.');
SELECT throws_ok($$CREATE TABLE public.sneaky (id int)$$,
    '42501', 'permission denied for schema public',
    'payments_app cannot create tables in the public schema.');
SELECT throws_ok($$CREATE FUNCTION public.charge_object(text) RETURNS json LANGUAGE sql
                   AS 'SELECT NULL::json'$$,
    '42501', 'permission denied for schema public',
    'payments_app cannot plant functions in the public schema.');
SELECT throws_ok($$INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id,
                                                   charge_id)
                   VALUES ('wd_privtest0000000000000001', 1, 'evt_x', 'we_x', 'priv_user', 'ch_x')$$,
    '42501', 'permission denied for table webhook_deliveries',
    'payments_app cannot INSERT webhook deliveries except through relay_fanout.');
SELECT lives_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
                  VALUES ('we_privtest0000000000000001', 'priv_user', 'https://example.com/hook',
                          ARRAY['*'], 'whsec_priv')$$,
    'payments_app can INSERT a webhook endpoint, its one direct write.');
SELECT is(delete_webhook_endpoint('we_privtest0000000000000001', 'priv_user'), true,
    'payments_app deletes the endpoint through delete_webhook_endpoint.');

-- Nothing the refused statements tried changed a row.
RESET ROLE;
SELECT is((SELECT count(*) FROM charges WHERE user_id = 'priv_user'), 1::bigint,
    'The charge payments_app created is still there, once.');
SELECT is((SELECT amount FROM charges WHERE id = 'ch_privtest0000000000000001'), 2000::bigint,
    'Its amount was not changed.');
SELECT is((SELECT count(*) FROM outbox_events WHERE user_id = 'priv_user'), 3::bigint,
    'Its three events (charge.succeeded, refund.created, charge.refunded) are still there.');
SELECT is((SELECT count(*) FROM idempotency_keys WHERE user_id = 'priv_user'), 2::bigint,
    'Its two idempotency keys are still there.');
SELECT is((SELECT status FROM webhook_endpoints WHERE id = 'we_privtest0000000000000001'),
    'disabled', 'The deleted endpoint is disabled, not gone.');
SELECT isnt((SELECT deleted_at FROM webhook_endpoints WHERE id = 'we_privtest0000000000000001'),
    NULL, 'The deleted endpoint records when it was deleted.');

SELECT * FROM finish();
ROLLBACK;

-- 002_indexes_and_functions: the indexes and the foreign key of 0001_charges.sql, and its functions
-- (charge_object, create_charge: now in their R__ files).
BEGIN;
SELECT plan(23);

-- Indexes, with their columns.
SELECT has_index('api_keys', 'api_keys_user_id_idx', ARRAY['user_id'],
    'api_keys has an index on user_id for listing a user''s keys.');
SELECT has_index('charges', 'charges_user_created_idx', ARRAY['user_id', 'created', 'id'],
    'charges has an index on (user_id, created, id) for newest-first lists.');
SELECT has_index('idempotency_keys', 'idempotency_keys_expires_at_idx', ARRAY['expires_at'],
    'idempotency_keys has an index on expires_at for the batched purge.');
SELECT has_index('outbox_events', 'outbox_events_unpublished_idx', ARRAY['seq'],
    'outbox_events has an index on seq for the relay''s claim query.');
SELECT is((SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
            WHERE i.indexrelid = 'outbox_events_unpublished_idx'::regclass),
          '(published_at IS NULL)',
          'The relay''s index covers only unpublished events.');
SELECT has_index('outbox_events', 'outbox_events_charge_idx', ARRAY['charge_id', 'seq'],
    'outbox_events has an index on (charge_id, seq) for a charge''s events in order (and the relay''s order checks).');
SELECT is((SELECT count(*) FROM pg_index i JOIN pg_attribute a1 ON a1.attrelid = i.indrelid
            AND a1.attnum = i.indkey[0] JOIN pg_attribute a2 ON a2.attrelid = i.indrelid
            AND a2.attnum = i.indkey[1]
            WHERE i.indrelid = 'outbox_events'::regclass AND i.indnatts = 2
              AND a1.attname = 'charge_id' AND a2.attname = 'seq'), 1::bigint,
    'outbox_events has one index over (charge_id, seq), not two (0008): each costs every new event.');
SELECT has_index('outbox_events', 'outbox_events_user_created_idx', ARRAY['user_id', 'created', 'id'],
    'outbox_events has an index on (user_id, created, id) for newest-first lists.');
SELECT ok((SELECT pg_get_indexdef('charges_user_created_idx'::regclass)
             LIKE '%(user_id, created DESC, id DESC)'),
          'The charges list index sorts created and id descending.');
SELECT index_is_unique('public', 'outbox_events', 'outbox_events_id_key',
    'The unique index on outbox_events.id exists.');
SELECT index_is_primary('public', 'idempotency_keys', 'idempotency_keys_pkey',
    'idempotency_keys_pkey is the primary key index.');

-- The outbox's foreign key to charges.
SELECT fk_ok('outbox_events', 'charge_id', 'charges', 'id',
    'outbox_events.charge_id references charges.id.');

-- charge_object(charges) -> json.
SELECT has_function('charge_object', ARRAY['charges'],
    'Function charge_object(charges) exists.');
SELECT function_returns('charge_object', ARRAY['charges'], 'json',
    'charge_object returns json.');
SELECT function_lang_is('charge_object', ARRAY['charges'], 'plpgsql',
    'charge_object is PL/pgSQL, so its query plan is cached per session.');
SELECT volatility_is('charge_object', ARRAY['charges'], 'stable',
    'charge_object is STABLE.');

-- create_charge(...) with seventeen IN parameters and (outcome, status_code, body, expires_in_ms) out.
SELECT has_function('create_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'text',
          'text', 'json', 'text', 'text', 'text', 'text', 'boolean'],
    'Function create_charge exists with the seventeen parameters the service passes.');
SELECT function_returns('create_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'text',
          'text', 'json', 'text', 'text', 'text', 'text', 'boolean'],
    'record', 'create_charge returns a record.');
SELECT function_lang_is('create_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'text',
          'text', 'json', 'text', 'text', 'text', 'text', 'boolean'],
    'plpgsql', 'create_charge is written in PL/pgSQL.');
SELECT volatility_is('create_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'text',
          'text', 'json', 'text', 'text', 'text', 'text', 'boolean'],
    'volatile', 'create_charge is VOLATILE, since it writes.');
SELECT is((SELECT array_agg(n ORDER BY o) FROM pg_proc p,
                  unnest(p.proargnames, p.proargmodes::text[]) WITH ORDINALITY AS a(n, m, o)
            WHERE p.proname = 'create_charge' AND m = 'o'),
          ARRAY['outcome', 'status_code', 'body', 'expires_in_ms'],
          'create_charge returns outcome, status_code, body and expires_in_ms, in that order.');
SELECT is((SELECT array_agg(n ORDER BY o) FROM pg_proc p,
                  unnest(p.proargnames, p.proargmodes::text[]) WITH ORDINALITY AS a(n, m, o)
            WHERE p.proname = 'create_charge' AND m = 'i'),
          ARRAY['p_user_id', 'p_key', 'p_fingerprint', 'p_ttl_ms', 'p_wait_ms', 'p_charge_id',
                'p_event_id', 'p_amount', 'p_currency', 'p_source', 'p_description',
                'p_metadata', 'p_failure_code', 'p_decline_code', 'p_error_body',
                'p_request_id', 'p_capture'],
          'create_charge takes its parameters in the order db_charge.c binds them.');
SELECT is((SELECT count(*) FROM pg_proc WHERE proname = 'create_charge'), 1::bigint,
          'There is exactly one create_charge, so calls are never ambiguous.');

SELECT * FROM finish();
ROLLBACK;

-- 001_tables: the tables of 0001_charges.sql, their columns, types, keys, NOT NULLs and defaults.
BEGIN;
SELECT plan(90);

-- Tables and their exact columns.
SELECT has_table('api_keys', 'Table api_keys exists.');
SELECT has_table('charges', 'Table charges exists.');
SELECT has_table('idempotency_keys', 'Table idempotency_keys exists.');
SELECT has_table('outbox_events', 'Table outbox_events exists.');

SELECT columns_are('api_keys',
    ARRAY['id', 'user_id', 'secret_hash', 'created_at', 'revoked_at'],
    'Table api_keys has exactly the expected columns.');
SELECT columns_are('charges',
    ARRAY['id', 'user_id', 'amount', 'currency', 'source', 'description', 'metadata', 'status',
          'failure_code', 'decline_code', 'amount_refunded', 'idempotency_key', 'request_id',
          'created', 'captured', 'amount_captured', 'released_at', 'release_reason',
          'processor_ref', 'review_required_at', 'via_processor'],
    'Table charges has exactly the expected columns.');
SELECT columns_are('idempotency_keys',
    ARRAY['user_id', 'key', 'fingerprint', 'status_code', 'response_body', 'object_id',
          'created_at', 'expires_at'],
    'Table idempotency_keys has exactly the expected columns.');
SELECT columns_are('outbox_events',
    ARRAY['seq', 'id', 'user_id', 'type', 'object_id', 'charge_id', 'data', 'request_id',
          'idempotency_key', 'created', 'published_at', 'nats_published_at', 'nats_locked_until'],
    'Table outbox_events has exactly the expected columns.');

-- Types of the columns that carry money, identity, hashes and time.
SELECT col_type_is('api_keys', 'id', 'text', 'api_keys.id is text.');
SELECT col_type_is('api_keys', 'secret_hash', 'bytea', 'api_keys.secret_hash is bytea.');
SELECT col_type_is('api_keys', 'created_at', 'timestamp with time zone', 'api_keys.created_at is timestamptz.');
SELECT col_type_is('api_keys', 'revoked_at', 'timestamp with time zone', 'api_keys.revoked_at is timestamptz.');
SELECT col_type_is('charges', 'id', 'text', 'charges.id is text.');
SELECT col_type_is('charges', 'user_id', 'text', 'charges.user_id is text.');
SELECT col_type_is('charges', 'amount', 'bigint', 'charges.amount is bigint, in the smallest currency unit.');
SELECT col_type_is('charges', 'currency', 'text', 'charges.currency is text.');
SELECT col_type_is('charges', 'metadata', 'json', 'charges.metadata is json, so the client''s key order survives.');
SELECT col_type_is('charges', 'amount_refunded', 'bigint', 'charges.amount_refunded is bigint.');
SELECT col_type_is('charges', 'created', 'timestamp with time zone', 'charges.created is timestamptz.');
SELECT col_type_is('idempotency_keys', 'key', 'text', 'idempotency_keys.key is text.');
SELECT col_type_is('idempotency_keys', 'fingerprint', 'bytea', 'idempotency_keys.fingerprint is bytea.');
SELECT col_type_is('idempotency_keys', 'status_code', 'integer', 'idempotency_keys.status_code is integer.');
SELECT col_type_is('idempotency_keys', 'response_body', 'text', 'idempotency_keys.response_body is text, stored byte for byte.');
SELECT col_type_is('idempotency_keys', 'expires_at', 'timestamp with time zone', 'idempotency_keys.expires_at is timestamptz.');
SELECT col_type_is('outbox_events', 'seq', 'bigint', 'outbox_events.seq is bigint.');
SELECT col_type_is('outbox_events', 'id', 'text', 'outbox_events.id is text.');
SELECT col_type_is('outbox_events', 'charge_id', 'text', 'outbox_events.charge_id is text.');
SELECT col_type_is('outbox_events', 'data', 'json', 'outbox_events.data is json.');
SELECT col_type_is('outbox_events', 'published_at', 'timestamp with time zone', 'outbox_events.published_at is timestamptz.');

-- Primary and unique keys.
SELECT col_is_pk('api_keys', 'id', 'api_keys.id is the primary key.');
SELECT col_is_pk('charges', 'id', 'charges.id is the primary key.');
SELECT col_is_pk('idempotency_keys', ARRAY['user_id', 'key'],
    'The primary key of idempotency_keys is (user_id, key), so keys are scoped per user.');
SELECT col_is_pk('outbox_events', 'seq', 'outbox_events.seq is the primary key.');
SELECT col_is_unique('outbox_events', 'id', 'outbox_events.id is unique.');
SELECT is((SELECT attidentity FROM pg_attribute
            WHERE attrelid = 'outbox_events'::regclass AND attname = 'seq'),
          'a'::"char", 'outbox_events.seq is GENERATED ALWAYS AS IDENTITY.');

-- NOT NULL on every column the service relies on, and NULL where absence means something.
SELECT col_not_null('api_keys', 'id', 'api_keys.id is NOT NULL.');
SELECT col_not_null('api_keys', 'user_id', 'api_keys.user_id is NOT NULL.');
SELECT col_not_null('api_keys', 'secret_hash', 'api_keys.secret_hash is NOT NULL.');
SELECT col_not_null('api_keys', 'created_at', 'api_keys.created_at is NOT NULL.');
SELECT col_is_null('api_keys', 'revoked_at', 'api_keys.revoked_at is nullable: NULL means the key is live.');
SELECT col_not_null('charges', 'id', 'charges.id is NOT NULL.');
SELECT col_not_null('charges', 'user_id', 'charges.user_id is NOT NULL.');
SELECT col_not_null('charges', 'amount', 'charges.amount is NOT NULL.');
SELECT col_not_null('charges', 'currency', 'charges.currency is NOT NULL.');
SELECT col_not_null('charges', 'source', 'charges.source is NOT NULL.');
SELECT col_not_null('charges', 'metadata', 'charges.metadata is NOT NULL.');
SELECT col_not_null('charges', 'status', 'charges.status is NOT NULL.');
SELECT col_not_null('charges', 'amount_refunded', 'charges.amount_refunded is NOT NULL.');
SELECT col_not_null('charges', 'created', 'charges.created is NOT NULL.');
SELECT col_is_null('charges', 'description', 'charges.description is nullable.');
SELECT col_is_null('charges', 'failure_code', 'charges.failure_code is nullable.');
SELECT col_is_null('charges', 'decline_code', 'charges.decline_code is nullable.');
SELECT col_not_null('idempotency_keys', 'user_id', 'idempotency_keys.user_id is NOT NULL.');
SELECT col_not_null('idempotency_keys', 'key', 'idempotency_keys.key is NOT NULL.');
SELECT col_not_null('idempotency_keys', 'fingerprint', 'idempotency_keys.fingerprint is NOT NULL.');
SELECT col_not_null('idempotency_keys', 'status_code', 'idempotency_keys.status_code is NOT NULL.');
SELECT col_not_null('idempotency_keys', 'response_body', 'idempotency_keys.response_body is NOT NULL.');
SELECT col_not_null('idempotency_keys', 'created_at', 'idempotency_keys.created_at is NOT NULL.');
SELECT col_not_null('idempotency_keys', 'expires_at', 'idempotency_keys.expires_at is NOT NULL.');
SELECT col_not_null('outbox_events', 'id', 'outbox_events.id is NOT NULL.');
SELECT col_not_null('outbox_events', 'user_id', 'outbox_events.user_id is NOT NULL.');
SELECT col_not_null('outbox_events', 'type', 'outbox_events.type is NOT NULL.');
SELECT col_not_null('outbox_events', 'object_id', 'outbox_events.object_id is NOT NULL.');
SELECT col_not_null('outbox_events', 'charge_id', 'outbox_events.charge_id is NOT NULL.');
SELECT col_not_null('outbox_events', 'data', 'outbox_events.data is NOT NULL.');
SELECT col_not_null('outbox_events', 'created', 'outbox_events.created is NOT NULL.');
SELECT col_is_null('outbox_events', 'published_at', 'outbox_events.published_at is nullable: NULL means not yet relayed.');

-- Defaults.
SELECT col_has_default('api_keys', 'created_at', 'api_keys.created_at has a default.');
SELECT col_default_is('api_keys', 'created_at', 'now()', 'api_keys.created_at defaults to now().');
SELECT col_hasnt_default('api_keys', 'revoked_at', 'api_keys.revoked_at has no default.');
SELECT col_has_default('charges', 'metadata', 'charges.metadata has a default.');
-- json has no equality operator, so compare the default expression as text.
SELECT is((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
             JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
            WHERE d.adrelid = 'charges'::regclass AND a.attname = 'metadata'),
          '''{}''::json', 'charges.metadata defaults to an empty object.');
SELECT col_has_default('charges', 'amount_refunded', 'charges.amount_refunded has a default.');
SELECT col_default_is('charges', 'amount_refunded', 0, 'charges.amount_refunded defaults to 0.');
SELECT col_has_default('charges', 'created', 'charges.created has a default.');
SELECT col_default_is('charges', 'created', 'now()', 'charges.created defaults to now().');
SELECT col_hasnt_default('charges', 'status', 'charges.status has no default: it is always decided explicitly.');
SELECT col_hasnt_default('charges', 'amount', 'charges.amount has no default.');
SELECT col_has_default('idempotency_keys', 'created_at', 'idempotency_keys.created_at has a default.');
SELECT col_default_is('idempotency_keys', 'created_at', 'now()', 'idempotency_keys.created_at defaults to now().');
SELECT col_hasnt_default('idempotency_keys', 'expires_at', 'idempotency_keys.expires_at has no default: the TTL comes from the caller.');
SELECT col_has_default('outbox_events', 'created', 'outbox_events.created has a default.');
SELECT col_default_is('outbox_events', 'created', 'now()', 'outbox_events.created defaults to now().');
SELECT col_hasnt_default('outbox_events', 'published_at', 'outbox_events.published_at has no default.');

-- A row inserted with only the required columns gets the defaults.
INSERT INTO charges (id, user_id, amount, currency, source, status)
VALUES ('ch_000000000000000000000001', 'alice', 5000, 'usd', 'tok_visa', 'succeeded');
SELECT is((SELECT metadata::text FROM charges WHERE id = 'ch_000000000000000000000001'), '{}',
          'A charge inserted without metadata gets {}.');
SELECT is((SELECT amount_refunded FROM charges WHERE id = 'ch_000000000000000000000001'), 0::bigint,
          'A charge inserted without amount_refunded gets 0.');
SELECT is((SELECT created FROM charges WHERE id = 'ch_000000000000000000000001'), now(),
          'A charge inserted without created gets the transaction time.');
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
VALUES ('evt_000000000000000000000001', 'alice', 'charge.succeeded',
        'ch_000000000000000000000001', 'ch_000000000000000000000001', '{}');
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
VALUES ('evt_000000000000000000000002', 'alice', 'charge.succeeded',
        'ch_000000000000000000000001', 'ch_000000000000000000000001', '{}');
SELECT ok((SELECT max(seq) > min(seq) FROM outbox_events
            WHERE id IN ('evt_000000000000000000000001', 'evt_000000000000000000000002')),
          'outbox_events.seq increases in insertion order.');
SELECT is((SELECT count(*) FROM outbox_events
            WHERE id IN ('evt_000000000000000000000001', 'evt_000000000000000000000002')
              AND published_at IS NULL), 2::bigint,
          'New outbox events start unpublished.');
SELECT throws_ok($$INSERT INTO outbox_events (seq, id, user_id, type, object_id, charge_id, data)
                   VALUES (1, 'evt_000000000000000000000003', 'alice', 'charge.succeeded',
                           'ch_000000000000000000000001', 'ch_000000000000000000000001', '{}')$$,
                 '428C9', NULL, 'outbox_events.seq cannot be chosen by the writer.');

SELECT * FROM finish();
ROLLBACK;

-- 020_webhooks: the tables, keys and indexes of 0002_webhooks.sql and its functions (now in
-- their R__ files), and how the relay's relay_fanout, relay_claim, relay_record and relay_replay
-- behave.
BEGIN;
SELECT plan(132);

-- Short names for the fixed ids of the behaviour tests: pg_temp.ch('A') is a charge id, and so on.
CREATE FUNCTION pg_temp.ch(t text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'ch_wh' || rpad(t, 22, '0') $$;
CREATE FUNCTION pg_temp.we(t text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'we_wh' || rpad(t, 22, '0') $$;
CREATE FUNCTION pg_temp.evt(t text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'evt_wh' || rpad(t, 22, '0') $$;
-- The id of the delivery of event e to endpoint w.
CREATE FUNCTION pg_temp.dl(e text, w text) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT id FROM webhook_deliveries WHERE event_id = pg_temp.evt(e)
                                               AND endpoint_id = pg_temp.we(w) $$;
-- One outcome for relay_record, as the relay sends it: with the lease it holds.
CREATE FUNCTION pg_temp.outcome(e text, w text, ok boolean, code integer, error text,
                                duration_ms integer, delay_ms bigint, dead boolean)
    RETURNS json LANGUAGE sql STABLE
    AS $$ SELECT json_build_object('id', pg_temp.dl(e, w),
                                   'lease', (SELECT locked_until::text FROM webhook_deliveries
                                              WHERE id = pg_temp.dl(e, w)),
                                   'ok', ok, 'code', code, 'error', error,
                                   'duration_ms', duration_ms, 'delay_ms', delay_ms,
                                   'dead', dead) $$;
-- (event, endpoint) pairs of what relay_claim leases now, for set comparisons.
CREATE FUNCTION pg_temp.claim(batch integer) RETURNS TABLE (event text, endpoint text)
    LANGUAGE sql
    AS $$ SELECT c.event_id, c.endpoint_id FROM relay_claim(batch, 60000) c $$;

-- Tables and their exact columns.
SELECT has_table('webhook_endpoints', 'Table webhook_endpoints exists.');
SELECT has_table('webhook_deliveries', 'Table webhook_deliveries exists.');
SELECT has_table('webhook_attempts', 'Table webhook_attempts exists.');
SELECT columns_are('webhook_endpoints',
    ARRAY['id', 'user_id', 'url', 'enabled_events', 'secret', 'status', 'created', 'deleted_at'],
    'Table webhook_endpoints has exactly the expected columns.');
SELECT columns_are('webhook_deliveries',
    ARRAY['id', 'event_seq', 'event_id', 'endpoint_id', 'user_id', 'charge_id', 'status',
          'attempts', 'next_attempt_at', 'locked_until', 'last_status_code', 'last_error',
          'created', 'delivered_at'],
    'Table webhook_deliveries has exactly the expected columns.');
SELECT columns_are('webhook_attempts',
    ARRAY['seq', 'delivery_id', 'status_code', 'error', 'duration_ms', 'at'],
    'Table webhook_attempts has exactly the expected columns.');

-- Types.
SELECT col_type_is('webhook_endpoints', 'enabled_events', 'text[]',
    'webhook_endpoints.enabled_events is a text array.');
SELECT col_type_is('webhook_endpoints', 'deleted_at', 'timestamp with time zone',
    'webhook_endpoints.deleted_at is timestamptz (endpoints are soft-deleted).');
SELECT col_type_is('webhook_deliveries', 'event_seq', 'bigint',
    'webhook_deliveries.event_seq is bigint, like outbox_events.seq.');
SELECT col_type_is('webhook_deliveries', 'attempts', 'integer', 'webhook_deliveries.attempts is integer.');
SELECT col_type_is('webhook_deliveries', 'next_attempt_at', 'timestamp with time zone',
    'webhook_deliveries.next_attempt_at is timestamptz.');
SELECT col_type_is('webhook_deliveries', 'locked_until', 'timestamp with time zone',
    'webhook_deliveries.locked_until is timestamptz.');
SELECT col_type_is('webhook_deliveries', 'last_status_code', 'integer',
    'webhook_deliveries.last_status_code is integer.');
SELECT col_type_is('webhook_attempts', 'seq', 'bigint', 'webhook_attempts.seq is bigint.');
SELECT col_type_is('webhook_attempts', 'duration_ms', 'integer', 'webhook_attempts.duration_ms is integer.');
SELECT col_type_is('webhook_attempts', 'at', 'timestamp with time zone', 'webhook_attempts.at is timestamptz.');

-- Exactly these columns are NOT NULL.
SELECT set_eq(
    $$SELECT attname::text FROM pg_attribute WHERE attrelid = 'webhook_endpoints'::regclass
        AND attnum > 0 AND NOT attisdropped AND attnotnull$$,
    ARRAY['id', 'user_id', 'url', 'enabled_events', 'secret', 'status', 'created'],
    'Every column of webhook_endpoints but deleted_at is NOT NULL.');
SELECT set_eq(
    $$SELECT attname::text FROM pg_attribute WHERE attrelid = 'webhook_deliveries'::regclass
        AND attnum > 0 AND NOT attisdropped AND attnotnull$$,
    ARRAY['id', 'event_seq', 'event_id', 'endpoint_id', 'user_id', 'charge_id', 'status',
          'attempts', 'next_attempt_at', 'created'],
    'The NOT NULL columns of webhook_deliveries are the ones every delivery has from the start.');
SELECT set_eq(
    $$SELECT attname::text FROM pg_attribute WHERE attrelid = 'webhook_attempts'::regclass
        AND attnum > 0 AND NOT attisdropped AND attnotnull$$,
    ARRAY['seq', 'delivery_id', 'duration_ms', 'at'],
    'webhook_attempts allows a NULL status_code and error (no response, or success).');

-- Defaults.
SELECT col_default_is('webhook_endpoints', 'status', 'enabled', 'A new endpoint is enabled.');
SELECT col_default_is('webhook_endpoints', 'created', 'now()', 'webhook_endpoints.created defaults to now().');
SELECT col_default_is('webhook_deliveries', 'status', 'pending', 'A new delivery is pending.');
SELECT col_default_is('webhook_deliveries', 'attempts', '0', 'A new delivery has made no attempt.');
SELECT col_default_is('webhook_deliveries', 'next_attempt_at', 'now()', 'A new delivery is due at once.');
SELECT col_default_is('webhook_attempts', 'at', 'now()', 'webhook_attempts.at defaults to now().');

-- Keys.
SELECT col_is_pk('webhook_endpoints', 'id', 'webhook_endpoints.id is the primary key.');
SELECT col_is_pk('webhook_deliveries', 'id', 'webhook_deliveries.id is the primary key.');
SELECT col_is_pk('webhook_attempts', 'seq', 'webhook_attempts.seq is the primary key.');
SELECT is((SELECT attidentity FROM pg_attribute
            WHERE attrelid = 'webhook_attempts'::regclass AND attname = 'seq'),
          'a'::"char", 'webhook_attempts.seq is GENERATED ALWAYS AS IDENTITY.');
SELECT col_is_unique('webhook_deliveries', ARRAY['event_seq', 'endpoint_id'],
    'There is at most one delivery per (event, endpoint).');
SELECT fk_ok('webhook_deliveries', 'event_seq', 'outbox_events', 'seq',
    'webhook_deliveries.event_seq references outbox_events.seq.');
SELECT fk_ok('webhook_deliveries', 'endpoint_id', 'webhook_endpoints', 'id',
    'webhook_deliveries.endpoint_id references webhook_endpoints.id.');
SELECT fk_ok('webhook_attempts', 'delivery_id', 'webhook_deliveries', 'id',
    'webhook_attempts.delivery_id references webhook_deliveries.id.');
SELECT set_eq(
    $$SELECT conrelid::regclass::text || '.' || a.attname || ' ' || c.confdeltype::text
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
       WHERE c.contype = 'f'
         AND c.conrelid IN ('webhook_deliveries'::regclass, 'webhook_attempts'::regclass)$$,
    ARRAY['webhook_deliveries.event_seq c', 'webhook_deliveries.endpoint_id a',
          'webhook_attempts.delivery_id c'],
    'Purging an event cascades to its deliveries and their attempts; endpoints are never purged under them.');

-- Indexes.
SELECT has_index('webhook_endpoints', 'webhook_endpoints_user_idx', ARRAY['user_id', 'created', 'id'],
    'webhook_endpoints has an index on (user_id, created, id) for the list and the fan-out join.');
SELECT is((SELECT pg_get_expr(indpred, indrelid) FROM pg_index
            WHERE indexrelid = 'webhook_endpoints_user_idx'::regclass),
          '(deleted_at IS NULL)', 'The endpoint index covers only live endpoints.');
SELECT has_index('webhook_deliveries', 'webhook_deliveries_due_idx', ARRAY['next_attempt_at', 'event_seq'],
    'webhook_deliveries has an index on (next_attempt_at, event_seq) for due deliveries in order.');
SELECT has_index('webhook_deliveries', 'webhook_deliveries_order_idx',
    ARRAY['endpoint_id', 'charge_id', 'event_seq'],
    'webhook_deliveries has an index on (endpoint_id, charge_id, event_seq) for the ordering check.');
SELECT set_eq(
    $$SELECT indexrelid::regclass::text || ' ' || pg_get_expr(indpred, indrelid) FROM pg_index
       WHERE indexrelid IN ('webhook_deliveries_due_idx'::regclass,
                            'webhook_deliveries_order_idx'::regclass)$$,
    ARRAY['webhook_deliveries_due_idx (status = ''pending''::text)',
          'webhook_deliveries_order_idx (status = ''pending''::text)'],
    'The relay''s two delivery indexes cover only pending deliveries.');
SELECT has_index('webhook_deliveries', 'webhook_deliveries_user_idx', ARRAY['user_id', 'status', 'created'],
    'webhook_deliveries has an index on (user_id, status, created) for the dead-letter list.');
SELECT has_index('webhook_deliveries', 'webhook_deliveries_event_idx', ARRAY['event_id'],
    'webhook_deliveries has an index on event_id for the per-event list.');
SELECT has_index('webhook_attempts', 'webhook_attempts_delivery_idx', ARRAY['delivery_id', 'seq'],
    'webhook_attempts has an index on (delivery_id, seq) for a delivery''s history.');

-- Functions.
SELECT function_returns('event_object', ARRAY['outbox_events'], 'json', 'event_object(outbox_events) returns json.');
SELECT function_returns('random_id', ARRAY['text'], 'text', 'random_id(text) returns text.');
SELECT function_returns('relay_fanout', ARRAY['integer'], 'integer', 'relay_fanout(integer) returns integer.');
SELECT function_returns('relay_claim', ARRAY['integer', 'bigint', 'integer', 'json'], 'setof record',
    'relay_claim(integer, bigint, integer, json) returns a set of rows.');
SELECT function_returns('relay_record', ARRAY['json'], 'void', 'relay_record(json) returns void.');
SELECT function_returns('relay_replay', ARRAY['text', 'text'], 'json', 'relay_replay(text, text) returns json.');
SELECT function_returns('webhook_endpoint_object', ARRAY['webhook_endpoints'], 'json',
    'webhook_endpoint_object(webhook_endpoints) returns json.');
SELECT function_returns('webhook_delivery_object', ARRAY['webhook_deliveries'], 'json',
    'webhook_delivery_object(webhook_deliveries) returns json.');
SELECT ok(pg_get_functiondef('relay_fanout(integer)'::regprocedure) ~* 'for\s+update\s+skip\s+locked',
    'relay_fanout claims events FOR UPDATE SKIP LOCKED, so relays share the work.');
SELECT ok(pg_get_functiondef('relay_claim(integer, bigint, integer, json)'::regprocedure) ~* 'for\s+update\s+skip\s+locked',
    'relay_claim claims deliveries FOR UPDATE SKIP LOCKED, so relays share the work.');
SELECT ok(random_id('wd_') ~ '^wd_[0-9A-Za-z]{24}$' AND random_id('wd_') <> random_id('wd_'),
    'random_id gives the prefix and 24 random characters, different each time.');

-- Fixtures: four charges of three users, six endpoints, five events.
INSERT INTO charges (id, user_id, amount, currency, source, status) VALUES
    (pg_temp.ch('A'), 'wh_u1', 1000, 'usd', 'tok_visa', 'succeeded'),
    (pg_temp.ch('B'), 'wh_u1', 2000, 'usd', 'tok_visa', 'succeeded'),
    (pg_temp.ch('C'), 'wh_u2', 3000, 'usd', 'tok_visa', 'succeeded'),
    (pg_temp.ch('D'), 'wh_u3', 4000, 'usd', 'tok_visa', 'succeeded');
INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret, status, deleted_at) VALUES
    (pg_temp.we('1'), 'wh_u1', 'https://one.example/hooks', '{charge.succeeded}',
     'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'enabled', NULL),
    (pg_temp.we('2'), 'wh_u1', 'https://two.example/hooks', '{*}',
     'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS2', 'enabled', NULL),
    (pg_temp.we('3'), 'wh_u1', 'http://three.example/hooks', '{refund.created,charge.failed}',
     'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS3', 'enabled', NULL),
    (pg_temp.we('4'), 'wh_u1', 'https://four.example/hooks', '{*}',
     'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS4', 'disabled', NULL),
    (pg_temp.we('5'), 'wh_u1', 'https://five.example/hooks', '{*}',
     'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS5', 'enabled', now()),
    (pg_temp.we('6'), 'wh_u2', 'https://six.example/hooks', '{*}',
     'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS6', 'enabled', NULL);
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id, idempotency_key)
SELECT pg_temp.evt(e), u, t, pg_temp.ch(c), pg_temp.ch(c),
       json_build_object('id', pg_temp.ch(c), 'object', 'charge', 'n', e), 'req_' || e, 'key-' || e
  FROM (VALUES (1, 'E1', 'wh_u1', 'charge.succeeded', 'A'),
               (2, 'E2', 'wh_u1', 'refund.created', 'A'),
               (3, 'E3', 'wh_u1', 'charge.refunded', 'A'),
               (4, 'E4', 'wh_u2', 'charge.succeeded', 'C'),
               (5, 'E5', 'wh_u3', 'charge.succeeded', 'D')) v(n, e, u, t, c)
 ORDER BY n;

-- The CHECK constraints refuse malformed rows.
SELECT throws_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
                   VALUES ('we_short', 'wh_u1', 'https://x.example/', '{*}', 'whsec_AA==')$$,
    '23514', NULL, 'An endpoint id must be we_ and 24 characters.');
SELECT throws_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
                   VALUES (pg_temp.we('X'), 'wh u1', 'https://x.example/', '{*}', 'whsec_AA==')$$,
    '23514', NULL, 'An endpoint''s user_id must be a well-formed user id.');
SELECT throws_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
                   VALUES (pg_temp.we('X'), 'wh_u1', 'ftp://x.example/', '{*}', 'whsec_AA==')$$,
    '23514', NULL, 'An endpoint URL must be http or https.');
SELECT throws_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
                   VALUES (pg_temp.we('X'), 'wh_u1', 'https://x.example/' || repeat('a', 2031),
                           '{*}', 'whsec_AA==')$$,
    '23514', NULL, 'An endpoint URL is at most 2048 characters.');
SELECT throws_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
                   VALUES (pg_temp.we('X'), 'wh_u1', 'https://x.example/', '{}', 'whsec_AA==')$$,
    '23514', NULL, 'An endpoint subscribes to at least one event type.');
SELECT throws_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
                   VALUES (pg_temp.we('X'), 'wh_u1', 'https://x.example/',
                           array_fill('charge.failed'::text, ARRAY[33]), 'whsec_AA==')$$,
    '23514', NULL, 'An endpoint subscribes to at most 32 event types.');
SELECT throws_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
                   VALUES (pg_temp.we('X'), 'wh_u1', 'https://x.example/', '{*}', 'AA==')$$,
    '23514', NULL, 'A signing secret starts with whsec_.');
SELECT throws_ok($$INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret, status)
                   VALUES (pg_temp.we('X'), 'wh_u1', 'https://x.example/', '{*}', 'whsec_AA==',
                           'paused')$$,
    '23514', NULL, 'An endpoint is enabled or disabled, nothing else.');
SELECT throws_ok($$INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id,
                                                   charge_id, status)
                   SELECT random_id('wd_'), seq, id, pg_temp.we('2'), user_id, charge_id, 'failed'
                     FROM outbox_events WHERE id = pg_temp.evt('E1')$$,
    '23514', NULL, 'A delivery is pending, succeeded or dead, nothing else.');
SELECT throws_ok($$INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id,
                                                   charge_id, attempts)
                   SELECT random_id('wd_'), seq, id, pg_temp.we('2'), user_id, charge_id, -1
                     FROM outbox_events WHERE id = pg_temp.evt('E1')$$,
    '23514', NULL, 'A delivery cannot have a negative number of attempts.');
SELECT throws_ok($$INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id,
                                                   charge_id)
                   SELECT 'wd_bad', seq, id, pg_temp.we('2'), user_id, charge_id
                     FROM outbox_events WHERE id = pg_temp.evt('E1')$$,
    '23514', NULL, 'A delivery id must be wd_ and 24 characters.');
SELECT throws_ok($$INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id,
                                                   charge_id)
                   SELECT random_id('wd_'), seq, id, pg_temp.we('Z'), user_id, charge_id
                     FROM outbox_events WHERE id = pg_temp.evt('E1')$$,
    '23503', NULL, 'A delivery must go to an existing endpoint.');

-- relay_fanout: one delivery per matching endpoint, then the event is published.
SELECT is(relay_fanout(2), 2, 'relay_fanout(2) fans out a batch of the two oldest unpublished events.');
SELECT set_eq($$SELECT id FROM outbox_events WHERE published_at IS NOT NULL$$,
    ARRAY[pg_temp.evt('E1'), pg_temp.evt('E2')],
    'Exactly the events of the batch are marked published.');
SELECT set_eq($$SELECT event_id, endpoint_id FROM webhook_deliveries$$,
    $$VALUES (pg_temp.evt('E1'), pg_temp.we('1')), (pg_temp.evt('E1'), pg_temp.we('2')),
             (pg_temp.evt('E2'), pg_temp.we('2')), (pg_temp.evt('E2'), pg_temp.we('3'))$$,
    'Each event goes to the enabled, live endpoints of its user that want its type or *.');
SELECT is(relay_fanout(100), 3, 'The next round fans out the three remaining events.');
SELECT set_eq($$SELECT event_id, endpoint_id FROM webhook_deliveries
                 WHERE event_id IN (pg_temp.evt('E3'), pg_temp.evt('E4'), pg_temp.evt('E5'))$$,
    $$VALUES (pg_temp.evt('E3'), pg_temp.we('2')), (pg_temp.evt('E4'), pg_temp.we('6'))$$,
    'Another user''s event goes only to that user''s endpoints.');
SELECT is((SELECT published_at IS NOT NULL FROM outbox_events WHERE id = pg_temp.evt('E5')), true,
    'An event no endpoint wants is published all the same, with no delivery.');
SELECT is(relay_fanout(100), 0, 'With every event published, relay_fanout returns 0.');
SELECT is((SELECT count(*) FROM webhook_deliveries d JOIN outbox_events e ON e.seq = d.event_seq
            WHERE d.id ~ '^wd_[0-9A-Za-z]{24}$' AND d.event_id = e.id AND d.user_id = e.user_id
              AND d.charge_id = e.charge_id AND d.status = 'pending' AND d.attempts = 0
              AND d.next_attempt_at <= now() AND d.locked_until IS NULL
              AND d.last_status_code IS NULL AND d.delivered_at IS NULL),
          6::bigint,
    'Every new delivery copies its event''s id, user and charge, is pending, due and unleased.');
UPDATE outbox_events SET published_at = NULL WHERE id = pg_temp.evt('E1');
SELECT is(relay_fanout(100), 1, 'An event put back in the outbox is fanned out again.');
SELECT is((SELECT count(*) FROM webhook_deliveries WHERE event_id = pg_temp.evt('E1')), 2::bigint,
    'Fanning out an event again adds no second delivery to the same endpoint.');

-- 0052: room on each page, so that a lease (locked_until, in no index) is a HOT update.
SELECT is((SELECT reloptions FROM pg_class WHERE oid = 'webhook_deliveries'::regclass), ARRAY['fillfactor=60'],
    'webhook_deliveries keeps 40% of each page free for the leases'' HOT updates.');

-- relay_claim: leases due deliveries, one event at a time per (endpoint, charge).
CREATE TEMP TABLE claim1 AS
SELECT c.*, o.seq AS event_seq, c.ordinality AS n
  FROM relay_claim(100, 60000) WITH ORDINALITY c
  JOIN outbox_events o ON o.id = c.event_id;
SELECT set_eq($$SELECT event_id, endpoint_id FROM claim1$$,
    $$VALUES (pg_temp.evt('E1'), pg_temp.we('1')), (pg_temp.evt('E1'), pg_temp.we('2')),
             (pg_temp.evt('E2'), pg_temp.we('3')), (pg_temp.evt('E4'), pg_temp.we('6'))$$,
    'relay_claim leases the due deliveries, but not a later event of a charge while an earlier one is pending for that endpoint.');
SELECT is((SELECT array_agg(event_seq ORDER BY n) = array_agg(event_seq ORDER BY event_seq, n)
             FROM claim1), true,
    'relay_claim returns its rows in event order.');
SELECT is((SELECT count(*) FROM claim1 c
             JOIN webhook_endpoints w ON w.id = c.endpoint_id
             JOIN outbox_events e ON e.id = c.event_id
            WHERE c.delivery_id = (SELECT d.id FROM webhook_deliveries d
                                    WHERE d.event_id = c.event_id AND d.endpoint_id = c.endpoint_id)
              AND c.url = w.url AND c.secret = w.secret AND c.attempts = 0
              AND c.body = event_object(e)::text),
          4::bigint,
    'Each claimed row carries its delivery id, the endpoint''s URL and secret, the attempts so far and the event object.');
SELECT is((SELECT body::jsonb FROM claim1 WHERE event_id = pg_temp.evt('E1') AND endpoint_id = pg_temp.we('1')),
          (SELECT jsonb_build_object('id', id, 'object', 'event', 'api_version', '2024-06-20',
                                     'type', 'charge.succeeded',
                                     'created', floor(extract(epoch FROM created))::bigint,
                                     'data', jsonb_build_object('object', data::jsonb),
                                     'livemode', false,
                                     'request', jsonb_build_object('id', 'req_E1',
                                                                   'idempotency_key', 'key-E1'))
             FROM outbox_events WHERE id = pg_temp.evt('E1')),
    'The body is {id, object: event, api_version, type, created, data: {object}, livemode: false, request: {id, idempotency_key}}.');
SELECT results_eq(
    $$SELECT json_object_keys(body::json) FROM claim1 WHERE event_id = pg_temp.evt('E1')
         AND endpoint_id = pg_temp.we('1')$$,
    ARRAY['id', 'object', 'api_version', 'type', 'created', 'data', 'livemode', 'request'],
    'The event object''s keys come in a fixed order.');
SELECT is((SELECT count(*) FROM webhook_deliveries
            WHERE locked_until = now() + interval '60 seconds'), 4::bigint,
    'Claimed deliveries are leased for p_lease_ms.');
SELECT is((SELECT count(*) FROM pg_temp.claim(100)), 0::bigint,
    'A leased delivery is not claimed again while its lease runs.');
UPDATE webhook_deliveries SET locked_until = now() - interval '1 millisecond'
 WHERE locked_until IS NOT NULL;
SELECT results_eq($$SELECT event FROM pg_temp.claim(1)$$, ARRAY[pg_temp.evt('E1')],
    'relay_claim takes at most p_batch deliveries, the oldest event first.');
SELECT is((SELECT count(*) FROM pg_temp.claim(100)), 3::bigint,
    'Once its lease has expired (a crashed relay), a delivery is claimed again.');

-- An event that another relay has not fanned out yet holds back its charge's later events.
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
VALUES (pg_temp.evt('E6'), 'wh_u1', 'charge.succeeded', pg_temp.ch('B'), pg_temp.ch('B'), '{}');
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
VALUES (pg_temp.evt('E7'), 'wh_u1', 'charge.refunded', pg_temp.ch('B'), pg_temp.ch('B'), '{}');
-- As if a relay had skipped E6 (locked by another relay's fan-out) and fanned out E7.
INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id, charge_id)
SELECT random_id('wd_'), seq, id, pg_temp.we('2'), user_id, charge_id
  FROM outbox_events WHERE id = pg_temp.evt('E7');
SELECT is((SELECT count(*) FROM pg_temp.claim(100)), 0::bigint,
    'A delivery waits while an earlier event of its charge is not fanned out yet.');
SELECT is(relay_fanout(100), 2, 'Fan-out then takes the two events of charge B.');
SELECT is((SELECT count(*) FROM webhook_deliveries WHERE event_id = pg_temp.evt('E7')), 1::bigint,
    'The delivery that already existed is kept, not doubled.');
SELECT set_eq($$SELECT event, endpoint FROM pg_temp.claim(100)$$,
    $$VALUES (pg_temp.evt('E6'), pg_temp.we('1')), (pg_temp.evt('E6'), pg_temp.we('2'))$$,
    'Once fanned out, the earlier event goes first; the later one waits for it.');

-- relay_record: success, a retry after a delay, and a dead delivery, in one round trip.
SELECT lives_ok($$SELECT relay_record(json_build_array(
        pg_temp.outcome('E1', '1', true, 200, NULL, 12, 0, false),
        pg_temp.outcome('E1', '2', false, 500, 'HTTP 500', 7, 5000, false),
        pg_temp.outcome('E2', '3', false, NULL, 'Connection refused', 3, 0, true),
        pg_temp.outcome('E4', '6', false, 503, 'HTTP 503', 4, 0, true)))$$,
    'relay_record stores a batch of outcomes in one call.');
SELECT is((SELECT (status, attempts, delivered_at = now(), locked_until IS NULL, last_status_code,
                   last_error IS NULL)::text
             FROM webhook_deliveries WHERE id = pg_temp.dl('E1', '1')),
          ('succeeded', 1, true, true, 200, true)::text,
    'A success marks the delivery succeeded and delivered now, with its status code, unleased.');
SELECT is((SELECT (status, attempts, next_attempt_at = now() + interval '5 seconds',
                   locked_until IS NULL, last_status_code, last_error, delivered_at IS NULL)::text
             FROM webhook_deliveries WHERE id = pg_temp.dl('E1', '2')),
          ('pending', 1, true, true, 500, 'HTTP 500', true)::text,
    'A failure with attempts left keeps the delivery pending, due after delay_ms, unleased.');
SELECT is((SELECT (status, attempts, locked_until IS NULL, last_status_code IS NULL, last_error,
                   delivered_at IS NULL)::text
             FROM webhook_deliveries WHERE id = pg_temp.dl('E2', '3')),
          ('dead', 1, true, true, 'Connection refused', true)::text,
    'A failure on the last attempt makes the delivery dead, keeping its error.');
SELECT set_eq(
    $$SELECT delivery_id, status_code, error, duration_ms, at = now() FROM webhook_attempts$$,
    $$VALUES (pg_temp.dl('E1', '1'), 200, NULL::text, 12, true),
             (pg_temp.dl('E1', '2'), 500, 'HTTP 500', 7, true),
             (pg_temp.dl('E2', '3'), NULL, 'Connection refused', 3, true),
             (pg_temp.dl('E4', '6'), 503, 'HTTP 503', 4, true)$$,
    'Every attempt is kept with its status code, error, duration and time.');
SELECT is((SELECT count(*) FROM pg_temp.claim(100)
            WHERE endpoint = pg_temp.we('2') AND event IN (pg_temp.evt('E1'), pg_temp.evt('E2'),
                                                        pg_temp.evt('E3'))),
          0::bigint,
    'A delivery waiting for its retry is not claimed early, and holds back its charge''s later events to that endpoint.');
UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 millisecond'
 WHERE id = pg_temp.dl('E1', '2');
CREATE TEMP TABLE claim2 AS SELECT * FROM relay_claim(100, 60000);
SELECT set_eq($$SELECT event_id, endpoint_id, attempts FROM claim2$$,
    $$VALUES (pg_temp.evt('E1'), pg_temp.we('2'), 1)$$,
    'When due, the retry is claimed with its attempts so far, and nothing behind it.');
SELECT lives_ok($$SELECT relay_record(json_build_array(
        pg_temp.outcome('E1', '2', true, 204, NULL, 5, 0, false)))$$,
    'The retry succeeds.');
SELECT set_eq($$SELECT event, endpoint FROM pg_temp.claim(100)$$,
    $$VALUES (pg_temp.evt('E2'), pg_temp.we('2'))$$,
    'After the retry succeeds, the charge''s next event to that endpoint is claimed, and only it.');
SELECT lives_ok($$SELECT relay_record(json_build_array(
        pg_temp.outcome('E2', '2', true, 200, NULL, 5, 0, false)))$$,
    'The next event''s delivery succeeds.');
SELECT set_eq($$SELECT event, endpoint FROM pg_temp.claim(100)$$,
    $$VALUES (pg_temp.evt('E3'), pg_temp.we('2'))$$,
    'Then the one after it: each endpoint sees a charge''s events in commit order.');
SELECT is((SELECT attempts FROM webhook_deliveries WHERE id = pg_temp.dl('E1', '2')), 2,
    'A delivery that failed once and then succeeded has made two attempts.');

-- A dead delivery does not hold back later events of its charge.
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
VALUES (pg_temp.evt('E8'), 'wh_u2', 'charge.refunded', pg_temp.ch('C'), pg_temp.ch('C'), '{}');
SELECT is(relay_fanout(100), 1, 'A later event of charge C is fanned out.');
SELECT set_eq($$SELECT event, endpoint FROM pg_temp.claim(100)$$,
    $$VALUES (pg_temp.evt('E8'), pg_temp.we('6'))$$,
    'A dead delivery does not hold back the later events of its charge.');

-- relay_replay: dead letters go back in the queue, same event, fresh attempts.
SELECT is(relay_replay(pg_temp.dl('E2', '3'), 'wh_u2')::text, NULL,
    'relay_replay finds nothing for another user''s delivery.');
SELECT is((SELECT status FROM webhook_deliveries WHERE id = pg_temp.dl('E2', '3')), 'dead',
    'Another user''s replay leaves the delivery dead.');
CREATE TEMP TABLE replayed AS SELECT relay_replay(pg_temp.dl('E2', '3'), 'wh_u1') AS o;
SELECT is((SELECT (o ->> 'id', o ->> 'event', o ->> 'webhook_endpoint', o ->> 'status',
                   (o ->> 'attempts')::int, json_array_length(o -> 'attempt_history'))::text
             FROM replayed),
          (pg_temp.dl('E2', '3'), pg_temp.evt('E2'), pg_temp.we('3'), 'pending', 0, 1)::text,
    'relay_replay returns the delivery pending with no attempts, the same event, and its history.');
SELECT is((SELECT (status, attempts, next_attempt_at = now(), locked_until IS NULL)::text
             FROM webhook_deliveries WHERE id = pg_temp.dl('E2', '3')),
          ('pending', 0, true, true)::text,
    'A replayed delivery is pending, due now and unleased.');
SELECT results_eq($$SELECT json_object_keys(o) FROM replayed$$,
    ARRAY['id', 'object', 'event', 'webhook_endpoint', 'status', 'attempts', 'next_attempt_at',
          'last_status_code', 'last_error', 'created', 'delivered_at', 'attempt_history'],
    'The delivery object has the documented fields, in a fixed order.');
SELECT is((SELECT count(*) FROM webhook_attempts WHERE delivery_id = pg_temp.dl('E2', '3')), 1::bigint,
    'Replay keeps the attempts already made.');
SELECT set_eq($$SELECT event, endpoint FROM pg_temp.claim(100)$$,
    $$VALUES (pg_temp.evt('E2'), pg_temp.we('3'))$$,
    'The replayed delivery is claimed again, with the same event (so the same webhook-id).');
SELECT is((SELECT (relay_replay(pg_temp.dl('E3', '2'), 'wh_u1')::jsonb ->> 'status')), 'pending',
    'relay_replay of a pending delivery returns it.');
SELECT is((SELECT locked_until IS NOT NULL FROM webhook_deliveries WHERE id = pg_temp.dl('E3', '2')),
    true, 'relay_replay leaves a pending (and leased) delivery as it is.');
SELECT is((SELECT relay_replay(pg_temp.dl('E1', '1'), NULL)::jsonb ->> 'status'), 'pending',
    'With no user (the operator''s CLI), relay_replay requeues any user''s delivery, even a delivered one.');
SELECT is((SELECT attempts FROM webhook_deliveries WHERE id = pg_temp.dl('E1', '1')), 0,
    'A requeued delivery starts its attempts again.');
SELECT is(relay_replay('wd_' || rpad('nosuch', 24, '0'), NULL)::text, NULL,
    'relay_replay of an unknown delivery returns NULL.');

-- webhook_endpoint_object never shows the secret.
SELECT results_eq(
    $$SELECT json_object_keys(webhook_endpoint_object(w)) FROM webhook_endpoints w
       WHERE id = pg_temp.we('1')$$,
    ARRAY['id', 'object', 'url', 'enabled_events', 'status', 'created'],
    'The endpoint object has id, object, url, enabled_events, status and created, and no secret.');

-- Purging events, and deleting endpoints.
SELECT is((SELECT count(*) FROM webhook_attempts WHERE delivery_id = pg_temp.dl('E4', '6')), 1::bigint,
    'Before the purge, event E4''s delivery has an attempt.');
DELETE FROM outbox_events WHERE id = pg_temp.evt('E4');
SELECT is((SELECT count(*) FROM webhook_deliveries WHERE event_id = pg_temp.evt('E4')), 0::bigint,
    'Deleting an event (the retention purge) deletes its deliveries.');
SELECT is((SELECT count(*) FROM webhook_attempts a
            WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id)),
          0::bigint,
    'and their attempts with them.');
SELECT throws_ok($$DELETE FROM webhook_endpoints WHERE id = pg_temp.we('2')$$, '23503', NULL,
    'An endpoint with deliveries cannot be deleted outright (the API soft-deletes it).');

-- create_webhook_endpoint: at most p_max live endpoints per user.
SELECT lives_ok($$SELECT create_webhook_endpoint('we_limit' || lpad(n::text, 19, '0'), 'limit_user',
                    'https://shop.example/' || n, '["*"]', 'whsec_x', 2)
                    FROM generate_series(1, 2) n$$,
    'create_webhook_endpoint creates endpoints up to the limit.');
SELECT throws_ok($$SELECT create_webhook_endpoint('we_limit0000000000000000003', 'limit_user',
                    'https://shop.example/3', '["*"]', 'whsec_x', 2)$$,
    'PR031', NULL, 'One more than the limit is refused with PR031, webhook_endpoints_limit.');
SELECT is((SELECT count(*) FROM webhook_endpoints WHERE user_id = 'limit_user'), 2::bigint,
    'and stores nothing.');
SELECT ok(delete_webhook_endpoint('we_limit0000000000000000001', 'limit_user'), 'Deleting one endpoint');
SELECT is(create_webhook_endpoint('we_limit0000000000000000004', 'limit_user',
            'https://shop.example/4', '["charge.succeeded"]', 'whsec_x', 2)->>'id',
          'we_limit0000000000000000004',
    'makes room for another: deleted endpoints do not count.');
SELECT is(create_webhook_endpoint('we_limit0000000000000000005', 'limit_user_2',
            'https://shop.example/5', '["*"]', 'whsec_x', 2)->>'object', 'webhook_endpoint',
    'The limit is per user, and the answer is the endpoint object.');

-- attempt_history is bounded: the object shows the last 50 attempts, and a replay forgets older ones.
INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
VALUES ('we_hist00000000000000000001', 'hist_user', 'https://hist.example/', '{*}', 'whsec_x');
INSERT INTO charges (id, user_id, amount, currency, source, status)
SELECT 'ch_hist0000000000000000000' || n, 'hist_user', 1000, 'usd', 'tok_visa', 'succeeded'
  FROM generate_series(1, 2) n;
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, published_at)
VALUES ('evt_hist00000000000000000001', 'hist_user', 'charge.succeeded', 'ch_hist00000000000000000001',
        'ch_hist00000000000000000001', '{}', now()),
       ('evt_hist00000000000000000002', 'hist_user', 'charge.succeeded', 'ch_hist00000000000000000002',
        'ch_hist00000000000000000002', '{}', now());
INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id, charge_id, status, attempts)
SELECT 'wd_hist0000000000000000000' || n, e.seq, e.id, 'we_hist00000000000000000001', 'hist_user',
       e.charge_id, 'dead', 120
  FROM generate_series(1, 2) n JOIN outbox_events e ON e.id = 'evt_hist0000000000000000000' || n;
INSERT INTO webhook_attempts (delivery_id, status_code, error, duration_ms)
SELECT 'wd_hist0000000000000000000' || n, 500, 'attempt ' || i, i
  FROM generate_series(1, 2) n, generate_series(1, 120) i ORDER BY n, i;
SELECT is((SELECT json_array_length(webhook_delivery_object(d)->'attempt_history')
             FROM webhook_deliveries d WHERE id = 'wd_hist00000000000000000001'), 50,
    'A delivery object shows at most 50 attempts');
SELECT is((SELECT array_agg((a->>'duration_ms')::int) FROM webhook_deliveries d,
                  json_array_elements(webhook_delivery_object(d)->'attempt_history') a
            WHERE d.id = 'wd_hist00000000000000000001'),
          ARRAY(SELECT generate_series(71, 120)),
    'the last 50, oldest of them first.');
SELECT is((relay_replay('wd_hist00000000000000000001', 'hist_user')->>'status'), 'pending',
    'A replay puts the delivery back in the queue');
SELECT is((SELECT array_agg(duration_ms ORDER BY seq) FROM webhook_attempts
            WHERE delivery_id = 'wd_hist00000000000000000001'),
          ARRAY(SELECT generate_series(71, 120)),
    'and keeps only its last 50 attempts.');
SELECT is(relay_replay_dead('we_hist00000000000000000001'), 1::bigint,
    'relay_replay_dead replays the other dead delivery');
SELECT is((SELECT count(*) FROM webhook_attempts WHERE delivery_id = 'wd_hist00000000000000000002'),
          50::bigint,
    'and it too keeps only its last 50 attempts.');

SELECT * FROM finish();
ROLLBACK;

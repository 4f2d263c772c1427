-- 060_update: merge_metadata, update_charge and update_refund: POST /v1/charges/{id} and
-- POST /v1/refunds/{id}, their merges, events, idempotency and refusals.
BEGIN;
SELECT plan(38);

INSERT INTO charges (id, user_id, amount, currency, source, description, metadata, status)
VALUES ('ch_update0000000000000000A1', 'alice', 1000, 'usd', 'tok_visa', 'Order 1',
        '{"a":"1","b":"2","e":""}', 'succeeded'),
       ('ch_update0000000000000000A2', 'alice', 1000, 'usd', 'tok_visa', NULL, '{}', 'succeeded');
INSERT INTO charges (id, user_id, amount, currency, source, status, failure_code, captured,
                     amount_captured)
VALUES ('ch_update0000000000000000F1', 'alice', 1000, 'usd', 'tok_chargeDeclined', 'failed',
        'card_declined', false, 0);
INSERT INTO refunds (id, user_id, charge_id, amount, currency, metadata, status, idempotency_key)
VALUES ('re_update0000000000000000R1', 'alice', 'ch_update0000000000000000A2', 100, 'usd',
        '{"ticket":"42"}', 'succeeded', 'k');
UPDATE charges SET amount_refunded = 100 WHERE id = 'ch_update0000000000000000A2';

-- merge_metadata: Stripe's merge, in the stored key order, compact.
SELECT is(merge_metadata('{"a":"1"}', NULL)::text, '{"a":"1"}', 'No metadata in the update leaves it as it is.');
SELECT is(merge_metadata('{"a":"1","b":"2"}', '""')::text, '{}', 'The empty string removes every key.');
SELECT is(merge_metadata('{"a":"1","b":"2","e":""}', '{"c":"3","a":"x","b":"","z":""}')::text,
          '{"a":"x","e":"","c":"3"}',
          'Keys are set and "" removes one; the others stay, new keys follow in the update''s order.');
SELECT is(merge_metadata('{}', '{}')::text, '{}', 'An empty object changes nothing.');
SELECT is(merge_metadata('{"x":"1"}', '{"k\"é":"v\n"}')::text, '{"x":"1","k\"é":"v\n"}',
          'Keys and values keep their escapes and UTF-8.');

-- update_charge.
SELECT has_function('update_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'json', 'integer', 'text', 'text'],
    'Function update_charge exists with the eleven parameters the service passes.');
SELECT is_definer('public', 'update_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'json', 'integer', 'text', 'text'],
    'update_charge is SECURITY DEFINER.');
SELECT results_eq(
    $$SELECT outcome, status_code FROM update_charge('alice', 'up-k1', sha256('up-1'), 86400000, 1000,
          'ch_update0000000000000000A1', 'New', '{"b":"","c":"3"}', 50, 'evt_update0000000000000000E1', 'req-1')$$,
    $$VALUES ('created', 200)$$, 'An update answers created, 200.');
SELECT results_eq(
    $$SELECT description, metadata::text FROM charges WHERE id = 'ch_update0000000000000000A1'$$,
    $$VALUES ('New', '{"a":"1","e":"","c":"3"}')$$,
    'The charge has the new description and the merged metadata.');
SELECT results_eq(
    $$SELECT type, object_id, charge_id, request_id, idempotency_key
        FROM outbox_events WHERE id = 'evt_update0000000000000000E1'$$,
    $$VALUES ('charge.updated', 'ch_update0000000000000000A1', 'ch_update0000000000000000A1', 'req-1', 'up-k1')$$,
    'The update wrote a charge.updated event with its request and key.');
SELECT is((SELECT data::text FROM outbox_events WHERE id = 'evt_update0000000000000000E1'),
          (SELECT charge_object(c)::text FROM charges c WHERE id = 'ch_update0000000000000000A1'),
          'The event''s data is the charge after the update.');
SELECT results_eq(
    $$SELECT status_code, object_id, response_body FROM idempotency_keys WHERE user_id = 'alice' AND key = 'up-k1'$$,
    $$SELECT 200, 'ch_update0000000000000000A1'::text, charge_object(c)::text FROM charges c
       WHERE id = 'ch_update0000000000000000A1'$$,
    'The key stores 200 and the charge object under the charge''s id.');
SELECT results_eq(
    $$SELECT outcome, status_code, body FROM update_charge('alice', 'up-k1', sha256('up-1'), 86400000, 1000,
          'ch_update0000000000000000A1', 'New', '{"b":"","c":"3"}', 50, 'evt_update0000000000000000E2', 'req-2')$$,
    $$SELECT 'replayed'::text, 200, response_body FROM idempotency_keys WHERE user_id = 'alice' AND key = 'up-k1'$$,
    'The same key and fingerprint replay the stored body.');
SELECT is((SELECT count(*) FROM outbox_events WHERE id = 'evt_update0000000000000000E2'), 0::bigint,
          'A replay writes no event.');
SELECT results_eq(
    $$SELECT outcome, body FROM update_charge('alice', 'up-k1', sha256('up-other'), 86400000, 1000,
          'ch_update0000000000000000A1', 'Other', NULL, 50, 'evt_update0000000000000000E3', 'req-3')$$,
    $$VALUES ('mismatch', NULL::text)$$, 'The same key with another fingerprint is a mismatch.');
SELECT is((SELECT description FROM charges WHERE id = 'ch_update0000000000000000A1'), 'New',
          'A mismatch changes nothing.');

CREATE TEMP TABLE before_noop AS SELECT ctid AS row_at FROM charges WHERE id = 'ch_update0000000000000000A1';
SELECT results_eq(
    $$SELECT outcome, status_code FROM update_charge('alice', 'up-k2', sha256('up-2'), 86400000, 1000,
          'ch_update0000000000000000A1', 'New', '{"a":"1"}', 50, 'evt_update0000000000000000E4', 'req-4')$$,
    $$VALUES ('created', 200)$$, 'An update that changes nothing still answers 200.');
SELECT is((SELECT count(*) FROM outbox_events WHERE id = 'evt_update0000000000000000E4'), 0::bigint,
          'An update that changes nothing writes no event.');
SELECT is((SELECT ctid FROM charges WHERE id = 'ch_update0000000000000000A1'),
          (SELECT row_at FROM before_noop), 'and writes no new version of the charge''s row.');
SELECT is((SELECT count(*) FROM idempotency_keys WHERE user_id = 'alice' AND key = 'up-k2'), 1::bigint,
          'It stores its key like any other.');

SELECT lives_ok($$SELECT * FROM update_charge('alice', 'up-k3', sha256('up-3'), 86400000, 1000,
                    'ch_update0000000000000000A1', '', '""', 50, 'evt_update0000000000000000E5', 'req-5')$$,
                'An update with description '''' and metadata "" runs.');
SELECT results_eq(
    $$SELECT description, metadata::text FROM charges WHERE id = 'ch_update0000000000000000A1'$$,
    $$VALUES (NULL::text, '{}')$$, 'Description '''' unsets it and metadata "" clears every key.');
SELECT lives_ok($$SELECT * FROM update_charge('alice', 'up-k4', sha256('up-4'), 86400000, 1000,
                    'ch_update0000000000000000F1', 'Declined order', NULL, 50, 'evt_update0000000000000000E6', 'req-6')$$,
                'A failed charge can be updated too.');
SELECT is((SELECT description FROM charges WHERE id = 'ch_update0000000000000000F1'), 'Declined order',
          'The failed charge has its new description.');

SELECT throws_ok($$SELECT * FROM update_charge('bob', 'up-k5', sha256('up-5'), 86400000, 1000,
                     'ch_update0000000000000000A2', 'x', NULL, 50, 'evt_update0000000000000000E7', 'req')$$,
                 'PR404', NULL, 'Updating another user''s charge raises PR404.');
SELECT throws_ok($$SELECT * FROM update_charge('alice', 'up-k5', sha256('up-5'), 86400000, 1000,
                     'ch_update0000000000000000ZZ', 'x', NULL, 50, 'evt_update0000000000000000E7', 'req')$$,
                 'PR404', NULL, 'Updating a charge that does not exist raises PR404.');
SELECT throws_ok($$SELECT * FROM update_charge('alice', 'up-k5', sha256('up-5'), 86400000, 1000,
                     'ch_update0000000000000000A2', NULL, '{"x":"1","y":"2","z":"3"}', 2,
                     'evt_update0000000000000000E7', 'req')$$,
                 'PR051', NULL, 'An update that would leave more than p_metadata_max keys raises PR051.');
SELECT is((SELECT count(*) FROM idempotency_keys WHERE key = 'up-k5'), 0::bigint,
          'Refused updates store no key.');
SELECT is((SELECT count(*) FROM outbox_events WHERE id = 'evt_update0000000000000000E7'), 0::bigint,
          'Refused updates write no event.');

-- update_refund.
SELECT is_definer('public', 'update_refund',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'json', 'integer', 'text', 'text'],
    'update_refund is SECURITY DEFINER.');
SELECT results_eq(
    $$SELECT outcome, status_code FROM update_refund('alice', 'up-r1', sha256('up-r1'), 86400000, 1000,
          're_update0000000000000000R1', '{"note":"called"}', 50, 'evt_update0000000000000000R1', 'req-r1')$$,
    $$VALUES ('created', 200)$$, 'A refund update answers created, 200.');
SELECT is((SELECT metadata::text FROM refunds WHERE id = 're_update0000000000000000R1'),
          '{"ticket":"42","note":"called"}', 'The refund''s metadata is merged.');
SELECT results_eq(
    $$SELECT type, object_id, charge_id, data::text FROM outbox_events WHERE id = 'evt_update0000000000000000R1'$$,
    $$SELECT 'refund.updated'::text, r.id, r.charge_id, refund_object(r)::text FROM refunds r
       WHERE id = 're_update0000000000000000R1'$$,
    'It wrote a refund.updated event of the refund after the update, under its charge.');
SELECT is((SELECT amount_refunded FROM charges WHERE id = 'ch_update0000000000000000A2'), 100::bigint,
          'The refunded amount is untouched.');
SELECT results_eq(
    $$SELECT outcome FROM update_refund('alice', 'up-r2', sha256('up-r2'), 86400000, 1000,
          're_update0000000000000000R1', '{"note":"called"}', 50, 'evt_update0000000000000000R2', 'req-r2')$$,
    $$VALUES ('created')$$, 'A refund update that changes nothing answers created.');
SELECT is((SELECT count(*) FROM outbox_events WHERE id = 'evt_update0000000000000000R2'), 0::bigint,
          'and writes no event.');
SELECT throws_ok($$SELECT * FROM update_refund('bob', 'up-r3', sha256('up-r3'), 86400000, 1000,
                     're_update0000000000000000R1', '{"x":"1"}', 50, 'evt_update0000000000000000R3', 'req')$$,
                 'PR404', NULL, 'Updating another user''s refund raises PR404.');
SELECT throws_ok($$SELECT * FROM update_refund('alice', 'up-r3', sha256('up-r3'), 86400000, 1000,
                     're_update0000000000000000R1', '{"x":"1"}', 2, 'evt_update0000000000000000R3', 'req')$$,
                 'PR051', NULL, 'A refund update past p_metadata_max keys raises PR051.');

SELECT * FROM finish();
ROLLBACK;

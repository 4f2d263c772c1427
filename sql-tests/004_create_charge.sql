-- 004_create_charge: create_charge stores a charge, its event and its idempotency key in one call,
-- and answers retries from the stored key.
BEGIN;
SELECT plan(49);

-- Arguments, in order: user, key, fingerprint, ttl_ms, wait_ms, charge id, event id, amount,
-- currency, source, description, metadata, failure_code, decline_code, error_body, request_id.

-- 1. A first request creates the charge.
CREATE TEMP TABLE first_call AS
SELECT * FROM create_charge('alice', 'key-1', sha256('request-1'), 86400000, 1000,
                            'ch_000000000000000000000001', 'evt_000000000000000000000001',
                            5000, 'usd', 'tok_visa', 'Order 7', '{"z":"1","a":"2"}',
                            NULL, NULL, NULL, 'req_1');

SELECT is((SELECT outcome FROM first_call), 'created', 'A new key gives the outcome created.');
SELECT is((SELECT status_code FROM first_call), 201, 'A succeeded charge is answered with 201.');
SELECT is((SELECT body FROM first_call),
          (SELECT charge_object(c)::text FROM charges c WHERE c.id = 'ch_000000000000000000000001'),
          'The body is the charge object of the stored row.');
SELECT is((SELECT body::json ->> 'id' FROM first_call), 'ch_000000000000000000000001',
          'The body carries the charge id that was passed in.');
SELECT is((SELECT (body::json -> 'metadata')::text FROM first_call), '{"z":"1","a":"2"}',
          'The body keeps the client''s metadata key order.');
SELECT results_eq(
    $$SELECT id, user_id, amount, currency, source, description, status, failure_code,
             decline_code, amount_refunded, idempotency_key, request_id, created
        FROM charges$$,
    $$VALUES ('ch_000000000000000000000001', 'alice', 5000::bigint, 'usd', 'tok_visa', 'Order 7',
              'succeeded', NULL::text, NULL::text, 0::bigint, 'key-1', 'req_1', now())$$,
    'Exactly one charge is stored, with every field that was passed in.');
SELECT results_eq(
    $$SELECT id, user_id, type, object_id, charge_id, request_id, idempotency_key,
             published_at IS NULL, created
        FROM outbox_events$$,
    $$VALUES ('evt_000000000000000000000001', 'alice', 'charge.succeeded',
              'ch_000000000000000000000001', 'ch_000000000000000000000001', 'req_1', 'key-1',
              true, now())$$,
    'Exactly one unpublished charge.succeeded event is stored in the same transaction.');
SELECT is((SELECT e.data::text FROM outbox_events e WHERE e.id = 'evt_000000000000000000000001'),
          (SELECT charge_object(c)::text FROM charges c WHERE c.id = 'ch_000000000000000000000001'),
          'The event data is the charge object.');
SELECT results_eq(
    $$SELECT user_id, key, fingerprint, status_code, response_body, object_id, expires_at
        FROM idempotency_keys$$,
    $$SELECT 'alice', 'key-1', sha256('request-1'), 201, f.body, 'ch_000000000000000000000001',
             now() + interval '86400000 milliseconds'
        FROM first_call f$$,
    'Exactly one idempotency key is stored with the fingerprint, the response and the TTL.');
SELECT is((SELECT expires_in_ms FROM first_call), 86400000::bigint,
          'A new key says it has the whole TTL left.');
SELECT is(current_setting('lock_timeout'), '1s',
          'A new key bounds the wait for a concurrent request with the same key by p_wait_ms.');

-- 2. A retry with the same fingerprint is answered from the stored key.
CREATE TEMP TABLE retry_call AS
SELECT * FROM create_charge('alice', 'key-1', sha256('request-1'), 86400000, 1000,
                            'ch_000000000000000000000002', 'evt_000000000000000000000002',
                            5000, 'usd', 'tok_visa', 'Order 7', '{"z":"1","a":"2"}',
                            NULL, NULL, NULL, 'req_2');

SELECT is((SELECT outcome FROM retry_call), 'replayed', 'A retry with the same fingerprint is replayed.');
SELECT is((SELECT status_code FROM retry_call), 201, 'A replay answers with the stored status.');
SELECT is((SELECT body FROM retry_call), (SELECT body FROM first_call),
          'A replay answers with the identical stored body.');
SELECT is((SELECT expires_in_ms FROM retry_call), 86400000::bigint,
          'A replay says how long the stored key has left (the whole TTL, in the same transaction).');
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM charges), (SELECT count(*) FROM outbox_events),
             (SELECT count(*) FROM idempotency_keys)$$,
    $$VALUES (1::bigint, 1::bigint, 1::bigint)$$,
    'A replay writes no charge, event or key.');

-- 3. The same key with a different request is a mismatch.
CREATE TEMP TABLE mismatch_call AS
SELECT * FROM create_charge('alice', 'key-1', sha256('request-2'), 86400000, 1000,
                            'ch_000000000000000000000003', 'evt_000000000000000000000003',
                            6000, 'usd', 'tok_visa', NULL, '{}', NULL, NULL, NULL, 'req_3');

SELECT is((SELECT outcome FROM mismatch_call), 'mismatch',
          'The same key with a different fingerprint is a mismatch.');
SELECT is((SELECT body FROM mismatch_call), NULL,
          'A mismatch returns no body, so the stored response never leaks to a different request.');
SELECT is((SELECT expires_in_ms FROM mismatch_call), NULL::bigint,
          'A mismatch says nothing of the stored key''s life.');
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM charges), (SELECT count(*) FROM outbox_events),
             (SELECT count(*) FROM idempotency_keys)$$,
    $$VALUES (1::bigint, 1::bigint, 1::bigint)$$,
    'A mismatch writes no charge, event or key.');
SELECT is((SELECT fingerprint FROM idempotency_keys WHERE key = 'key-1'), sha256('request-1'),
          'A mismatch leaves the stored fingerprint as it was.');

-- 4. A declined card stores a failed charge and answers 402 with the given error body.
CREATE TEMP TABLE declined_call AS
SELECT * FROM create_charge('alice', 'key-2', sha256('request-declined'), 86400000, 1000,
                            'ch_000000000000000000000004', 'evt_000000000000000000000004',
                            2500, 'eur', 'tok_chargeDeclined', NULL, '{}',
                            'card_declined', 'generic_decline',
                            '{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline","charge":"ch_000000000000000000000004"}}',
                            'req_4');

SELECT is((SELECT outcome FROM declined_call), 'created', 'A declined charge is still created.');
SELECT is((SELECT status_code FROM declined_call), 402, 'A declined charge is answered with 402.');
SELECT is((SELECT body FROM declined_call),
          '{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline","charge":"ch_000000000000000000000004"}}',
          'A declined charge is answered with the error body that was passed in.');
SELECT results_eq(
    $$SELECT status, failure_code, decline_code, amount_refunded FROM charges
       WHERE id = 'ch_000000000000000000000004'$$,
    $$VALUES ('failed', 'card_declined'::text, 'generic_decline'::text, 0::bigint)$$,
    'The declined charge is stored as failed with its failure and decline codes.');
SELECT results_eq(
    $$SELECT type, charge_id FROM outbox_events WHERE id = 'evt_000000000000000000000004'$$,
    $$VALUES ('charge.failed', 'ch_000000000000000000000004')$$,
    'A declined charge emits a charge.failed event.');
SELECT is((SELECT e.data::text FROM outbox_events e WHERE e.id = 'evt_000000000000000000000004'),
          (SELECT charge_object(c)::text FROM charges c WHERE c.id = 'ch_000000000000000000000004'),
          'The charge.failed event carries the failed charge object.');
SELECT results_eq(
    $$SELECT status_code, response_body FROM idempotency_keys WHERE user_id = 'alice' AND key = 'key-2'$$,
    $$SELECT status_code, body FROM declined_call$$,
    'The idempotency key stores the 402 and the error body.');

CREATE TEMP TABLE declined_retry AS
SELECT * FROM create_charge('alice', 'key-2', sha256('request-declined'), 86400000, 1000,
                            'ch_000000000000000000000005', 'evt_000000000000000000000005',
                            2500, 'eur', 'tok_chargeDeclined', NULL, '{}',
                            'card_declined', 'generic_decline', '{"error":"other"}', 'req_5');
SELECT results_eq(
    $$SELECT outcome, status_code, body FROM declined_retry$$,
    $$SELECT 'replayed', status_code, body FROM declined_call$$,
    'A retry of a declined charge replays the 402 and the original error body.');
SELECT is((SELECT count(*) FROM charges WHERE idempotency_key = 'key-2'), 1::bigint,
          'A retry of a declined charge does not charge the card again.');

-- 5. An expired key is treated as new.
UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
 WHERE user_id = 'alice' AND key = 'key-1';

CREATE TEMP TABLE expired_call AS
SELECT * FROM create_charge('alice', 'key-1', sha256('request-1'), 86400000, 1000,
                            'ch_000000000000000000000006', 'evt_000000000000000000000006',
                            5000, 'usd', 'tok_visa', 'Order 7', '{"z":"1","a":"2"}',
                            NULL, NULL, NULL, 'req_6');

SELECT is((SELECT outcome FROM expired_call), 'created', 'A request with an expired key creates a new charge.');
SELECT is((SELECT body::json ->> 'id' FROM expired_call), 'ch_000000000000000000000006',
          'The new charge has the new id, not the expired key''s charge.');
SELECT is((SELECT count(*) FROM charges WHERE user_id = 'alice' AND idempotency_key = 'key-1'), 2::bigint,
          'After the key expired there are two charges made with it.');
SELECT results_eq(
    $$SELECT count(*), min(object_id), min(expires_at) FROM idempotency_keys
       WHERE user_id = 'alice' AND key = 'key-1'$$,
    $$VALUES (1::bigint, 'ch_000000000000000000000006', now() + interval '86400000 milliseconds')$$,
    'The expired key is replaced by one row for the new charge with a fresh TTL.');

UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
 WHERE user_id = 'alice' AND key = 'key-1';
CREATE TEMP TABLE expired_other_call AS
SELECT * FROM create_charge('alice', 'key-1', sha256('request-other'), 86400000, 1000,
                            'ch_000000000000000000000007', 'evt_000000000000000000000007',
                            700, 'gbp', 'tok_amex', NULL, '{}', NULL, NULL, NULL, 'req_7');
SELECT is((SELECT outcome FROM expired_other_call), 'created',
          'An expired key reused with a different request creates a charge instead of a mismatch.');

-- 6. Keys are scoped per user.
CREATE TEMP TABLE other_user_call AS
SELECT * FROM create_charge('bob', 'key-1', sha256('request-1'), 86400000, 1000,
                            'ch_000000000000000000000008', 'evt_000000000000000000000008',
                            5000, 'usd', 'tok_visa', 'Order 7', '{"z":"1","a":"2"}',
                            NULL, NULL, NULL, 'req_8');

SELECT is((SELECT outcome FROM other_user_call), 'created',
          'Another user with the same key and body gets a new charge.');
SELECT results_eq(
    $$SELECT user_id, count(*) FROM charges WHERE id IN ('ch_000000000000000000000007',
                                                         'ch_000000000000000000000008')
       GROUP BY user_id ORDER BY user_id$$,
    $$VALUES ('alice', 1::bigint), ('bob', 1::bigint)$$,
    'Two users with the same key have a charge each.');
SELECT is((SELECT count(*) FROM idempotency_keys WHERE key = 'key-1'), 2::bigint,
          'Two users with the same key have an idempotency row each.');
SELECT is((SELECT user_id FROM outbox_events WHERE id = 'evt_000000000000000000000008'), 'bob',
          'The second user''s event belongs to that user.');

-- 7. A row the constraints refuse leaves nothing behind.
SELECT throws_ok(
    $$SELECT * FROM create_charge('alice', 'key-bad', sha256('request-bad'), 86400000, 1000,
                                  'ch_000000000000000000000009', 'evt_000000000000000000000009',
                                  0, 'usd', 'tok_visa', NULL, '{}', NULL, NULL, NULL, 'req_9')$$,
    '23514', 'new row for relation "charges" violates check constraint "charges_amount_check"',
    'create_charge refuses amount 0 through the charges CHECK.');
SELECT is((SELECT count(*) FROM idempotency_keys WHERE key = 'key-bad'), 0::bigint,
          'A refused charge leaves no idempotency key, so a corrected retry can succeed.');
SELECT is((SELECT count(*) FROM outbox_events WHERE id = 'evt_000000000000000000000009'), 0::bigint,
          'A refused charge leaves no event.');
SELECT throws_ok(
    $$SELECT * FROM create_charge('alice', 'key-bad', sha256('request-bad'), 86400000, 1000,
                                  'ch_bad', 'evt_000000000000000000000009',
                                  100, 'usd', 'tok_visa', NULL, '{}', NULL, NULL, NULL, 'req_9')$$,
    '23514', 'new row for relation "charges" violates check constraint "charges_id_check"',
    'create_charge refuses a malformed charge id.');
SELECT throws_ok(
    $$SELECT * FROM create_charge('alice', 'key-bad', sha256('request-bad'), 86400000, 1000,
                                  'ch_000000000000000000000009', 'evt_000000000000000000000008',
                                  100, 'usd', 'tok_visa', NULL, '{}', NULL, NULL, NULL, 'req_9')$$,
    '23505', 'duplicate key value violates unique constraint "outbox_events_id_key"',
    'create_charge refuses an event id that is already used.');
SELECT is((SELECT count(*) FROM charges WHERE id = 'ch_000000000000000000000009'), 0::bigint,
          'When the event insert fails the charge is not stored either.');

-- 8. Totals after all of the above.
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM charges), (SELECT count(*) FROM outbox_events),
             (SELECT count(*) FROM idempotency_keys)$$,
    $$VALUES (5::bigint, 5::bigint, 3::bigint)$$,
    'Five charges, five events and three live keys were stored in total.');
SELECT is((SELECT count(*) FROM charges c JOIN outbox_events e ON e.charge_id = c.id
            WHERE e.object_id = c.id AND e.user_id = c.user_id AND e.created = c.created), 5::bigint,
          'Every charge has exactly its own event, with the same user and time.');
SELECT is((SELECT count(*) FROM idempotency_keys k JOIN charges c ON c.id = k.object_id
            WHERE c.user_id = k.user_id AND c.idempotency_key = k.key), 3::bigint,
          'Every live key points at the charge it created.');
SELECT is((SELECT count(*) FROM charges WHERE id IN ('ch_000000000000000000000002',
                                                     'ch_000000000000000000000003',
                                                     'ch_000000000000000000000005')), 0::bigint,
          'The ids passed with replayed and mismatched requests were never used.');

SELECT * FROM finish();
ROLLBACK;

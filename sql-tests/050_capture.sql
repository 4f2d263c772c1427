-- 050_capture: migrations 0010/0011 and capture_charge: authorize now, capture later, the
-- constraints that bound captures and refunds, and releases by refund.
BEGIN;
SELECT plan(47);

INSERT INTO charges (id, user_id, amount, currency, source, status, captured, amount_captured)
VALUES ('ch_capture000000000000000A1', 'alice', 1000, 'usd', 'tok_visa', 'succeeded', false, 0),
       ('ch_capture000000000000000A2', 'alice', 1000, 'usd', 'tok_visa', 'succeeded', false, 0),
       ('ch_capture000000000000000A3', 'alice', 1000, 'usd', 'tok_visa', 'succeeded', false, 0),
       ('ch_capture000000000000000L1', 'alice', 700, 'usd', 'tok_visa', 'succeeded', true, NULL);
INSERT INTO charges (id, user_id, amount, currency, source, status, failure_code, captured, amount_captured)
VALUES ('ch_capture000000000000000F1', 'alice', 1000, 'usd', 'tok_chargeDeclined', 'failed',
        'card_declined', false, 0);

-- The columns.
SELECT col_type_is('charges', 'captured', 'boolean', 'charges.captured is boolean.');
SELECT col_not_null('charges', 'captured', 'charges.captured is NOT NULL.');
SELECT col_default_is('charges', 'captured', 'true', 'charges.captured defaults to true, as charges were before 0010.');
SELECT col_type_is('charges', 'amount_captured', 'bigint', 'charges.amount_captured is bigint.');
SELECT col_is_null('charges', 'amount_captured', 'charges.amount_captured is nullable: NULL on older charges stands for the amount.');
SELECT col_type_is('charges', 'released_at', 'timestamp with time zone', 'charges.released_at is timestamptz.');
SELECT col_type_is('charges', 'release_reason', 'text', 'charges.release_reason is text.');

-- The constraints, validated by 0011.
-- Since 0050 the four capture rules are part of charges_row_check (charges_row_valid());
-- the refusals below still name each one.
SELECT ok((SELECT convalidated FROM pg_constraint
            WHERE conrelid = 'charges'::regclass AND conname = 'charges_row_check'
              AND conkey @> ARRAY(SELECT attnum FROM pg_attribute WHERE attrelid = 'charges'::regclass
                                    AND attname IN ('captured', 'amount_captured', 'released_at',
                                                    'release_reason', 'amount_refunded', 'amount'))),
          'The capture rules exist, in the row check over the capture columns, and are validated.');
SELECT throws_ok($$UPDATE charges SET captured = true, amount_captured = 1001
                    WHERE id = 'ch_capture000000000000000A3'$$, '23514', NULL,
                 'amount_captured above the amount is refused.');
SELECT throws_ok($$UPDATE charges SET captured = true, amount_captured = -1
                    WHERE id = 'ch_capture000000000000000A3'$$, '23514', NULL,
                 'A negative amount_captured is refused.');
SELECT throws_ok($$UPDATE charges SET released_at = now() WHERE id = 'ch_capture000000000000000A3'$$,
                 '23514', NULL, 'released_at without release_reason is refused.');
SELECT throws_ok($$UPDATE charges SET released_at = now(), release_reason = 'lost'
                    WHERE id = 'ch_capture000000000000000A3'$$,
                 '23514', NULL, 'An unknown release_reason is refused.');
SELECT throws_ok($$UPDATE charges SET released_at = now(), release_reason = 'expired'
                    WHERE id = 'ch_capture000000000000000L1'$$,
                 '23514', NULL, 'A captured charge cannot be released.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, captured,
                                        amount_captured, amount_refunded)
                   VALUES ('ch_capture000000000000000X1', 'alice', 1000, 'usd', 'tok_visa',
                           'succeeded', true, 500, 600)$$,
                 '23514', NULL, 'amount_refunded above amount_captured on a captured charge is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, captured,
                                        amount_captured, amount_refunded)
                   VALUES ('ch_capture000000000000000X2', 'alice', 1000, 'usd', 'tok_visa',
                           'succeeded', false, 0, 1000)$$,
                 '23514', NULL, 'An uncaptured charge with refunds but no release is refused.');

-- create_charge with p_capture false.
SELECT is((SELECT outcome FROM create_charge(
              p_user_id => 'alice', p_key => 'cap-k1', p_fingerprint => sha256('cap-1'),
              p_ttl_ms => 86400000, p_wait_ms => 1000, p_charge_id => 'ch_capture000000000000000N1',
              p_event_id => 'evt_capture000000000000000N1', p_amount => 500, p_currency => 'usd',
              p_source => 'tok_visa', p_description => NULL, p_metadata => '{}',
              p_failure_code => NULL, p_decline_code => NULL, p_error_body => NULL,
              p_request_id => 'req', p_capture => false)),
          'created', 'create_charge with p_capture false creates the charge.');
SELECT results_eq($$SELECT captured, amount_captured FROM charges WHERE id = 'ch_capture000000000000000N1'$$,
                  $$VALUES (false, 0::bigint)$$, 'It is stored uncaptured with amount_captured 0.');
SELECT is((SELECT data ->> 'captured' FROM outbox_events WHERE id = 'evt_capture000000000000000N1'),
          'false', 'Its charge.succeeded event says captured false.');
SELECT results_eq($$SELECT c ->> 'captured', c ->> 'amount_captured' FROM
                     (SELECT charge_object(ch) AS c FROM charges ch
                       WHERE id = 'ch_capture000000000000000L1') o$$,
                  $$VALUES ('true', '700')$$,
                  'A charge from before 0010 (amount_captured NULL) renders captured in full.');

-- capture_charge.
SELECT has_function('capture_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'bigint', 'text', 'text'],
    'Function capture_charge exists with the nine parameters the service passes.');
SELECT is_definer('public', 'capture_charge',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'bigint', 'text', 'text'],
    'capture_charge is SECURITY DEFINER.');
SELECT results_eq(
    $$SELECT outcome, status_code FROM capture_charge('alice', 'cap-k2', sha256('cap-2'), 86400000, 1000,
          'ch_capture000000000000000A1', 600, 'evt_capture000000000000000C1', 'req')$$,
    $$VALUES ('created', 200)$$, 'A capture of 600 of 1000 answers created, 200.');
SELECT results_eq($$SELECT captured, amount_captured FROM charges WHERE id = 'ch_capture000000000000000A1'$$,
                  $$VALUES (true, 600::bigint)$$, 'The charge is captured with amount_captured 600.');
SELECT is((SELECT type FROM outbox_events WHERE id = 'evt_capture000000000000000C1'), 'charge.captured',
          'The capture wrote a charge.captured event.');
SELECT results_eq(
    $$SELECT outcome, status_code FROM capture_charge('alice', 'cap-k2', sha256('cap-2'), 86400000, 1000,
          'ch_capture000000000000000A1', 600, 'evt_capture000000000000000C2', 'req')$$,
    $$VALUES ('replayed', 200)$$, 'The same key and fingerprint replay.');
SELECT throws_ok($$SELECT * FROM capture_charge('alice', 'cap-k3', sha256('cap-3'), 86400000, 1000,
                     'ch_capture000000000000000A1', NULL, 'evt_capture000000000000000C3', 'req')$$,
                 'PR021', NULL, 'Capturing a captured charge raises PR021.');
SELECT throws_ok($$SELECT * FROM capture_charge('alice', 'cap-k3', sha256('cap-3'), 86400000, 1000,
                     'ch_capture000000000000000F1', NULL, 'evt_capture000000000000000C3', 'req')$$,
                 'PR023', NULL, 'Capturing a failed charge raises PR023.');
SELECT throws_ok($$SELECT * FROM capture_charge('alice', 'cap-k3', sha256('cap-3'), 86400000, 1000,
                     'ch_capture000000000000000A2', 1001, 'evt_capture000000000000000C3', 'req')$$,
                 'PR001', NULL, 'Capturing more than authorized raises PR001.');
SELECT throws_ok($$SELECT * FROM capture_charge('bob', 'cap-k3', sha256('cap-3'), 86400000, 1000,
                     'ch_capture000000000000000A2', NULL, 'evt_capture000000000000000C3', 'req')$$,
                 'PR404', NULL, 'Capturing another user''s charge raises PR404.');
SELECT is((SELECT count(*) FROM idempotency_keys WHERE key = 'cap-k3'), 0::bigint,
          'Refused captures store no key.');

-- Refunds: bounded by amount_captured; on an uncaptured charge, a release.
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'cap-r1', sha256('cap-r1'), 86400000, 1000,
                     're_capture000000000000000R1', 'ch_capture000000000000000A1', 601, NULL, '{}',
                     'req', 'evt_capture000000000000000R1', 'evt_capture000000000000000R2')$$,
                 'PR001', NULL, 'A refund above amount_captured raises PR001.');
SELECT results_eq(
    $$SELECT outcome, status_code FROM create_refund('alice', 'cap-r2', sha256('cap-r2'), 86400000, 1000,
          're_capture000000000000000R2', 'ch_capture000000000000000A2', NULL, NULL, '{}',
          'req', 'evt_capture000000000000000R3', 'evt_capture000000000000000R4')$$,
    $$VALUES ('created', 201)$$, 'A refund of an uncaptured charge is created.');
SELECT results_eq(
    $$SELECT captured, amount_refunded, release_reason, released_at IS NOT NULL
        FROM charges WHERE id = 'ch_capture000000000000000A2'$$,
    $$VALUES (false, 1000::bigint, 'refunded', true)$$,
    'It released the whole authorization: amount_refunded is the amount, release_reason refunded.');
SELECT throws_ok($$SELECT * FROM capture_charge('alice', 'cap-k4', sha256('cap-4'), 86400000, 1000,
                     'ch_capture000000000000000A2', NULL, 'evt_capture000000000000000C4', 'req')$$,
                 'PR022', NULL, 'Capturing a released charge raises PR022.');
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'cap-r3', sha256('cap-r3'), 86400000, 1000,
                     're_capture000000000000000R3', 'ch_capture000000000000000A3', 10, NULL, '{}',
                     'req', 'evt_capture000000000000000R5', 'evt_capture000000000000000R6')$$,
                 'PR024', NULL, 'A refund of part of an uncaptured charge raises PR024.');

-- expire_authorizations and the index that serves it.
SELECT has_index('charges', 'charges_uncaptured_created_idx', ARRAY['created'],
    'charges_uncaptured_created_idx indexes uncaptured charges by created.');
SELECT ok((SELECT indisvalid FROM pg_index WHERE indexrelid = 'charges_uncaptured_created_idx'::regclass),
    'charges_uncaptured_created_idx is valid (built CONCURRENTLY by 0012).');
SELECT ok(pg_get_indexdef('charges_uncaptured_created_idx'::regclass) ~ 'WHERE .*NOT captured',
    'charges_uncaptured_created_idx is partial: only uncaptured charges.');
SELECT is_definer('public', 'expire_authorizations', ARRAY['bigint', 'integer'],
    'expire_authorizations is SECURITY DEFINER.');
UPDATE charges SET created = now() - interval '8 days'
 WHERE id IN ('ch_capture000000000000000A3', 'ch_capture000000000000000L1', 'ch_capture000000000000000F1');
UPDATE charges SET created = now() - interval '8 days' WHERE id = 'ch_capture000000000000000N1';
SELECT is(expire_authorizations(7 * 86400000, 1), 1::bigint,
          'A batch of one expires one authorization past the TTL.');
SELECT is(expire_authorizations(7 * 86400000, 100), 1::bigint,
          'The next batch expires the other; captured, failed and released charges are left alone.');
SELECT results_eq(
    $$SELECT id, release_reason FROM charges WHERE release_reason = 'expired' ORDER BY id$$,
    $$VALUES ('ch_capture000000000000000A3', 'expired'), ('ch_capture000000000000000N1', 'expired')$$,
    'Exactly the two old uncaptured authorizations are released as expired.');
SELECT is((SELECT count(*) FROM outbox_events WHERE type = 'charge.expired'
             AND charge_id IN ('ch_capture000000000000000A3', 'ch_capture000000000000000N1')
             AND (data ->> 'release_reason') = 'expired'),
          2::bigint, 'Each expiry wrote a charge.expired event with the released charge.');

-- GET /v1/charges?captured=false: list_page's filter and the index that serves it.
SELECT has_index('charges', 'charges_user_uncaptured_idx', ARRAY['user_id', 'created', 'id'],
    'charges_user_uncaptured_idx indexes a user''s uncaptured and failed charges newest first.');
SELECT ok((SELECT indisvalid FROM pg_index WHERE indexrelid = 'charges_user_uncaptured_idx'::regclass),
    'charges_user_uncaptured_idx is valid (built CONCURRENTLY by 0013).');
SELECT is((SELECT json_agg(o ->> 'id' ORDER BY o ->> 'id')::text
             FROM list_page('charges', 'alice', 100, NULL, NULL, NULL, NULL, 'captured', 'false') l,
                  json_array_elements(l.data::json) o),
          '["ch_capture000000000000000A2", "ch_capture000000000000000A3", "ch_capture000000000000000F1", "ch_capture000000000000000N1"]',
          'captured=false lists the uncaptured charges, released or not, and the failed one.');
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || q LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END
$f$;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT matches(pg_temp.plan_of(
    $$SELECT t FROM charges t WHERE t.user_id = 'alice' AND (NOT t.captured OR t.status = 'failed')
       ORDER BY t.created DESC, t.id DESC LIMIT 11$$),
    'charges_user_uncaptured_idx',
    'list_page''s captured=false query is served by charges_user_uncaptured_idx.');

SELECT * FROM finish();
ROLLBACK;

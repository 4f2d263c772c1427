-- 030_refunds: migration 0003: the refunds table, the checks that keep amount_refunded equal to the
-- sum of a charge's refunds and within its amount, create_refund, idempotency_lookup and list_page.
BEGIN;
SELECT plan(144);

-- Fixtures. Ids end in a short tag (A1, R1, E01, ...) so that page contents read easily.
INSERT INTO charges (id, user_id, amount, currency, source, status, failure_code, decline_code)
VALUES ('ch_refund0000000000000000A1', 'alice', 1000, 'usd', 'tok_visa', 'succeeded', NULL, NULL),
       ('ch_refund0000000000000000F1', 'alice', 800, 'usd', 'tok_chargeDeclined', 'failed',
        'card_declined', 'generic_decline'),
       ('ch_refund0000000000000000B1', 'bob', 500, 'eur', 'tok_visa', 'succeeded', NULL, NULL),
       ('ch_refund0000000000000000C1', 'alice', 1000, 'usd', 'tok_visa', 'succeeded', NULL, NULL),
       ('ch_refund0000000000000000D1', 'alice', 1000, 'usd', 'tok_visa', 'succeeded', NULL, NULL);

-- ---------------------------------------------------------------------------------------------
-- The refunds table.
SELECT has_table('refunds', 'Table refunds exists.');
SELECT columns_are('refunds',
    ARRAY['id', 'user_id', 'charge_id', 'amount', 'currency', 'reason', 'metadata', 'status',
          'idempotency_key', 'request_id', 'created'],
    'Table refunds has exactly the expected columns.');
SELECT col_type_is('refunds', 'id', 'text', 'refunds.id is text.');
SELECT col_type_is('refunds', 'user_id', 'text', 'refunds.user_id is text.');
SELECT col_type_is('refunds', 'charge_id', 'text', 'refunds.charge_id is text.');
SELECT col_type_is('refunds', 'amount', 'bigint', 'refunds.amount is bigint, in the smallest currency unit.');
SELECT col_type_is('refunds', 'currency', 'text', 'refunds.currency is text.');
SELECT col_type_is('refunds', 'metadata', 'json', 'refunds.metadata is json, so the client''s key order survives.');
SELECT col_type_is('refunds', 'created', 'timestamp with time zone', 'refunds.created is timestamptz.');
SELECT col_is_pk('refunds', 'id', 'refunds.id is the primary key.');
SELECT fk_ok('refunds', 'charge_id', 'charges', 'id', 'refunds.charge_id references charges.id.');
SELECT col_not_null('refunds', 'user_id', 'refunds.user_id is NOT NULL.');
SELECT col_not_null('refunds', 'charge_id', 'refunds.charge_id is NOT NULL.');
SELECT col_not_null('refunds', 'amount', 'refunds.amount is NOT NULL.');
SELECT col_not_null('refunds', 'currency', 'refunds.currency is NOT NULL.');
SELECT col_not_null('refunds', 'metadata', 'refunds.metadata is NOT NULL.');
SELECT col_not_null('refunds', 'status', 'refunds.status is NOT NULL.');
SELECT col_not_null('refunds', 'created', 'refunds.created is NOT NULL.');
SELECT col_is_null('refunds', 'reason', 'refunds.reason is nullable: a refund need not give a reason.');
SELECT col_default_is('refunds', 'status', 'succeeded', 'refunds.status defaults to succeeded.');
SELECT col_default_is('refunds', 'created', 'now()', 'refunds.created defaults to now().');
SELECT col_has_default('refunds', 'metadata', 'refunds.metadata has a default (an empty object).');
SELECT col_has_check('refunds', 'id', 'refunds.id has a CHECK on its format.');
SELECT col_has_check('refunds', 'user_id', 'refunds.user_id has a CHECK on its format.');
SELECT col_has_check('refunds', 'amount', 'refunds.amount has a CHECK on its bounds.');
SELECT col_has_check('refunds', 'currency', 'refunds.currency has a CHECK on its format.');
SELECT col_has_check('refunds', 'reason', 'refunds.reason has a CHECK on its values.');
SELECT col_has_check('refunds', 'status', 'refunds.status has a CHECK on its values.');

-- Each CHECK refuses a bad row (the deferred sum check never runs: these fail first).
SELECT throws_ok($$INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                   VALUES ('re_bad', 'alice', 'ch_refund0000000000000000C1', 1, 'usd')$$,
                 '23514', NULL, 'A refund id without the re_ prefix and 24 characters is refused.');
SELECT throws_ok($$INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                   VALUES ('re_refund0000000000000000X1', 'alice', 'ch_refund0000000000000000C1', 0, 'usd')$$,
                 '23514', NULL, 'A refund of amount 0 is refused.');
SELECT throws_ok($$INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                   VALUES ('re_refund0000000000000000X1', 'alice', 'ch_refund0000000000000000C1', -5, 'usd')$$,
                 '23514', NULL, 'A refund of a negative amount is refused.');
SELECT throws_ok($$INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                   VALUES ('re_refund0000000000000000X1', 'alice', 'ch_refund0000000000000000C1', 100000000, 'usd')$$,
                 '23514', NULL, 'A refund of amount 100000000 is refused.');
SELECT throws_ok($$INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                   VALUES ('re_refund0000000000000000X1', 'alice', 'ch_refund0000000000000000C1', 1, 'USD')$$,
                 '23514', NULL, 'A refund in an upper-case currency is refused.');
SELECT throws_ok($$INSERT INTO refunds (id, user_id, charge_id, amount, currency, reason)
                   VALUES ('re_refund0000000000000000X1', 'alice', 'ch_refund0000000000000000C1', 1, 'usd', 'whim')$$,
                 '23514', NULL, 'A refund with an unknown reason is refused.');
SELECT throws_ok($$INSERT INTO refunds (id, user_id, charge_id, amount, currency, status)
                   VALUES ('re_refund0000000000000000X1', 'alice', 'ch_refund0000000000000000C1', 1, 'usd', 'pending')$$,
                 '23514', NULL, 'A refund with a status other than succeeded is refused.');
SELECT throws_ok($$INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                   VALUES ('re_refund0000000000000000X1', 'alice', 'ch_refund0000000000000000Z9', 1, 'usd')$$,
                 '23503', NULL, 'A refund of a charge that does not exist is refused by the foreign key.');

-- Indexes: each list query and the per-charge list have one, sorted newest first.
SELECT has_index('refunds', 'refunds_user_created_idx', ARRAY['user_id', 'created', 'id'],
    'refunds has an index on (user_id, created, id) for newest-first lists.');
SELECT ok((SELECT pg_get_indexdef('refunds_user_created_idx'::regclass)
             LIKE '%(user_id, created DESC, id DESC)'),
          'The refunds list index sorts created and id descending.');
SELECT has_index('refunds', 'refunds_charge_created_idx', ARRAY['charge_id', 'created', 'id'],
    'refunds has an index on (charge_id, created, id) for a charge''s refunds.');
SELECT ok((SELECT pg_get_indexdef('refunds_charge_created_idx'::regclass)
             LIKE '%(charge_id, created DESC, id DESC)'),
          'The per-charge refunds index sorts created and id descending.');
SELECT hasnt_index('charges', 'charges_user_id_idx',
    'charges has no (user_id, id) index: the primary key serves a user''s cursor and object lookups (0009).');
SELECT has_index('charges', 'charges_user_created_idx', ARRAY['user_id', 'created', 'id'],
    'The charges list is served by the index on (user_id, created, id).');
SELECT has_index('outbox_events', 'outbox_events_user_created_idx', ARRAY['user_id', 'created', 'id'],
    'The events list is served by the index on (user_id, created, id).');

-- The constraint triggers that keep amount_refunded equal to the sum of the refunds.
SELECT has_trigger('refunds', 'refunds_sum_matches', 'refunds has the trigger refunds_sum_matches.');
SELECT trigger_is('refunds', 'refunds_sum_matches', 'check_refund_sum',
    'refunds_sum_matches calls check_refund_sum.');
SELECT has_trigger('charges', 'charges_refunded_matches', 'charges has the trigger charges_refunded_matches.');
SELECT trigger_is('charges', 'charges_refunded_matches', 'check_refund_sum',
    'charges_refunded_matches calls check_refund_sum.');
SELECT is((SELECT string_agg(format('%s deferrable=%s deferred=%s', conname, condeferrable, condeferred),
                              ', ' ORDER BY conname)
             FROM pg_constraint
            WHERE contype = 't' AND conname IN ('refunds_sum_matches', 'charges_refunded_matches')),
          'charges_refunded_matches deferrable=t deferred=t, '
          'refunds_sum_matches deferrable=t deferred=t',
          'Both are constraint triggers, DEFERRABLE INITIALLY DEFERRED, so they run at commit.');
SELECT ok((SELECT pg_get_triggerdef(t.oid) LIKE '%AFTER INSERT OR DELETE OR UPDATE ON public.refunds%FOR EACH ROW%'
             FROM pg_trigger t WHERE t.tgname = 'refunds_sum_matches'),
          'refunds_sum_matches runs for every inserted, updated or deleted refund.');
SELECT ok((SELECT pg_get_triggerdef(t.oid) LIKE '%AFTER UPDATE OF amount_refunded ON public.charges%FOR EACH ROW%'
             FROM pg_trigger t WHERE t.tgname = 'charges_refunded_matches')
          AND (SELECT pg_get_triggerdef(t.oid) LIKE '%AFTER INSERT ON public.charges%FOR EACH ROW WHEN ((new.amount_refunded <> 0))%'
                 FROM pg_trigger t WHERE t.tgname = 'charges_inserted_refunded'),
          'charges_refunded_matches runs for every change of a charge''s amount_refunded, charges_inserted_refunded for a new charge claiming refunds.');

-- The functions of 0003.
SELECT has_function('check_refund_sum', 'Function check_refund_sum exists.');
SELECT function_returns('check_refund_sum', 'trigger', 'check_refund_sum is a trigger function.');
SELECT has_function('refund_object', ARRAY['refunds'], 'Function refund_object(refunds) exists.');
SELECT volatility_is('refund_object', ARRAY['refunds'], 'stable', 'refund_object is STABLE.');
SELECT has_function('idempotency_lookup', ARRAY['text', 'text', 'bytea'],
    'Function idempotency_lookup(user, key, fingerprint) exists.');
SELECT volatility_is('idempotency_lookup', ARRAY['text', 'text', 'bytea'], 'stable',
    'idempotency_lookup is STABLE: the read-only fast path writes nothing.');
SELECT has_function('create_refund',
    ARRAY['text', 'text', 'bytea', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'json',
          'text', 'text', 'text'],
    'Function create_refund exists with the thirteen parameters db_refund.c binds.');
SELECT is((SELECT array_agg(n ORDER BY o) FROM pg_proc p,
                  unnest(p.proargnames, p.proargmodes::text[]) WITH ORDINALITY AS a(n, m, o)
            WHERE p.proname = 'create_refund' AND m = 'i'),
          ARRAY['p_user_id', 'p_key', 'p_fingerprint', 'p_ttl_ms', 'p_wait_ms', 'p_refund_id',
                'p_charge_id', 'p_amount', 'p_reason', 'p_metadata', 'p_request_id',
                'p_refund_event_id', 'p_charge_event_id'],
          'create_refund takes its parameters in the order db_refund.c binds them.');
SELECT has_function('list_page',
    ARRAY['text', 'text', 'integer', 'text', 'text', 'timestamp with time zone',
          'timestamp with time zone', 'text', 'text'],
    'Function list_page exists with the nine parameters db_list.c binds.');
SELECT volatility_is('list_page',
    ARRAY['text', 'text', 'integer', 'text', 'text', 'timestamp with time zone',
          'timestamp with time zone', 'text', 'text'],
    'stable', 'list_page is STABLE: a list never writes.');

-- ---------------------------------------------------------------------------------------------
-- create_refund. Arguments: user, key, fingerprint, ttl_ms, wait_ms, refund id, charge id,
-- amount (NULL: what is left), reason, metadata, request id, refund event id, charge event id.

-- 1. A partial refund.
CREATE TEMP TABLE call_1 AS
SELECT * FROM create_refund('alice', 'rk-1', sha256('refund-1'), 86400000, 1000,
                            're_refund0000000000000000R1', 'ch_refund0000000000000000A1', 300,
                            'requested_by_customer', '{"z":"1","a":"2"}', 'req_r1',
                            'evt_refund000000000000000E01', 'evt_refund000000000000000E02');

SELECT is((SELECT outcome FROM call_1), 'created', 'A first refund request has the outcome created.');
SELECT is((SELECT status_code FROM call_1), 201, 'A created refund is answered with 201.');
SELECT is((SELECT body FROM call_1),
          '{"id":"re_refund0000000000000000R1","object":"refund","amount":300,'
          '"charge":"ch_refund0000000000000000A1","currency":"usd","metadata":{"z":"1","a":"2"},'
          '"reason":"requested_by_customer","status":"succeeded","created":'
          || floor(extract(epoch FROM now()))::bigint || '}',
          'The body is the refund object: every field, in order, with the charge''s currency.');
SELECT is((SELECT body FROM call_1),
          (SELECT refund_object(r)::text FROM refunds r WHERE r.id = 're_refund0000000000000000R1'),
          'The body is the refund object of the stored row.');
SELECT results_eq(
    $$SELECT id, user_id, charge_id, amount, currency, reason, metadata::text, status,
             idempotency_key, request_id, created FROM refunds$$,
    $$VALUES ('re_refund0000000000000000R1', 'alice', 'ch_refund0000000000000000A1', 300::bigint,
              'usd', 'requested_by_customer', '{"z":"1","a":"2"}', 'succeeded', 'rk-1', 'req_r1',
              now())$$,
    'Exactly one refund is stored, with every field that was passed in.');
SELECT results_eq(
    $$SELECT amount_refunded, (charge_object(c)::json ->> 'refunded')::boolean
        FROM charges c WHERE id = 'ch_refund0000000000000000A1'$$,
    $$VALUES (300::bigint, false)$$,
    'The charge''s amount_refunded grows by the refund, and it is not yet refunded in full.');
SELECT results_eq(
    $$SELECT id, user_id, type, object_id, charge_id, request_id, idempotency_key,
             published_at IS NULL, created FROM outbox_events ORDER BY id$$,
    $$VALUES ('evt_refund000000000000000E01', 'alice', 'refund.created', 're_refund0000000000000000R1',
              'ch_refund0000000000000000A1', 'req_r1', 'rk-1', true, now()),
             ('evt_refund000000000000000E02', 'alice', 'charge.refunded', 'ch_refund0000000000000000A1',
              'ch_refund0000000000000000A1', 'req_r1', 'rk-1', true, now())$$,
    'A refund.created and a charge.refunded event are stored, unpublished, in the same transaction.');
SELECT is((SELECT data::text FROM outbox_events WHERE id = 'evt_refund000000000000000E01'),
          (SELECT body FROM call_1), 'The refund.created event carries the refund object.');
SELECT is((SELECT data::text FROM outbox_events WHERE id = 'evt_refund000000000000000E02'),
          (SELECT charge_object(c)::text FROM charges c WHERE c.id = 'ch_refund0000000000000000A1'),
          'The charge.refunded event carries the charge object with its new amount_refunded.');
SELECT results_eq(
    $$SELECT user_id, key, fingerprint, status_code, response_body, object_id, expires_at
        FROM idempotency_keys$$,
    $$SELECT 'alice', 'rk-1', sha256('refund-1'), 201, c.body, 're_refund0000000000000000R1',
             now() + interval '86400000 milliseconds' FROM call_1 c$$,
    'The idempotency key is stored with the fingerprint, the refund id, the response and the TTL.');

-- 2. A retry with the same fingerprint is answered from the key, and writes nothing.
CREATE TEMP TABLE call_2 AS
SELECT * FROM create_refund('alice', 'rk-1', sha256('refund-1'), 86400000, 1000,
                            're_refund0000000000000000R2', 'ch_refund0000000000000000A1', 300,
                            'requested_by_customer', '{"z":"1","a":"2"}', 'req_r2',
                            'evt_refund000000000000000E03', 'evt_refund000000000000000E04');
SELECT results_eq($$SELECT outcome, status_code, body FROM call_2$$,
                  $$SELECT 'replayed'::text, 201, body FROM call_1$$,
                  'A retry is replayed with the stored status and the identical body.');
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM refunds), (SELECT count(*) FROM outbox_events),
             (SELECT count(*) FROM idempotency_keys),
             (SELECT amount_refunded FROM charges WHERE id = 'ch_refund0000000000000000A1')$$,
    $$VALUES (1::bigint, 2::bigint, 1::bigint, 300::bigint)$$,
    'A replay writes no refund, event or key, and refunds nothing more.');

-- 3. The same key with a different request is a mismatch.
CREATE TEMP TABLE call_3 AS
SELECT * FROM create_refund('alice', 'rk-1', sha256('refund-other'), 86400000, 1000,
                            're_refund0000000000000000R3', 'ch_refund0000000000000000A1', 100,
                            NULL, '{}', 'req_r3',
                            'evt_refund000000000000000E05', 'evt_refund000000000000000E06');
SELECT results_eq($$SELECT outcome, body FROM call_3$$, $$VALUES ('mismatch'::text, NULL::text)$$,
                  'The same key with another fingerprint is a mismatch, and no body leaks.');
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM refunds), (SELECT count(*) FROM outbox_events),
             (SELECT amount_refunded FROM charges WHERE id = 'ch_refund0000000000000000A1')$$,
    $$VALUES (1::bigint, 2::bigint, 300::bigint)$$,
    'A mismatch writes nothing.');

-- 4. Partial refunds repeat.
CREATE TEMP TABLE call_4 AS
SELECT * FROM create_refund('alice', 'rk-4', sha256('refund-4'), 86400000, 1000,
                            're_refund0000000000000000R4', 'ch_refund0000000000000000A1', 200,
                            NULL, '{}', 'req_r4',
                            'evt_refund000000000000000E07', 'evt_refund000000000000000E08');
SELECT results_eq(
    $$SELECT c.outcome, (c.body::json ->> 'amount')::bigint, (c.body::json ->> 'reason'),
             (SELECT amount_refunded FROM charges WHERE id = 'ch_refund0000000000000000A1')
        FROM call_4 c$$,
    $$VALUES ('created'::text, 200::bigint, NULL::text, 500::bigint)$$,
    'A second partial refund is created and amount_refunded is the sum of both.');

-- 5. More than what is left is refused, and nothing is stored.
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-5', sha256('refund-5'), 86400000, 1000,
                            're_refund0000000000000000R5', 'ch_refund0000000000000000A1', 501,
                            NULL, '{}', 'req_r5',
                            'evt_refund000000000000000E09', 'evt_refund000000000000000E10')$$,
                 'PR001', 'amount_too_large',
                 'A refund of more than what is left raises PR001 amount_too_large.');
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-5', sha256('refund-5b'), 86400000, 1000,
                            're_refund0000000000000000R5', 'ch_refund0000000000000000A1', 99999999,
                            NULL, '{}', 'req_r5',
                            'evt_refund000000000000000E09', 'evt_refund000000000000000E10')$$,
                 'PR001', 'amount_too_large',
                 'A refund of more than the whole charge raises PR001 amount_too_large.');
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM refunds), (SELECT count(*) FROM outbox_events),
             (SELECT count(*) FROM idempotency_keys WHERE key = 'rk-5'),
             (SELECT amount_refunded FROM charges WHERE id = 'ch_refund0000000000000000A1')$$,
    $$VALUES (2::bigint, 4::bigint, 0::bigint, 500::bigint)$$,
    'A refused refund stores no refund, event or idempotency key.');

-- 6. No amount: refund what is left.
CREATE TEMP TABLE call_6 AS
SELECT * FROM create_refund('alice', 'rk-6', sha256('refund-6'), 86400000, 1000,
                            're_refund0000000000000000R6', 'ch_refund0000000000000000A1', NULL,
                            'duplicate', '{}', 'req_r6',
                            'evt_refund000000000000000E11', 'evt_refund000000000000000E12');
SELECT results_eq(
    $$SELECT c.outcome, (c.body::json ->> 'amount')::bigint,
             (SELECT amount FROM refunds WHERE id = 're_refund0000000000000000R6')
        FROM call_6 c$$,
    $$VALUES ('created'::text, 500::bigint, 500::bigint)$$,
    'A refund without an amount refunds what is left (1000 - 300 - 200).');
SELECT results_eq(
    $$SELECT amount_refunded, (charge_object(c)::json ->> 'refunded')::boolean,
             (SELECT sum(amount) FROM refunds r WHERE r.charge_id = c.id)::bigint
        FROM charges c WHERE id = 'ch_refund0000000000000000A1'$$,
    $$VALUES (1000::bigint, true, 1000::bigint)$$,
    'The charge is now refunded in full, and amount_refunded is the sum of its refunds.');
SELECT results_eq(
    $$SELECT (data::json ->> 'amount_refunded')::bigint, (data::json ->> 'refunded')::boolean
        FROM outbox_events WHERE id = 'evt_refund000000000000000E12'$$,
    $$VALUES (1000::bigint, true)$$,
    'The last charge.refunded event shows the charge refunded in full.');

-- 7. A fully refunded charge, a failed charge and someone else's charge are refused.
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-7', sha256('refund-7'), 86400000, 1000,
                            're_refund0000000000000000R7', 'ch_refund0000000000000000A1', 1,
                            NULL, '{}', 'req_r7',
                            'evt_refund000000000000000E13', 'evt_refund000000000000000E14')$$,
                 'PR002', 'charge_already_refunded',
                 'Refunding 1 more of a fully refunded charge raises charge_already_refunded.');
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-7', sha256('refund-7'), 86400000, 1000,
                            're_refund0000000000000000R7', 'ch_refund0000000000000000A1', NULL,
                            NULL, '{}', 'req_r7',
                            'evt_refund000000000000000E13', 'evt_refund000000000000000E14')$$,
                 'PR002', 'charge_already_refunded',
                 'Refunding the rest of a fully refunded charge raises charge_already_refunded.');
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-7', sha256('refund-7'), 86400000, 1000,
                            're_refund0000000000000000R7', 'ch_refund0000000000000000F1', 100,
                            NULL, '{}', 'req_r7',
                            'evt_refund000000000000000E13', 'evt_refund000000000000000E14')$$,
                 'PR003', 'charge_failed', 'Refunding a failed charge raises charge_failed.');
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-7', sha256('refund-7'), 86400000, 1000,
                            're_refund0000000000000000R7', 'ch_refund0000000000000000F1', NULL,
                            NULL, '{}', 'req_r7',
                            'evt_refund000000000000000E13', 'evt_refund000000000000000E14')$$,
                 'PR003', 'charge_failed',
                 'Refunding the rest of a failed charge raises charge_failed.');
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-7', sha256('refund-7'), 86400000, 1000,
                            're_refund0000000000000000R7', 'ch_refund0000000000000000B1', 100,
                            NULL, '{}', 'req_r7',
                            'evt_refund000000000000000E13', 'evt_refund000000000000000E14')$$,
                 'PR404', NULL, 'Refunding another user''s charge raises PR404, as if it did not exist.');
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-7', sha256('refund-7'), 86400000, 1000,
                            're_refund0000000000000000R7', 'ch_refund0000000000000000B1', NULL,
                            NULL, '{}', 'req_r7',
                            'evt_refund000000000000000E13', 'evt_refund000000000000000E14')$$,
                 'PR404', NULL, 'Refunding the rest of another user''s charge raises PR404.');
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'rk-7', sha256('refund-7'), 86400000, 1000,
                            're_refund0000000000000000R7', 'ch_refund0000000000000000Z9', 100,
                            NULL, '{}', 'req_r7',
                            'evt_refund000000000000000E13', 'evt_refund000000000000000E14')$$,
                 'PR404', NULL, 'Refunding a charge that does not exist raises PR404.');
SELECT results_eq(
    $$SELECT (SELECT amount_refunded FROM charges WHERE id = 'ch_refund0000000000000000B1'),
             (SELECT amount_refunded FROM charges WHERE id = 'ch_refund0000000000000000F1'),
             (SELECT count(*) FROM idempotency_keys WHERE key = 'rk-7')$$,
    $$VALUES (0::bigint, 0::bigint, 0::bigint)$$,
    'Refused refunds leave the other charges untouched and store no key.');

-- 8. Keys are per user: bob's rk-1 is not alice's.
CREATE TEMP TABLE call_8 AS
SELECT * FROM create_refund('bob', 'rk-1', sha256('refund-bob'), 86400000, 1000,
                            're_refund0000000000000000R8', 'ch_refund0000000000000000B1', 100,
                            'fraudulent', '{}', 'req_r8',
                            'evt_refund000000000000000E15', 'evt_refund000000000000000E16');
SELECT results_eq(
    $$SELECT c.outcome, c.body::json ->> 'currency',
             (SELECT amount_refunded FROM charges WHERE id = 'ch_refund0000000000000000B1')
        FROM call_8 c$$,
    $$VALUES ('created'::text, 'eur'::text, 100::bigint)$$,
    'Another user may use the same key: bob''s refund is created, in his charge''s currency.');

-- 9. An expired key counts as new.
UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
 WHERE user_id = 'alice' AND key = 'rk-4';
CREATE TEMP TABLE call_9 AS
SELECT * FROM create_refund('alice', 'rk-4', sha256('refund-9'), 86400000, 1000,
                            're_refund0000000000000000R9', 'ch_refund0000000000000000C1', 50,
                            NULL, '{}', 'req_r9',
                            'evt_refund000000000000000E17', 'evt_refund000000000000000E18');
SELECT results_eq(
    $$SELECT c.outcome, k.object_id, k.fingerprint = sha256('refund-9')
        FROM call_9 c, idempotency_keys k WHERE k.user_id = 'alice' AND k.key = 'rk-4'$$,
    $$VALUES ('created'::text, 're_refund0000000000000000R9'::text, true)$$,
    'An expired key is replaced, and the new request is created.');

-- 10. idempotency_lookup, the fast path.
SELECT results_eq(
    $$SELECT outcome, status_code, body FROM idempotency_lookup('alice', 'rk-1', sha256('refund-1'))$$,
    $$SELECT 'replayed'::text, 201, body FROM call_1$$,
    'idempotency_lookup answers replayed with the stored response for the same fingerprint.');
SELECT results_eq(
    $$SELECT outcome, status_code, body FROM idempotency_lookup('alice', 'rk-1', sha256('x'))$$,
    $$VALUES ('mismatch'::text, 201, NULL::text)$$,
    'idempotency_lookup answers mismatch, without the body, for another fingerprint.');
SELECT results_eq(
    $$SELECT outcome, status_code, body FROM idempotency_lookup('alice', 'rk-none', sha256('x'))$$,
    $$VALUES (NULL::text, NULL::integer, NULL::text)$$,
    'idempotency_lookup answers NULL for an unknown key.');
UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
 WHERE user_id = 'alice' AND key = 'rk-6';
SELECT is((SELECT outcome FROM idempotency_lookup('alice', 'rk-6', sha256('refund-6'))), NULL,
          'idempotency_lookup answers NULL for an expired key.');
SELECT is((SELECT outcome FROM idempotency_lookup('bob', 'rk-6', sha256('refund-6'))), NULL,
          'idempotency_lookup never answers with another user''s key.');

-- Everything create_refund wrote satisfies the deferred checks: run them now, as at commit.
SELECT lives_ok('SET CONSTRAINTS ALL IMMEDIATE',
                'The refunds written by create_refund pass the deferred sum checks.');

-- ---------------------------------------------------------------------------------------------
-- The database itself refuses an over-refund and any amount_refunded that is not the sum of the
-- refunds. Constraints stay IMMEDIATE from here, so each check fires at the end of its statement.
-- Each change runs through pg_temp.undo, which undoes a change the database accepted (and
-- then fails with P0001), so a missing check fails one test and leaves the fixtures intact.
-- ch_C1: amount 1000, one refund R9 of 50, amount_refunded 50. ch_D1: amount 1000, no refunds.

CREATE FUNCTION pg_temp.undo(p_sql text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE p_sql;
    RAISE EXCEPTION 'the database accepted: %', p_sql;
END
$$;

SELECT throws_ok($$SELECT pg_temp.undo($q$UPDATE charges SET amount_refunded = amount + 1
                                           WHERE id = 'ch_refund0000000000000000C1'$q$)$$,
                 '23514', 'new row for relation "charges" violates check constraint "charges_refund_bounds"',
                 'Setting amount_refunded above the amount is refused by a CHECK.');
SELECT throws_ok($$SELECT pg_temp.undo($q$UPDATE charges SET amount_refunded = amount + 1
                                           WHERE id = 'ch_refund0000000000000000A1'$q$)$$,
                 '23514', 'new row for relation "charges" violates check constraint "charges_refund_bounds"',
                 'Refunding a fully refunded charge once more is refused by a CHECK.');
SELECT throws_ok($$SELECT pg_temp.undo($q$WITH c AS (UPDATE charges SET amount_refunded = amount_refunded + 951
                                                      WHERE id = 'ch_refund0000000000000000C1')
                                          INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                                          VALUES ('re_refund0000000000000000T1', 'alice',
                                                  'ch_refund0000000000000000C1', 951, 'usd')$q$)$$,
                 '23514', 'new row for relation "charges" violates check constraint "charges_refund_bounds"',
                 'A refund and a matching amount_refunded that together exceed the amount are refused.');
SELECT throws_ok($$SELECT pg_temp.undo($q$UPDATE charges SET amount_refunded = 60
                                           WHERE id = 'ch_refund0000000000000000C1'$q$)$$,
                 '23514', NULL,
                 'Raising amount_refunded without a refund is refused: it no longer matches the sum.');
SELECT throws_ok($$SELECT pg_temp.undo($q$UPDATE charges SET amount_refunded = 0
                                           WHERE id = 'ch_refund0000000000000000C1'$q$)$$,
                 '23514', NULL, 'Lowering amount_refunded below the sum of the refunds is refused.');
SELECT throws_ok($$SELECT pg_temp.undo($q$INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                                          VALUES ('re_refund0000000000000000T1', 'alice',
                                                  'ch_refund0000000000000000C1', 10, 'usd')$q$)$$,
                 '23514', NULL,
                 'Inserting a refund without raising amount_refunded is refused: the sum no longer matches.');
SELECT throws_ok($$SELECT pg_temp.undo($q$UPDATE refunds SET amount = amount + 1
                                           WHERE id = 're_refund0000000000000000R9'$q$)$$,
                 '23514', NULL, 'Changing the amount of a stored refund is refused.');
SELECT throws_ok($$SELECT pg_temp.undo($q$DELETE FROM refunds WHERE id = 're_refund0000000000000000R9'$q$)$$,
                 '23514', NULL,
                 'Deleting a refund is refused: amount_refunded would no longer be the sum of the refunds.');
SELECT throws_ok($$SELECT pg_temp.undo($q$WITH c AS (UPDATE charges SET amount_refunded = amount_refunded + 50
                                                      WHERE id = 'ch_refund0000000000000000D1')
                                          UPDATE refunds SET charge_id = 'ch_refund0000000000000000D1'
                                           WHERE id = 're_refund0000000000000000R9'$q$)$$,
                 '23514', NULL,
                 'Moving a refund to another charge is refused: the first charge''s sum no longer matches.');
SELECT throws_ok($$SELECT pg_temp.undo($q$INSERT INTO charges (id, user_id, amount, currency, source, status,
                                                             amount_refunded)
                                          VALUES ('ch_refund0000000000000000X1', 'alice', 1000, 'usd',
                                                  'tok_visa', 'succeeded', 400)$q$)$$,
                 '23514', NULL, 'A new charge that claims refunds it does not have is refused.');
SELECT results_eq(
    $$SELECT c.id, c.amount_refunded, (SELECT coalesce(sum(amount), 0) FROM refunds r WHERE r.charge_id = c.id)::bigint
        FROM charges c WHERE c.id IN ('ch_refund0000000000000000C1', 'ch_refund0000000000000000D1') ORDER BY c.id$$,
    $$VALUES ('ch_refund0000000000000000C1'::text, 50::bigint, 50::bigint),
             ('ch_refund0000000000000000D1'::text, 0::bigint, 0::bigint)$$,
    'Every refused change left ch_C1 and ch_D1 as they were.');
SELECT lives_ok($$WITH c AS (UPDATE charges SET amount_refunded = amount_refunded + 950
                              WHERE id = 'ch_refund0000000000000000C1')
                  INSERT INTO refunds (id, user_id, charge_id, amount, currency)
                  VALUES ('re_refund0000000000000000T2', 'alice', 'ch_refund0000000000000000C1', 950, 'usd')$$,
                'A refund together with the matching amount_refunded, up to the amount, is accepted.');
SELECT results_eq(
    $$SELECT amount_refunded, (SELECT sum(amount) FROM refunds r WHERE r.charge_id = c.id)::bigint
        FROM charges c WHERE id = 'ch_refund0000000000000000C1'$$,
    $$VALUES (1000::bigint, 1000::bigint)$$,
    'ch_C1 is then refunded in full, exactly by its refunds.');

-- Deferred (the default), the refund and the charge update may come in either order.
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO refunds (id, user_id, charge_id, amount, currency)
VALUES ('re_refund0000000000000000T3', 'alice', 'ch_refund0000000000000000D1', 250, 'usd');
UPDATE charges SET amount_refunded = 250 WHERE id = 'ch_refund0000000000000000D1';
SELECT lives_ok('SET CONSTRAINTS ALL IMMEDIATE',
                'Deferred, a refund inserted before its charge update passes the checks at commit.');
SET CONSTRAINTS ALL DEFERRED;
UPDATE charges SET amount_refunded = 300 WHERE id = 'ch_refund0000000000000000D1';
SELECT throws_ok('SET CONSTRAINTS ALL IMMEDIATE', '23514', NULL,
                 'Deferred, an amount_refunded left unmatched by refunds fails when the checks run.');
UPDATE charges SET amount_refunded = 250 WHERE id = 'ch_refund0000000000000000D1';

-- ---------------------------------------------------------------------------------------------
-- list_page: newest first by (created, id), keyset cursors in both directions, filters.
-- lister's charges: L1 at :00, L2 and L3 both at :01 (L3 first, by id), L4 at :02, L5 at :03.

INSERT INTO charges (id, user_id, amount, currency, source, status, created)
VALUES ('ch_list000000000000000000L1', 'lister', 100, 'usd', 'tok_visa', 'succeeded', '2024-01-01 00:00:00+00'),
       ('ch_list000000000000000000L2', 'lister', 100, 'usd', 'tok_visa', 'succeeded', '2024-01-01 00:00:01+00'),
       ('ch_list000000000000000000L3', 'lister', 100, 'usd', 'tok_visa', 'succeeded', '2024-01-01 00:00:01+00'),
       ('ch_list000000000000000000L4', 'lister', 100, 'usd', 'tok_visa', 'succeeded', '2024-01-01 00:00:02+00'),
       ('ch_list000000000000000000L5', 'lister', 100, 'usd', 'tok_visa', 'succeeded', '2024-01-01 00:00:03+00'),
       ('ch_list000000000000000000O1', 'other', 100, 'usd', 'tok_visa', 'succeeded', '2024-01-01 00:00:02.5+00');

-- One page as 'tag,tag,... [+more]', each tag being the last two characters of an id.
CREATE FUNCTION pg_temp.page(p_kind text, p_user text, p_limit integer, p_after text, p_before text,
                             p_gte timestamptz DEFAULT NULL, p_lt timestamptz DEFAULT NULL,
                             p_col text DEFAULT NULL, p_val text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
    SELECT coalesce((SELECT string_agg(right(e ->> 'id', 2), ',' ORDER BY n)
                       FROM json_array_elements(l.data::json) WITH ORDINALITY AS x(e, n)), '')
           || CASE WHEN l.has_more THEN ' +more' ELSE '' END
      FROM list_page(p_kind, p_user, p_limit, p_after, p_before, p_gte, p_lt, p_col, p_val) l
$$;

SELECT is(pg_temp.page('charges', 'lister', 2, NULL, NULL), 'L5,L4 +more',
          'The first page holds the newest charges, and has_more says more follow.');
SELECT is(pg_temp.page('charges', 'lister', 2, 'ch_list000000000000000000L4', NULL), 'L3,L2 +more',
          'starting_after continues with the next older charges; equal created times go by id, descending.');
SELECT is(pg_temp.page('charges', 'lister', 2, 'ch_list000000000000000000L3', NULL), 'L2,L1',
          'starting_after a charge that shares its created time with the next still finds that next one.');
SELECT is(pg_temp.page('charges', 'lister', 2, 'ch_list000000000000000000L1', NULL), '',
          'starting_after the oldest charge gives an empty page without has_more.');
SELECT is((SELECT data FROM list_page('charges', 'lister', 2, 'ch_list000000000000000000L1', NULL,
                                      NULL, NULL, NULL, NULL)), '[]',
          'An empty page is the empty JSON array.');
SELECT is(pg_temp.page('charges', 'lister', 2, NULL, 'ch_list000000000000000000L1'), 'L3,L2 +more',
          'ending_before gives the page just newer than the cursor, still newest first, with has_more.');
SELECT is(pg_temp.page('charges', 'lister', 2, NULL, 'ch_list000000000000000000L2'), 'L4,L3 +more',
          'ending_before a charge finds the charge with the same created time and a greater id.');
SELECT is(pg_temp.page('charges', 'lister', 10, NULL, 'ch_list000000000000000000L3'), 'L5,L4',
          'ending_before near the top gives the rest without has_more.');
SELECT is(pg_temp.page('charges', 'lister', 2, NULL, 'ch_list000000000000000000L5'), '',
          'ending_before the newest charge gives an empty page.');
SELECT is(pg_temp.page('charges', 'lister', 5, NULL, NULL), 'L5,L4,L3,L2,L1',
          'A limit equal to the number of charges returns them all without has_more.');
SELECT is(pg_temp.page('charges', 'lister', 4, NULL, NULL), 'L5,L4,L3,L2 +more',
          'A limit one short of the number of charges sets has_more.');
SELECT is(pg_temp.page('charges', 'other', 100, NULL, NULL), 'O1',
          'A user''s list holds only that user''s charges.');
SELECT is(pg_temp.page('charges', 'lister', 10, NULL, NULL, '2024-01-01 00:00:01+00'), 'L5,L4,L3,L2',
          'created >= is inclusive.');
SELECT is(pg_temp.page('charges', 'lister', 10, NULL, NULL, NULL, '2024-01-01 00:00:02+00'), 'L3,L2,L1',
          'created < is exclusive.');
SELECT is(pg_temp.page('charges', 'lister', 10, NULL, NULL, '2024-01-01 00:00:01+00',
                       '2024-01-01 00:00:02+00'), 'L3,L2',
          'Both created filters together select a range.');
SELECT is(pg_temp.page('charges', 'lister', 1, 'ch_list000000000000000000L3', NULL,
                       '2024-01-01 00:00:01+00'), 'L2',
          'A cursor and a created filter combine, and has_more respects the filter.');
SELECT is((SELECT (data::json -> 0)::text FROM list_page('charges', 'lister', 1, NULL, NULL,
                                                         NULL, NULL, NULL, NULL)),
          (SELECT charge_object(c)::text FROM charges c WHERE c.id = 'ch_list000000000000000000L5'),
          'Each element of a charges page is the charge object.');
SELECT throws_ok($$SELECT * FROM list_page('charges', 'lister', 2, 'ch_list000000000000000000O1', NULL,
                                           NULL, NULL, NULL, NULL)$$,
                 'PR011', 'starting_after', 'starting_after another user''s charge raises PR011 starting_after.');
SELECT throws_ok($$SELECT * FROM list_page('charges', 'lister', 2, NULL, 'ch_list000000000000000000O1',
                                           NULL, NULL, NULL, NULL)$$,
                 'PR012', 'ending_before', 'ending_before another user''s charge raises PR012 ending_before.');
SELECT throws_ok($$SELECT * FROM list_page('charges', 'lister', 2, 'ch_list000000000000000000Z9', NULL,
                                           NULL, NULL, NULL, NULL)$$,
                 'PR011', 'starting_after', 'starting_after an unknown id raises PR011 starting_after.');
SELECT throws_ok($$SELECT * FROM list_page('charges', 'alice', 2, 're_refund0000000000000000R1', NULL,
                                           NULL, NULL, NULL, NULL)$$,
                 'PR011', 'starting_after', 'A refund id is no cursor for the charges list.');
SELECT throws_ok($$SELECT * FROM list_page('api_keys', 'lister', 2, NULL, NULL, NULL, NULL, NULL, NULL)$$,
                 'P0001', 'unknown list api_keys', 'list_page lists only charges, refunds and events.');
SELECT throws_ok($$SELECT * FROM list_page('charges', 'lister', 2, NULL, NULL, NULL, NULL, 'user_id', 'other')$$,
                 'P0001', 'unknown filter user_id',
                 'list_page filters only on the columns it knows, so a filter cannot widen the user''s scope.');

-- Refunds by charge and events by type. alice's refunds of A1 all share created = now(), so
-- they come by id, descending.
SELECT is(pg_temp.page('refunds', 'alice', 10, NULL, NULL, NULL, NULL, 'charge_id',
                       'ch_refund0000000000000000A1'), 'R6,R4,R1',
          'Refunds filtered by charge are that charge''s refunds, newest first.');
SELECT is(pg_temp.page('refunds', 'alice', 2, 're_refund0000000000000000R6', NULL, NULL, NULL,
                       'charge_id', 'ch_refund0000000000000000A1'), 'R4,R1',
          'A refunds cursor works with the charge filter.');
SELECT is(pg_temp.page('refunds', 'alice', 10, NULL, NULL, NULL, NULL, 'charge_id',
                       'ch_refund0000000000000000B1'), '',
          'Filtering alice''s refunds by bob''s charge finds nothing.');
SELECT is(pg_temp.page('refunds', 'bob', 10, NULL, NULL), 'R8', 'bob''s refunds list holds only his refund.');
SELECT is((SELECT (data::json -> 0)::text FROM list_page('refunds', 'bob', 1, NULL, NULL,
                                                         NULL, NULL, NULL, NULL)),
          (SELECT refund_object(r)::text FROM refunds r WHERE r.id = 're_refund0000000000000000R8'),
          'Each element of a refunds page is the refund object.');
SELECT is(pg_temp.page('events', 'alice', 10, NULL, NULL, NULL, NULL, 'type', 'refund.created'),
          '17,11,07,01', 'Events filtered by type are the user''s events of that type, newest first.');
SELECT is(pg_temp.page('events', 'bob', 10, NULL, NULL), '16,15', 'bob sees only his own events.');
SELECT is((SELECT (data::json -> 0)::text FROM list_page('events', 'bob', 1, NULL, NULL,
                                                         NULL, NULL, NULL, NULL)),
          (SELECT event_object(e)::text FROM outbox_events e WHERE e.id = 'evt_refund000000000000000E16'),
          'Each element of an events page is the event object the relay sends.');
SELECT throws_ok($$SELECT * FROM list_page('events', 'alice', 2, NULL, 'evt_refund000000000000000E16',
                                           NULL, NULL, NULL, NULL)$$,
                 'PR012', 'ending_before', 'An events cursor of another user raises PR012 ending_before.');

SELECT * FROM finish();
ROLLBACK;

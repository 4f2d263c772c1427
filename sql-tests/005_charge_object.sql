-- 005_charge_object: charge_object renders a stored charge exactly as the API shows it.
BEGIN;
SELECT plan(12);

INSERT INTO charges (id, user_id, amount, currency, source, description, metadata, status,
                     failure_code, decline_code, amount_refunded, created)
VALUES ('ch_000000000000000000000001', 'alice', 5000, 'usd', 'tok_visa', 'Order "7" ✓',
        '{"z":"1","a":"2"}', 'succeeded', NULL, NULL, 0, '2024-01-01 00:00:00+00'),
       ('ch_000000000000000000000002', 'alice', 5000, 'usd', 'tok_visa', NULL,
        '{}', 'succeeded', NULL, NULL, 5000, '2024-01-01 00:00:00+00'),
       ('ch_000000000000000000000003', 'alice', 2500, 'eur', 'tok_chargeDeclined', NULL,
        '{}', 'failed', 'card_declined', 'generic_decline', 0, '2024-01-01 00:00:00+00'),
       ('ch_000000000000000000000004', 'alice', 100, 'usd', 'tok_visa', NULL,
        '{}', 'succeeded', NULL, NULL, 0, '2024-01-01 00:00:00.6+00'),
       ('ch_000000000000000000000005', 'alice', 100, 'usd', 'tok_visa', NULL,
        '{}', 'succeeded', NULL, NULL, 0, '2024-01-01 00:00:00.4+00');

SELECT is((SELECT charge_object(c)::text FROM charges c WHERE id = 'ch_000000000000000000000001'),
          '{"id":"ch_000000000000000000000001","object":"charge","amount":5000,"currency":"usd",'
          '"status":"succeeded","source":"tok_visa","description":"Order \"7\" ✓",'
          '"metadata":{"z":"1","a":"2"},"amount_refunded":0,"refunded":false,'
          '"captured":true,"amount_captured":5000,"released_at":null,"release_reason":null,'
          '"failure_code":null,"decline_code":null,"created":1704067200}',
          'A succeeded charge renders as compact JSON with every field in the fixed order.');
SELECT is((SELECT array_agg(k ORDER BY n)
             FROM charges c, json_object_keys(charge_object(c)) WITH ORDINALITY AS o(k, n)
            WHERE c.id = 'ch_000000000000000000000002'),
          ARRAY['id', 'object', 'amount', 'currency', 'status', 'source', 'description',
                'metadata', 'amount_refunded', 'refunded', 'captured', 'amount_captured',
                'released_at', 'release_reason', 'failure_code', 'decline_code', 'created'],
          'The charge object has exactly the documented keys, in order.');
SELECT is((SELECT charge_object(c) ->> 'object' FROM charges c WHERE id = 'ch_000000000000000000000001'),
          'charge', 'The object field is "charge".');
SELECT is((SELECT json_typeof(charge_object(c) -> 'amount') FROM charges c
            WHERE id = 'ch_000000000000000000000001'),
          'number', 'The amount is a JSON number, not a string.');
SELECT is((SELECT (charge_object(c) -> 'metadata')::text FROM charges c
            WHERE id = 'ch_000000000000000000000001'),
          '{"z":"1","a":"2"}', 'Metadata is rendered as stored, keeping the client''s key order.');
SELECT is((SELECT json_typeof(charge_object(c) -> 'description') FROM charges c
            WHERE id = 'ch_000000000000000000000002'),
          'null', 'A missing description renders as null.');
SELECT is((SELECT charge_object(c) ->> 'refunded' FROM charges c WHERE id = 'ch_000000000000000000000001'),
          'false', 'A charge with nothing refunded is not refunded.');
SELECT is((SELECT charge_object(c) ->> 'refunded' FROM charges c WHERE id = 'ch_000000000000000000000002'),
          'true', 'A charge refunded in full is refunded.');
SELECT results_eq(
    $$SELECT charge_object(c) ->> 'status', charge_object(c) ->> 'failure_code',
             charge_object(c) ->> 'decline_code'
        FROM charges c WHERE id = 'ch_000000000000000000000003'$$,
    $$VALUES ('failed', 'card_declined', 'generic_decline')$$,
    'A failed charge renders its status, failure code and decline code.');
SELECT is((SELECT json_typeof(charge_object(c) -> 'created') FROM charges c
            WHERE id = 'ch_000000000000000000000001'),
          'number', 'created is a Unix timestamp number.');
SELECT is((SELECT (charge_object(c) ->> 'created')::bigint FROM charges c
            WHERE id = 'ch_000000000000000000000005'),
          1704067200::bigint, 'created at 00:00:00.4 renders as the second it falls in.');
-- Unix timestamps count whole elapsed seconds: a charge made at 00:00:00.6 was made
-- in second 1704067200, and list filters (created[lt] = to_timestamp(n)) assume so.
SELECT is((SELECT (charge_object(c) ->> 'created')::bigint FROM charges c
            WHERE id = 'ch_000000000000000000000004'),
          1704067200::bigint, 'created at 00:00:00.6 renders as the second it falls in, not the next one.');

SELECT * FROM finish();
ROLLBACK;

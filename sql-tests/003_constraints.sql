-- 003_constraints: CHECK, UNIQUE, NOT NULL and FOREIGN KEY constraints of 0001_charges.sql refuse bad rows.
BEGIN;
SELECT plan(49);

-- A valid charge the other rows can refer to.
INSERT INTO charges (id, user_id, amount, currency, source, status)
VALUES ('ch_000000000000000000000001', 'alice', 5000, 'usd', 'tok_visa', 'succeeded');

-- Which columns carry CHECK constraints.
SELECT col_has_check('api_keys', 'id', 'api_keys.id has a CHECK on its format.');
SELECT col_has_check('api_keys', 'user_id', 'api_keys.user_id has a CHECK on its format.');
SELECT col_has_check('api_keys', 'secret_hash', 'api_keys.secret_hash has a CHECK on its length.');
-- Since 0050 each of charges, idempotency_keys and outbox_events keeps its rules in one
-- CHECK calling an IMMUTABLE function over the columns it checks (a CHECK per rule was
-- read back and prepared at every INSERT); each refusal below still names its rule.
SELECT col_has_check('charges', ARRAY['id', 'user_id', 'amount', 'currency', 'source', 'description', 'status',
                                      'failure_code', 'amount_refunded', 'captured', 'amount_captured',
                                      'released_at', 'release_reason'],
    'charges has a CHECK over its id, user, amount, currency, source, description, status and money columns.');
SELECT col_has_check('charges', 'status', 'charges.status has a CHECK of its own on its values.');
SELECT col_has_check('idempotency_keys', ARRAY['key', 'fingerprint', 'status_code'],
    'idempotency_keys has a CHECK over its key, fingerprint and status_code.');
SELECT col_has_check('outbox_events', ARRAY['id', 'type'], 'outbox_events has a CHECK over its id and type.');
SELECT is((SELECT array_agg(conname::text ORDER BY conname) FROM pg_constraint
            WHERE conname IN ('charges_row_check', 'idempotency_keys_row_check', 'outbox_events_row_check')
              AND convalidated),
          ARRAY['charges_row_check', 'idempotency_keys_row_check', 'outbox_events_row_check'],
          'The three row checks exist and are validated.');
SELECT is((SELECT count(*)::int FROM pg_constraint
            WHERE contype = 'c'
              AND conrelid IN ('charges'::regclass, 'idempotency_keys'::regclass, 'outbox_events'::regclass)),
          5, 'No other CHECK is read back at each insert: the three row checks, charges_status_check and via_processor''s.');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.proname IN ('charges_row_valid', 'idempotency_keys_row_valid', 'outbox_events_row_valid')
              AND p.provolatile = 'i' AND NOT has_function_privilege('public', p.oid, 'EXECUTE')),
          ARRAY['charges_row_valid', 'idempotency_keys_row_valid', 'outbox_events_row_valid'],
          'The row check functions are IMMUTABLE and not executable by PUBLIC.');

-- charges: amount bounds.
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', 0, 'usd', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_amount_check"',
                 'A charge of amount 0 is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', -1, 'usd', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_amount_check"',
                 'A charge of a negative amount is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', 100000000, 'usd', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_amount_check"',
                 'A charge of amount 100000000 is refused.');
SELECT lives_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                  VALUES ('ch_000000000000000000000003', 'alice', 1, 'usd', 'tok_visa', 'succeeded'),
                         ('ch_000000000000000000000004', 'alice', 99999999, 'usd', 'tok_visa', 'succeeded')$$,
                'Charges of amount 1 and 99999999 are accepted.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', NULL, 'usd', 'tok_visa', 'succeeded')$$,
                 '23502', NULL, 'A charge without an amount is refused.');

-- charges: refunds stay within the amount.
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, amount_refunded)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usd', 'tok_visa', 'succeeded', 5001)$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_refund_bounds"',
                 'A charge with amount_refunded greater than amount is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, amount_refunded)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usd', 'tok_visa', 'succeeded', -1)$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_refund_bounds"',
                 'A charge with a negative amount_refunded is refused.');
SELECT lives_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, amount_refunded)
                  VALUES ('ch_000000000000000000000005', 'alice', 5000, 'usd', 'tok_visa', 'succeeded', 5000)$$,
                'A charge refunded in full is accepted.');

-- charges: currency, ids, user ids, source and description.
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'USD', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_currency_check"',
                 'An uppercase currency is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usdd', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_currency_check"',
                 'A four-letter currency is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'us', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_currency_check"',
                 'A two-letter currency is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_00000000000000000000002', 'alice', 5000, 'usd', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_id_check"',
                 'A charge id with 23 random characters is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('py_000000000000000000000002', 'alice', 5000, 'usd', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_id_check"',
                 'A charge id with the wrong prefix is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_00000000000000000000000-', 'alice', 5000, 'usd', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_id_check"',
                 'A charge id with a non-base62 character is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'al ice', 5000, 'usd', 'tok_visa', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_user_id_check"',
                 'A user id with a space is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usd', '', 'succeeded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_source_check"',
                 'An empty source is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, description)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usd', 'tok_visa', 'succeeded',
                           repeat('é', 1001))$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_description_check"',
                 'A description of 1001 characters is refused.');
SELECT lives_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, description)
                  VALUES ('ch_000000000000000000000006', 'alice', 5000, 'usd', 'tok_visa', 'succeeded',
                          repeat('é', 1000))$$,
                'A description of 1000 two-byte characters is accepted: the limit counts characters.');

-- charges: status and failure codes agree.
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usd', 'tok_visa', 'refunded')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_status_check"',
                 'A status other than succeeded, failed or pending (0060, processor mode) is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usd', 'tok_chargeDeclined', 'failed')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_failure_consistent"',
                 'A failed charge without a failure code is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, failure_code)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usd', 'tok_visa', 'succeeded', 'card_declined')$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_failure_consistent"',
                 'A succeeded charge with a failure code is refused.');
SELECT throws_ok($$INSERT INTO charges (id, user_id, amount, currency, source, status, failure_code, amount_refunded)
                   VALUES ('ch_000000000000000000000002', 'alice', 5000, 'usd', 'tok_chargeDeclined', 'failed',
                           'card_declined', 1)$$,
                 '23514',
                 'new row for relation "charges" violates check constraint "charges_failed_not_refunded"',
                 'A failed charge with a refunded amount is refused.');

-- api_keys.
SELECT throws_ok($$INSERT INTO api_keys (id, user_id, secret_hash)
                   VALUES ('short', 'alice', decode(repeat('00', 32), 'hex'))$$,
                 '23514',
                 'new row for relation "api_keys" violates check constraint "api_keys_id_check"',
                 'An API key id that is not 12 base62 characters is refused.');
SELECT throws_ok($$INSERT INTO api_keys (id, user_id, secret_hash)
                   VALUES ('ABCDEF123456', 'alice', decode(repeat('00', 31), 'hex'))$$,
                 '23514',
                 'new row for relation "api_keys" violates check constraint "api_keys_secret_hash_check"',
                 'An API key hash that is not 32 bytes is refused.');
SELECT throws_ok($$INSERT INTO api_keys (id, user_id, secret_hash)
                   VALUES ('ABCDEF123456', repeat('u', 65), decode(repeat('00', 32), 'hex'))$$,
                 '23514',
                 'new row for relation "api_keys" violates check constraint "api_keys_user_id_check"',
                 'A user id of 65 characters is refused.');

-- idempotency_keys.
SELECT throws_ok($$INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, expires_at)
                   VALUES ('alice', '', sha256('x'), 201, '{}', now() + interval '1 day')$$,
                 '23514',
                 'new row for relation "idempotency_keys" violates check constraint "idempotency_keys_key_check"',
                 'An empty idempotency key is refused.');
SELECT throws_ok($$INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, expires_at)
                   VALUES ('alice', repeat('k', 256), sha256('x'), 201, '{}', now() + interval '1 day')$$,
                 '23514',
                 'new row for relation "idempotency_keys" violates check constraint "idempotency_keys_key_check"',
                 'An idempotency key of 256 characters is refused.');
SELECT throws_ok($$INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, expires_at)
                   VALUES ('alice', 'k1', '\x00'::bytea, 201, '{}', now() + interval '1 day')$$,
                 '23514',
                 'new row for relation "idempotency_keys" violates check constraint "idempotency_keys_fingerprint_check"',
                 'A fingerprint that is not 32 bytes is refused.');
SELECT throws_ok($$INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, expires_at)
                   VALUES ('alice', 'k1', sha256('x'), 500, '{}', now() + interval '1 day')$$,
                 '23514',
                 'new row for relation "idempotency_keys" violates check constraint "idempotency_keys_status_code_check"',
                 'A stored 500 response is refused: server errors are never replayed.');
SELECT lives_ok($$INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, expires_at)
                  VALUES ('alice', 'k1', sha256('x'), 201, '{}', now() + interval '1 day'),
                         ('bob', 'k1', sha256('x'), 201, '{}', now() + interval '1 day')$$,
                'Two users may use the same idempotency key.');
SELECT throws_ok($$INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, expires_at)
                   VALUES ('alice', 'k1', sha256('y'), 201, '{}', now() + interval '1 day')$$,
                 '23505', 'duplicate key value violates unique constraint "idempotency_keys_pkey"',
                 'One user cannot store the same idempotency key twice.');
SELECT throws_ok($$INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body)
                   VALUES ('alice', 'k2', sha256('x'), 201, '{}')$$,
                 '23502', NULL, 'An idempotency key without expires_at is refused.');

-- outbox_events.
SELECT lives_ok($$INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
                  VALUES ('evt_000000000000000000000001', 'alice', 'charge.succeeded',
                          'ch_000000000000000000000001', 'ch_000000000000000000000001', '{}')$$,
                'An event of an existing charge is accepted.');
SELECT throws_ok($$INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
                   VALUES ('evt_000000000000000000000001', 'alice', 'charge.failed',
                           'ch_000000000000000000000001', 'ch_000000000000000000000001', '{}')$$,
                 '23505', 'duplicate key value violates unique constraint "outbox_events_id_key"',
                 'Two events with one id are refused.');
SELECT throws_ok($$INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
                   VALUES ('evt_000000000000000000000002', 'alice', 'charge.succeeded',
                           'ch_999999999999999999999999', 'ch_999999999999999999999999', '{}')$$,
                 '23503',
                 'insert or update on table "outbox_events" violates foreign key constraint "outbox_events_charge_id_fkey"',
                 'An event of a charge that does not exist is refused.');
SELECT throws_ok($$DELETE FROM charges WHERE id = 'ch_000000000000000000000001'$$,
                 '23503',
                 'update or delete on table "charges" violates foreign key constraint "outbox_events_charge_id_fkey" on table "outbox_events"',
                 'A charge with events cannot be deleted.');
SELECT throws_ok($$INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
                   VALUES ('ev_000000000000000000000002', 'alice', 'charge.succeeded',
                           'ch_000000000000000000000001', 'ch_000000000000000000000001', '{}')$$,
                 '23514',
                 'new row for relation "outbox_events" violates check constraint "outbox_events_id_check"',
                 'An event id with the wrong prefix is refused.');
SELECT throws_ok($$INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
                   VALUES ('evt_000000000000000000000002', 'alice', 'ChargeSucceeded',
                           'ch_000000000000000000000001', 'ch_000000000000000000000001', '{}')$$,
                 '23514',
                 'new row for relation "outbox_events" violates check constraint "outbox_events_type_check"',
                 'An event type that is not resource.action is refused.');
SELECT throws_ok($$INSERT INTO outbox_events (id, user_id, type, object_id, charge_id)
                   VALUES ('evt_000000000000000000000002', 'alice', 'charge.succeeded',
                           'ch_000000000000000000000001', 'ch_000000000000000000000001')$$,
                 '23502', NULL, 'An event without data is refused.');

SELECT * FROM finish();
ROLLBACK;

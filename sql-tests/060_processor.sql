-- 060_processor: migrations 0060-0063 and processor mode's functions: the pending create, the
-- claim's leases, the one outcome per charge, the review flag, and the refusals of a pending charge.
BEGIN;
SELECT plan(33);

-- The schema.
SELECT col_type_is('charges', 'processor_ref', 'text', 'charges.processor_ref is text.');
SELECT col_type_is('charges', 'review_required_at', 'timestamp with time zone',
                   'charges.review_required_at is timestamptz.');
SELECT col_is_null('charges', 'via_processor',
                   'charges.via_processor is nullable: create_charge() leaves it NULL.');
SELECT ok((SELECT convalidated FROM pg_constraint WHERE conname = 'charges_status_check'),
          'The widened status check is validated (0061).');
SELECT has_index('processor_jobs', 'processor_jobs_due_idx', ARRAY['next_attempt_at'],
                 'processor_jobs_due_idx serves the claim.');
SELECT has_index('charges', 'charges_via_processor_created_idx', ARRAY['created'],
                 'charges_via_processor_created_idx serves reconcile.');
SELECT is((SELECT pg_get_expr(indpred, indrelid) FROM pg_index
            WHERE indexrelid = 'charges_via_processor_created_idx'::regclass),
          'via_processor', 'It holds only the charges made in processor mode.');

-- create_charge_pending: a pending charge, its job and a charge.pending event, in one call.
SELECT is((SELECT outcome || ' ' || status_code || ' ' || (body::json->>'status')
             FROM create_charge_pending('alice', 'k-p1', decode(repeat('ab', 32), 'hex'), 3600000,
                                        1000, 'ch_proc00000000000000000001', 'evt_proc00000000000000000001',
                                        1500, 'usd', 'tok_visa', NULL, '{}', 'req_1')),
          'created 201 pending', 'create_charge_pending answers 201 with the pending charge.');
SELECT is((SELECT status || ' ' || captured || ' ' || amount_captured || ' ' || via_processor
             FROM charges WHERE id = 'ch_proc00000000000000000001'),
          'pending false 0 true', 'The charge is stored pending, uncaptured, via the processor.');
SELECT is((SELECT count(*)::int FROM processor_jobs WHERE charge_id = 'ch_proc00000000000000000001'),
          1, 'Its processor job is written in the same transaction.');
SELECT is((SELECT type FROM outbox_events WHERE charge_id = 'ch_proc00000000000000000001'),
          'charge.pending', 'Its one event is charge.pending.');
SELECT is((SELECT outcome FROM create_charge_pending('alice', 'k-p1', decode(repeat('ab', 32), 'hex'),
                                   3600000, 1000, 'ch_proc00000000000000000009',
                                   'evt_proc00000000000000000009', 1500, 'usd', 'tok_visa', NULL, '{}',
                                   'req_2')),
          'replayed', 'The same key and fingerprint replay the stored answer.');
SELECT is((SELECT count(*)::int FROM charges WHERE id = 'ch_proc00000000000000000009'), 0,
          'A replay writes no charge.');

-- processor_claim: a lease, then nothing until it runs out.
SELECT is((SELECT charge_id || ' ' || attempts FROM processor_claim(10, 60000)),
          'ch_proc00000000000000000001 1', 'A due job is claimed, as its first attempt.');
SELECT is((SELECT count(*)::int FROM processor_claim(10, 60000)), 0,
          'A leased job is not claimed again.');
UPDATE processor_jobs SET next_attempt_at = now() - interval '1 s';
SELECT is((SELECT attempts FROM processor_claim(10, 60000)), 2,
          'Once the lease has run out, it is claimed again, as the next attempt.');

-- An update of a pending charge (POST /v1/charges/{id}) changes ours, with a charge.updated
-- event, but not what the processor is sent: a retry under the same key is the same request (0063).
SELECT is((SELECT outcome || ' ' || status_code || ' ' || (body::json->>'status')
             FROM update_charge('alice', 'k-u1', decode(repeat('12', 32), 'hex'), 3600000, 1000,
                                'ch_proc00000000000000000001', 'changed', '{"order":"7"}', 50,
                                'evt_proc0000000000000000000u', 'req_u')),
          'created 200 pending', 'A pending charge can be updated; it stays pending.');
SELECT is((SELECT description || ' ' || (metadata::json->>'order') FROM charges
            WHERE id = 'ch_proc00000000000000000001'),
          'changed 7', 'The charge has the new description and metadata.');
SELECT is((SELECT count(*)::int FROM outbox_events WHERE charge_id = 'ch_proc00000000000000000001'
             AND type = 'charge.updated'), 1, 'One charge.updated event.');
UPDATE processor_jobs SET next_attempt_at = now() - interval '1 s';
SELECT is((SELECT coalesce(description, 'null') || ' ' || metadata || ' ' || attempts
             FROM processor_claim(10, 60000)),
          'null {} 3', 'The processor is still sent the description and metadata as created.');

-- Refunds and captures of a pending charge: PR061.
SELECT throws_ok($$SELECT * FROM create_refund('alice', 'k-r1', decode(repeat('cd', 32), 'hex'),
                                               3600000, 1000, 're_proc00000000000000000001',
                                               'ch_proc00000000000000000001', NULL, NULL, '{}',
                                               'req_3', 'evt_proc00000000000000000002',
                                               'evt_proc00000000000000000003')$$,
                 'PR061', NULL, 'A refund of a pending charge is refused with PR061.');
SELECT throws_ok($$SELECT * FROM capture_charge('alice', 'k-c1', decode(repeat('ef', 32), 'hex'),
                                                3600000, 1000, 'ch_proc00000000000000000001', NULL,
                                                'evt_proc00000000000000000004', 'req_4')$$,
                 'PR061', NULL, 'A capture of a pending charge is refused with PR061.');

-- processor_defer: unknown outcome; flagged once past the max wait.
SELECT is(processor_defer('ch_proc00000000000000000001', 1000, '500 api_error', 3600000,
                          'evt_proc00000000000000000005'),
          false, 'Within the max wait, a deferral does not flag.');
SELECT is((SELECT last_error FROM processor_jobs), '500 api_error', 'The job keeps the last error.');
SELECT is(processor_defer('ch_proc00000000000000000001', 1000, 'timeout', 0,
                          'evt_proc00000000000000000006'),
          true, 'Past the max wait, the charge is flagged.');
SELECT is(processor_defer('ch_proc00000000000000000001', 1000, 'timeout', 0,
                          'evt_proc00000000000000000007'),
          false, 'It is flagged only once.');
SELECT is((SELECT status FROM charges WHERE id = 'ch_proc00000000000000000001'), 'pending',
          'A flagged charge stays pending: nothing is guessed.');
SELECT is((SELECT count(*)::int FROM outbox_events WHERE charge_id = 'ch_proc00000000000000000001'
             AND type = 'charge.review_required'), 1, 'One charge.review_required event.');

-- processor_resolve: the outcome, its event and the end of the job, once.
SELECT is(processor_resolve('ch_proc00000000000000000001', 'succeeded', NULL, NULL, 'ch_upstream1',
                            'evt_proc00000000000000000008'),
          'succeeded', 'processor_resolve records succeeded.');
SELECT is((SELECT status || ' ' || captured || ' ' || amount_captured || ' ' || processor_ref
             FROM charges WHERE id = 'ch_proc00000000000000000001'),
          'succeeded true 1500 ch_upstream1', 'The charge is captured in full with the reference.');
SELECT is(processor_resolve('ch_proc00000000000000000001', 'failed', 'card_declined', 'generic_decline',
                            'ch_upstream2', 'evt_proc0000000000000000000a'),
          'succeeded', 'A second answer changes nothing: the recorded status is returned.');
SELECT is((SELECT array_agg(type ORDER BY seq) FROM outbox_events
            WHERE charge_id = 'ch_proc00000000000000000001'),
          ARRAY['charge.pending', 'charge.updated', 'charge.review_required', 'charge.succeeded'],
          'One final event, after the pending, update and review ones.');
SELECT is((SELECT count(*)::int FROM processor_jobs), 0, 'The job is gone.');

SELECT * FROM finish();
ROLLBACK;

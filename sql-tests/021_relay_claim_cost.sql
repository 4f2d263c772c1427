-- 021_relay_claim_cost: relay_claim's work is its batch, not the backlog (0006, now R__relay_claim.sql).
--
-- The work is counted, not timed: pg_stat_xact_user_tables counts the rows this
-- transaction has read from each table, so a claim of 10 from a backlog of
-- 2,000 due deliveries (and 2,000 events not yet fanned out) must read tens of
-- rows. The claim of 0002 read 4,010 delivery rows here (it sorted every
-- pending delivery); the outbox count guards the per-candidate "earlier
-- unpublished event?" check, which under a real backlog's stale statistics the
-- 0002 plan answered by walking the whole unpublished-events index.
BEGIN;
SELECT plan(9);

CREATE FUNCTION pg_temp.rows_read(t text) RETURNS bigint LANGUAGE sql VOLATILE
    AS $$ SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
            FROM pg_stat_xact_user_tables WHERE relname = t $$;
-- A 24-character id body from n.
CREATE FUNCTION pg_temp.idn(n integer) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'cost' || lpad(n::text, 20, '0') $$;

INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
VALUES ('we_' || pg_temp.idn(1), 'cost_u', 'https://cost.example/hooks', '{*}',
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
INSERT INTO charges (id, user_id, amount, currency, source, status)
SELECT 'ch_' || pg_temp.idn(n), 'cost_u', 1000, 'usd', 'tok_visa', 'succeeded'
  FROM generate_series(1, 4000) n;
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
SELECT 'evt_' || pg_temp.idn(n), 'cost_u', 'charge.succeeded', 'ch_' || pg_temp.idn(n),
       'ch_' || pg_temp.idn(n), '{}'
  FROM generate_series(1, 4000) n ORDER BY n;
-- The first 2,000 events are fanned out (2,000 due deliveries); the other 2,000 wait.
SELECT is(relay_fanout(2000), 2000, 'Fan-out of 2,000 events.');

CREATE TEMP TABLE before AS
SELECT pg_temp.rows_read('webhook_deliveries') AS deliveries, pg_temp.rows_read('outbox_events') AS events;
SELECT is((SELECT count(*) FROM relay_claim(10, 60000)), 10::bigint,
    'relay_claim(10) leases 10 of the 2,000 due deliveries.');
SELECT cmp_ok(pg_temp.rows_read('webhook_deliveries') - (SELECT deliveries FROM before), '<', 100::bigint,
    'Claiming 10 reads fewer than 100 delivery rows, not the whole backlog.');
SELECT cmp_ok(pg_temp.rows_read('outbox_events') - (SELECT events FROM before), '<', 100::bigint,
    'Claiming 10 reads fewer than 100 outbox rows, not every unpublished event per candidate.');

-- Fairness: a second endpoint (another tenant) whose 10 deliveries come due
-- after the first's 2,000 is not held back by them.
INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
VALUES ('we_' || pg_temp.idn(2), 'cost_v', 'https://other.example/hooks', '{*}',
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
INSERT INTO charges (id, user_id, amount, currency, source, status)
SELECT 'ch_' || pg_temp.idn(n), 'cost_v', 1000, 'usd', 'tok_visa', 'succeeded'
  FROM generate_series(5001, 5010) n;
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, published_at)
SELECT 'evt_' || pg_temp.idn(n), 'cost_v', 'charge.succeeded', 'ch_' || pg_temp.idn(n),
       'ch_' || pg_temp.idn(n), '{}', now()
  FROM generate_series(5001, 5010) n ORDER BY n;
-- Due at the same now() as the first endpoint's, and later in event order: behind all 2,000.
INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id, charge_id)
SELECT 'wd_' || pg_temp.idn(n), e.seq, e.id, 'we_' || pg_temp.idn(2), 'cost_v', e.charge_id
  FROM generate_series(5001, 5010) n JOIN outbox_events e ON e.id = 'evt_' || pg_temp.idn(n);
CREATE TEMP TABLE before2 AS SELECT pg_temp.rows_read('webhook_deliveries') AS deliveries;
CREATE TEMP TABLE fair AS SELECT * FROM relay_claim(10, 60000, 5, '{}');
SELECT is((SELECT count(*) FROM fair WHERE endpoint_id = 'we_' || pg_temp.idn(1)), 5::bigint,
    'With a share of 5 per endpoint, a claim of 10 takes 5 of the backlogged endpoint''s deliveries');
SELECT is((SELECT count(*) FROM fair WHERE endpoint_id = 'we_' || pg_temp.idn(2)), 5::bigint,
    'and 5 of the other tenant''s, whose deliveries came due after all 2,000.');
CREATE TEMP TABLE busy AS
SELECT * FROM relay_claim(10, 60000, 5, json_build_object('we_' || pg_temp.idn(1), 5));
SELECT is((SELECT count(*) FROM busy WHERE endpoint_id = 'we_' || pg_temp.idn(1)), 0::bigint,
    'An endpoint that already has its share in flight gets nothing more (a hanging receiver)');
SELECT is((SELECT count(*) FROM busy WHERE endpoint_id = 'we_' || pg_temp.idn(2)), 5::bigint,
    'while the other endpoint gets its share.');
SELECT cmp_ok(pg_temp.rows_read('webhook_deliveries') - (SELECT deliveries FROM before2), '<', 150::bigint,
    'Both fair claims read fewer than 150 delivery rows, not the backlog they pass over.');

SELECT * FROM finish();
ROLLBACK;

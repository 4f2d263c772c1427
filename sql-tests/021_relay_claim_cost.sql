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
SELECT plan(4);

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

SELECT * FROM finish();
ROLLBACK;

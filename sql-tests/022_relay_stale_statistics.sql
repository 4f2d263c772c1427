-- 022_relay_stale_statistics: the relay's per-row probes stay probes under statistics from before a burst.
--
-- A relay's session keeps its plans, generic after five calls, and autovacuum
-- analyzes a table only after a fifth of it changed: during a burst the
-- planner believes what the table held before it (few unpublished events, few
-- pending deliveries). Under those statistics relay_claim's "earlier event of
-- this charge still unpublished?" check was answered from
-- outbox_events_unpublished_idx, every unpublished event below the candidate
-- per candidate, and relay_record found its deliveries by reading every
-- pending one (webhook_deliveries_due_idx); a 20,000-event drain ran at half
-- speed (README, Performance). The work is counted, not timed, as in 021.
BEGIN;
SELECT plan(6);

SET LOCAL plan_cache_mode = force_generic_plan;

CREATE FUNCTION pg_temp.rows_read(t text) RETURNS bigint LANGUAGE sql VOLATILE
    AS $$ SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
            FROM pg_stat_xact_user_tables WHERE relname = t $$;
-- A 24-character id body from n.
CREATE FUNCTION pg_temp.idn(n integer) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'stal' || lpad(n::text, 20, '0') $$;

INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
VALUES ('we_' || pg_temp.idn(1), 'stale_u', 'https://stale.example/hooks', '{*}',
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
INSERT INTO charges (id, user_id, amount, currency, source, status)
SELECT 'ch_' || pg_temp.idn(n), CASE WHEN n <= 4000 THEN 'stale_x' ELSE 'stale_u' END,
       1000, 'usd', 'tok_visa', 'succeeded'
  FROM generate_series(1, 6010) n;

-- The history the statistics come from: 2,000 events, all published, delivered.
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, published_at)
SELECT 'evt_' || pg_temp.idn(n), 'stale_x', 'charge.succeeded', 'ch_' || pg_temp.idn(n),
       'ch_' || pg_temp.idn(n), '{}', now()
  FROM generate_series(1, 2000) n ORDER BY n;
INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id, charge_id, status)
SELECT 'wd_' || pg_temp.idn(n), e.seq, e.id, 'we_' || pg_temp.idn(1), 'stale_u', e.charge_id, 'succeeded'
  FROM generate_series(1, 2000) n JOIN outbox_events e ON e.id = 'evt_' || pg_temp.idn(n);
ANALYZE outbox_events, webhook_deliveries;

-- The burst: 2,000 events not yet fanned out, then 2,010 pending deliveries of later events.
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)
SELECT 'evt_' || pg_temp.idn(n), 'stale_x', 'charge.succeeded', 'ch_' || pg_temp.idn(n),
       'ch_' || pg_temp.idn(n), '{}'
  FROM generate_series(2001, 4000) n ORDER BY n;
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, published_at)
SELECT 'evt_' || pg_temp.idn(n), 'stale_u', 'charge.succeeded', 'ch_' || pg_temp.idn(n),
       'ch_' || pg_temp.idn(n), '{}', now()
  FROM generate_series(4001, 6010) n ORDER BY n;
INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id, charge_id)
SELECT 'wd_' || pg_temp.idn(n), e.seq, e.id, 'we_' || pg_temp.idn(1), 'stale_u', e.charge_id
  FROM generate_series(4001, 6010) n JOIN outbox_events e ON e.id = 'evt_' || pg_temp.idn(n);

CREATE TEMP TABLE before AS SELECT pg_temp.rows_read('outbox_events') AS events;
CREATE TEMP TABLE claimed AS SELECT * FROM relay_claim(10, 60000);
SELECT is((SELECT count(*) FROM claimed), 10::bigint, 'relay_claim(10) leases 10 of the 2,010 pending deliveries');
SELECT cmp_ok(pg_temp.rows_read('outbox_events') - (SELECT events FROM before), '<', 100::bigint,
    'and reads fewer than 100 outbox rows, not the 2,000 unpublished events before them per candidate.');

CREATE TEMP TABLE before2 AS SELECT pg_temp.rows_read('webhook_deliveries') AS deliveries;
SELECT relay_record((SELECT json_agg(json_build_object('id', delivery_id, 'lease', lease, 'ok', true,
                                                       'code', 200, 'duration_ms', 1))
                       FROM claimed));
CREATE TEMP TABLE after2 AS SELECT pg_temp.rows_read('webhook_deliveries') AS deliveries;
SELECT is((SELECT count(*) FROM webhook_deliveries d JOIN claimed c ON c.delivery_id = d.id
            WHERE d.status = 'succeeded'), 10::bigint,
    'relay_record stores the 10 outcomes');
SELECT cmp_ok((SELECT deliveries FROM after2) - (SELECT deliveries FROM before2), '<', 100::bigint,
    'reading fewer than 100 delivery rows, not the 2,000 other pending ones.');

-- The NATS claim's per-charge check: 2,000 events leased by another relay come first (the
-- statistics, from the history, say none is waiting for NATS). The claim passes over them once;
-- the check of each of its 10 candidates must not read them again.
UPDATE outbox_events SET nats_published_at = now() WHERE nats_published_at IS NULL;
ANALYZE outbox_events;
INSERT INTO charges (id, user_id, amount, currency, source, status)
SELECT 'ch_' || pg_temp.idn(n), 'stale_x', 1000, 'usd', 'tok_visa', 'succeeded'
  FROM generate_series(7001, 9010) n;
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, published_at, nats_locked_until)
SELECT 'evt_' || pg_temp.idn(n), 'stale_x', 'charge.succeeded', 'ch_' || pg_temp.idn(n),
       'ch_' || pg_temp.idn(n), '{}', now(), CASE WHEN n <= 9000 THEN now() + interval '1 hour' END
  FROM generate_series(7001, 9010) n ORDER BY n;
CREATE TEMP TABLE before3 AS SELECT pg_temp.rows_read('outbox_events') AS events;
CREATE TEMP TABLE nats AS SELECT * FROM relay_nats_claim(10, 60000);
CREATE TEMP TABLE after3 AS SELECT pg_temp.rows_read('outbox_events') AS events;
SELECT is((SELECT array_agg(event_id ORDER BY seq) FROM nats),
          (SELECT array_agg('evt_' || pg_temp.idn(n) ORDER BY n) FROM generate_series(9001, 9010) n),
    'relay_nats_claim(10) leases the 10 events behind the 2,000 leased ones');
SELECT cmp_ok((SELECT events FROM after3) - (SELECT events FROM before3), '<', 5000::bigint,
    'reading the leased ones once, not once per candidate (fewer than 5,000 outbox rows).');

SELECT * FROM finish();
ROLLBACK;

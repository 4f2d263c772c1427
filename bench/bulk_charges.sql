-- bulk_charges.sql - puts :rows charges of user :user in the table, as valid rows, then VACUUM ANALYZE.
--
--   psql -v rows=1000000 -v user=bench -f bench/bulk_charges.sql
--
-- The "growth" state of bench/run.sh, which runs it beside bulk_keys.sql (one
-- session each, so the two cores share the load). Ids are 'ch_bulk' + 20
-- digits (base62, so the CHECKs hold); charge g has the Idempotency-Key
-- 'bulk-' + the same digits and was created (rows - g) x 50 ms ago.
\set ON_ERROR_STOP on
INSERT INTO charges (id, user_id, amount, currency, source, description, metadata, status,
                     idempotency_key, request_id, created)
SELECT 'ch_bulk' || d, :'user', 1000 + g % 5000, 'usd', 'tok_visa', 'bulk', '{}', 'succeeded',
       'bulk-' || d, 'req_bulk' || d, now() - (:rows - g) * interval '50 ms'
  FROM generate_series(1, :rows) g, LATERAL (SELECT lpad(g::text, 20, '0') AS d) x;
VACUUM ANALYZE charges;

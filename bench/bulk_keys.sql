-- bulk_keys.sql - puts the stored Idempotency-Keys of bulk_charges.sql's charges in the table, then VACUUM ANALYZE.
--
--   psql -v rows=1000000 -v user=bench -f bench/bulk_keys.sql
--
-- Key g answers with charge g's object, as the API stored it; it expires 24 h
-- after the charge was created, so the purge leaves every one in place
-- during the benchmark. The fingerprint is that of no real request.
\set ON_ERROR_STOP on
INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, object_id,
                              created_at, expires_at)
SELECT :'user', 'bulk-' || d, sha256(convert_to('bulk-' || d, 'UTF8')), 201,
       format('{"id":"ch_bulk%s","object":"charge","amount":%s,"currency":"usd",'
              '"status":"succeeded","source":"tok_visa","description":"bulk","metadata":{},'
              '"amount_refunded":0,"refunded":false,"failure_code":null,"decline_code":null,'
              '"created":%s}', d, 1000 + g % 5000, floor(extract(epoch FROM t))::bigint),
       'ch_bulk' || d, t, t + interval '24 hours'
  FROM generate_series(1, :rows) g,
       LATERAL (SELECT lpad(g::text, 20, '0') AS d, now() - (:rows - g) * interval '50 ms' AS t) x;
VACUUM ANALYZE idempotency_keys;

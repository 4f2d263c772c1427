-- bulk.sql - fills the tables with :rows charges of user :user, each with its
-- idempotency key and its (published) outbox event, as valid rows, then
-- VACUUM ANALYZE: the "growth" state of bench/run.sh.
--
--   psql -v rows=1000000 -v user=bench -f bench/bulk.sql
--
-- Ids are 'ch_bulk' + 20 digits (base62, so the CHECKs hold). The charges
-- are spread over the last :rows x 50 ms, their keys expire 24 h after that,
-- so none is purged during the benchmark.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO charges (id, user_id, amount, currency, source, description, metadata, status,
                     idempotency_key, request_id, created)
SELECT 'ch_bulk' || lpad(g::text, 20, '0'), :'user', 1000 + g % 5000, 'usd', 'tok_visa',
       'bulk', '{}', 'succeeded', 'bulk-' || g, 'req_bulk' || lpad(g::text, 20, '0'),
       now() - (:rows - g) * interval '50 ms'
  FROM generate_series(1, :rows) g;
INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, object_id,
                              created_at, expires_at)
SELECT c.user_id, c.idempotency_key, sha256(convert_to(c.idempotency_key, 'UTF8')), 201,
       charge_object(c)::text, c.id, c.created, c.created + interval '24 hours'
  FROM charges c WHERE c.id LIKE 'ch\_bulk%';
INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                           idempotency_key, created, published_at)
SELECT 'evt_bulk' || substr(c.id, 8), c.user_id, 'charge.succeeded', c.id, c.id,
       charge_object(c), c.request_id, c.idempotency_key, c.created, c.created
  FROM charges c WHERE c.id LIKE 'ch\_bulk%';
COMMIT;
VACUUM ANALYZE charges, idempotency_keys, outbox_events;

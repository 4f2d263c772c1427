-- R__purge_idempotency_keys.sql: the current definition of purge_idempotency_keys().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0004; the versioned files keep its history.

-- Deletes up to p_batch expired idempotency keys, skipping locked ones (the purge of every serve).
CREATE OR REPLACE FUNCTION purge_idempotency_keys(p_batch integer) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH d AS (
        DELETE FROM idempotency_keys WHERE ctid IN (
            SELECT ctid FROM idempotency_keys WHERE expires_at <= now()
             ORDER BY expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) FROM d
$$;

REVOKE ALL ON FUNCTION purge_idempotency_keys(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_idempotency_keys(integer) TO payments_app;

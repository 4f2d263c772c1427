-- R__purge_published_events.sql: the current definition of purge_published_events().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0004; the versioned files keep its history.

-- Deletes up to p_batch published events older than the retention, skipping locked ones.
CREATE OR REPLACE FUNCTION purge_published_events(p_retention_ms bigint, p_batch integer) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH d AS (
        DELETE FROM outbox_events WHERE seq IN (
            SELECT seq FROM outbox_events
             WHERE published_at IS NOT NULL
               AND created < now() - p_retention_ms * interval '1 millisecond'
             ORDER BY seq LIMIT p_batch FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) FROM d
$$;

REVOKE ALL ON FUNCTION purge_published_events(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_published_events(bigint, integer) TO payments_app;

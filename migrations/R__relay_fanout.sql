-- R__relay_fanout.sql: the current definition of relay_fanout().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002; the versioned files keep its history.

/*
 * relay_fanout: claims up to p_batch unpublished events (SKIP LOCKED, so
 * relays share the work), records one delivery per matching endpoint, and
 * marks the events published, all in one transaction: an event is published
 * only once its deliveries are recorded. Returns the number of events.
 */
CREATE OR REPLACE FUNCTION relay_fanout(p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    n integer;
BEGIN
    WITH claimed AS (
        SELECT seq, id, user_id, type, charge_id FROM outbox_events
         WHERE published_at IS NULL
         ORDER BY seq LIMIT p_batch
           FOR UPDATE SKIP LOCKED
    ), fanned AS (
        INSERT INTO webhook_deliveries (id, event_seq, event_id, endpoint_id, user_id, charge_id)
        SELECT random_id('wd_'), c.seq, c.id, w.id, c.user_id, c.charge_id
          FROM claimed c
          JOIN webhook_endpoints w
            ON w.user_id = c.user_id AND w.deleted_at IS NULL AND w.status = 'enabled'
           AND (c.type = ANY (w.enabled_events) OR '*' = ANY (w.enabled_events))
        ON CONFLICT (event_seq, endpoint_id) DO NOTHING
        RETURNING 1
    ), marked AS (
        UPDATE outbox_events e SET published_at = now()
          FROM claimed c WHERE e.seq = c.seq
        RETURNING 1
    )
    SELECT count(*) INTO n FROM marked, (SELECT count(*) FROM fanned) f;
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION relay_fanout(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_fanout(integer) TO payments_app;

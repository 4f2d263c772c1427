-- 0006: relay_claim walks the due deliveries in order and stops after p_batch.
--
-- The claim of 0002 was one SQL statement whose plan was the planner's to
-- choose, and under a backlog it chose badly: when a burst has just made
-- webhook_deliveries and the outbox grow faster than autovacuum re-analyses
-- them, it joined every pending delivery, sorted them all, and answered the
-- "is an earlier event of this charge still unpublished?" check by walking
-- the whole unpublished-events index once per candidate (min(seq) in seq
-- order, filtered by charge). With 10,000 deliveries pending one claim took
-- 2 to 20 seconds; the relay then delivered a few hundred webhooks a second.
--
-- This version is PL/pgSQL and fixes the plan's shape instead of hoping for
-- it: a cursor (planned for a fast start, so it follows
-- webhook_deliveries_due_idx in (next_attempt_at, event_seq) order, locking
-- each row as it reads it, SKIP LOCKED) reads due deliveries until p_batch of
-- them pass the checks, and each check is one statement that can only be an
-- index probe: the endpoint by primary key, the earliest pending delivery of
-- the same (endpoint, charge) by webhook_deliveries_order_idx (min over the
-- index's own order), and an earlier unpublished event of the charge by
-- outbox_events_unpublished_charge_idx (an EXISTS on the index's two
-- columns). The work per claim is p_batch plus the blocked deliveries it
-- passes on the way, whatever the statistics say. The behaviour is that of
-- 0002, and sql-tests/020_webhooks.sql checks it.
--
-- JIT is off for the relay's functions: compiling a plan (tens of
-- milliseconds) costs more than these statements, and the planner's cost
-- estimates, which decide it, are the ones that go stale under a burst.

CREATE OR REPLACE FUNCTION relay_claim(p_batch integer, p_lease_ms bigint)
RETURNS TABLE (delivery_id text, event_id text, endpoint_id text, attempts integer, url text,
               secret text, body text, lease text, created double precision)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    due CURSOR FOR
        SELECT d.id, d.endpoint_id, d.charge_id, d.event_seq FROM webhook_deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= now()
           AND (d.locked_until IS NULL OR d.locked_until < now())
         ORDER BY d.next_attempt_at, d.event_seq
           FOR UPDATE SKIP LOCKED;
    ids text[] := '{}';
BEGIN
    IF p_batch < 1 THEN
        RETURN;
    END IF;
    FOR d IN due LOOP
        -- Deliveries of deleted or disabled endpoints are never sent.
        CONTINUE WHEN NOT coalesce((SELECT w.deleted_at IS NULL AND w.status = 'enabled'
                                      FROM webhook_endpoints w WHERE w.id = d.endpoint_id), false);
        -- One event at a time per (endpoint, charge): the earliest pending one.
        CONTINUE WHEN (SELECT min(p.event_seq) FROM webhook_deliveries p
                        WHERE p.status = 'pending' AND p.endpoint_id = d.endpoint_id
                          AND p.charge_id = d.charge_id) <> d.event_seq;
        -- Nor before an earlier event of the charge is fanned out (by another relay).
        CONTINUE WHEN EXISTS (SELECT FROM outbox_events o
                               WHERE o.charge_id = d.charge_id AND o.seq < d.event_seq
                                 AND o.published_at IS NULL);
        ids := ids || d.id;
        EXIT WHEN cardinality(ids) >= p_batch;
    END LOOP;
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH leased AS (
        UPDATE webhook_deliveries d
           SET locked_until = now() + p_lease_ms * interval '1 millisecond'
         WHERE d.id = ANY (ids)
        RETURNING d.id, d.event_seq, d.event_id, d.attempts, d.endpoint_id, d.locked_until
    )
    SELECT l.id, l.event_id, l.endpoint_id, l.attempts, w.url, w.secret, event_object(e)::text,
           l.locked_until::text, extract(epoch FROM e.created)::double precision
      FROM leased l
      JOIN webhook_endpoints w ON w.id = l.endpoint_id
      JOIN outbox_events e ON e.seq = l.event_seq
     ORDER BY l.event_seq;
END
$$;

ALTER FUNCTION relay_fanout(integer) SET jit = off;

-- R__relay_claim.sql: the current definition of relay_claim().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002 and replaced in 0006; the versioned files keep its
-- history.

/*
 * relay_claim: leases up to p_batch due deliveries for p_lease_ms. A delivery
 * is due only when no earlier event of the same charge is still waiting for
 * the same endpoint (or for fan-out), so each endpoint sees a charge's events
 * in commit order; a failing endpoint holds back only its own deliveries.
 * Deliveries of deleted or disabled endpoints are never sent. lease is the
 * lease's expiry: relay_record and relay_release only act on a delivery
 * whose lease is still that one, so a relay whose lease ran out (and whose
 * delivery another relay took over) cannot overwrite the newer outcome.
 * created is the event's commit time (Unix seconds), for the lag metric.
 *
 * It is PL/pgSQL so that the plan's shape is fixed rather than the
 * planner's to choose (migration 0006 says why): a cursor, planned for a
 * fast start, follows webhook_deliveries_due_idx in (next_attempt_at,
 * event_seq) order, locking each row as it reads it (SKIP LOCKED), until
 * p_batch deliveries pass the checks; each check is one index probe. The
 * work per claim is p_batch plus the blocked deliveries it passes, whatever
 * the statistics say (sql-tests/021_relay_claim_cost.sql counts it). JIT is
 * off: compiling a plan costs more than these statements.
 */
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

REVOKE ALL ON FUNCTION relay_claim(integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_claim(integer, bigint) TO payments_app;

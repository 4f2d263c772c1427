-- R__relay_claim.sql: the current definition of relay_claim().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002 and replaced in 0006; the versioned files keep its
-- history.

/*
 * relay_claim: leases up to p_batch due deliveries for p_lease_ms, fairly
 * across endpoints. A delivery is due only when no earlier event of the same
 * charge is still waiting for the same endpoint (or for fan-out), so each
 * endpoint sees a charge's events in commit order; a failing endpoint holds
 * back only its own deliveries. Deliveries of deleted or disabled endpoints
 * are never sent. lease is the lease's expiry: relay_record and relay_release
 * only act on a delivery whose lease is still that one, so a relay whose
 * lease ran out (and whose delivery another relay took over) cannot
 * overwrite the newer outcome. created is the event's commit time (Unix
 * seconds), for the lag metric.
 *
 * Fairness: one endpoint gets at most p_per_endpoint deliveries in flight
 * from the calling relay worker: p_in_flight ({"we_...": n}) says how many
 * it already has, and an endpoint at its share is passed over without
 * reading its deliveries. The claim goes round the endpoints that have
 * pending deliveries in id order, starting with the endpoint of the oldest
 * due delivery (so the longest wait goes first and no endpoint starves),
 * and takes at most the endpoint's share from each. So a tenant whose
 * receiver hangs holds at most p_per_endpoint attempts of a worker's
 * pipeline, and a tenant's backlog of 10,000 deliveries due first does not
 * fill every claim. NULL p_per_endpoint: no share (the batch is the limit).
 *
 * It is PL/pgSQL so that the plan's shape is fixed rather than the
 * planner's to choose (migration 0006 says why). Each step is an index
 * probe: the oldest due delivery (webhook_deliveries_due_idx), the next
 * endpoint with pending deliveries (webhook_deliveries_order_idx, a loose
 * index scan), and a cursor, planned for a fast start, over one endpoint's
 * due deliveries in (next_attempt_at, event_seq) order
 * (webhook_deliveries_endpoint_due_idx, 0020), locking each row as it reads
 * it (SKIP LOCKED) and stopping at the endpoint's share; then the per-charge
 * checks, one probe each. The work per claim is p_batch plus the blocked or
 * leased deliveries it passes and the endpoints it visits (at most 1,000;
 * the next claim starts elsewhere), whatever the statistics say
 * (sql-tests/021_relay_claim_cost.sql counts it). JIT is off: compiling a
 * plan costs more than these statements.
 */
DROP FUNCTION IF EXISTS relay_claim(integer, bigint);
CREATE OR REPLACE FUNCTION relay_claim(p_batch integer, p_lease_ms bigint,
                                       p_per_endpoint integer DEFAULT NULL,
                                       p_in_flight json DEFAULT NULL)
RETURNS TABLE (delivery_id text, event_id text, endpoint_id text, attempts integer, url text,
               secret text, body text, lease text, created double precision)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    due CURSOR (ep text) FOR
        SELECT d.id, d.endpoint_id, d.charge_id, d.event_seq FROM webhook_deliveries d
         WHERE d.status = 'pending' AND d.endpoint_id = ep AND d.next_attempt_at <= now()
           AND (d.locked_until IS NULL OR d.locked_until < now())
         ORDER BY d.next_attempt_at, d.event_seq
           FOR UPDATE SKIP LOCKED;
    -- A cursor, so that its plan is made for a fast start: the index's order, not a sort.
    oldest CURSOR FOR
        SELECT d.endpoint_id FROM webhook_deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= now()
           AND (d.locked_until IS NULL OR d.locked_until < now())
         ORDER BY d.next_attempt_at, d.event_seq;
    ids text[] := '{}';
    v_first text;
    v_ep text;
    v_wrapped boolean := false;
    v_visited integer := 0;
    v_room integer;
    v_taken integer;
BEGIN
    IF p_batch < 1 THEN
        RETURN;
    END IF;
    -- The round starts at the endpoint whose delivery has waited longest.
    OPEN oldest;
    FETCH oldest INTO v_first;
    CLOSE oldest;
    IF v_first IS NULL THEN
        RETURN;
    END IF;
    v_ep := v_first;
    LOOP
        v_visited := v_visited + 1;
        v_room := least(coalesce(p_per_endpoint, p_batch)
                        - coalesce((p_in_flight ->> v_ep)::integer, 0),
                        p_batch - cardinality(ids));
        -- Deliveries of deleted or disabled endpoints are never sent.
        IF v_room > 0 AND coalesce((SELECT w.deleted_at IS NULL AND w.status = 'enabled'
                                      FROM webhook_endpoints w WHERE w.id = v_ep), false) THEN
            v_taken := 0;
            FOR d IN due(v_ep) LOOP
                -- One event at a time per (endpoint, charge): not before an earlier
                -- event of the charge is fanned out (by another relay), nor while an
                -- earlier one is pending for this endpoint. Both in ONE statement,
                -- so one snapshot: as two, a fan-out committing between them was
                -- seen by neither (its delivery not yet there, its event already
                -- published), and a charge's later event went out first (make
                -- test's chaos run caught a refund.created before its
                -- charge.succeeded).
                --
                -- (published_at IS NULL) IS TRUE, the same test, keeps
                -- outbox_events_unpublished_idx out of the earlier-event probe, which
                -- reads the charge's own events (outbox_events_charge_idx). Under
                -- statistics from before a burst (few unpublished) the planner answered
                -- it from that index over seq < d.event_seq, every event not vacuumed
                -- since it was published, per candidate: a drain of 20,000 events ran
                -- at half speed (sql-tests/022).
                CONTINUE WHEN EXISTS (SELECT FROM outbox_events o
                                       WHERE o.charge_id = d.charge_id AND o.seq < d.event_seq
                                         AND (o.published_at IS NULL) IS TRUE)
                           OR (SELECT min(p.event_seq) FROM webhook_deliveries p
                                WHERE p.status = 'pending' AND p.endpoint_id = d.endpoint_id
                                  AND p.charge_id = d.charge_id) <> d.event_seq;
                ids := ids || d.id;
                v_taken := v_taken + 1;
                EXIT WHEN v_taken >= v_room;
            END LOOP;
        END IF;
        EXIT WHEN cardinality(ids) >= p_batch OR v_visited >= 1000;
        -- The next endpoint with pending deliveries, in id order, wrapping round once.
        SELECT min(p.endpoint_id) INTO v_ep FROM webhook_deliveries p
         WHERE p.status = 'pending' AND p.endpoint_id > v_ep;
        IF v_ep IS NULL AND NOT v_wrapped THEN
            v_wrapped := true;
            SELECT min(p.endpoint_id) INTO v_ep FROM webhook_deliveries p WHERE p.status = 'pending';
        END IF;
        EXIT WHEN v_ep IS NULL OR (v_wrapped AND v_ep >= v_first);
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

REVOKE ALL ON FUNCTION relay_claim(integer, bigint, integer, json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_claim(integer, bigint, integer, json) TO payments_app;

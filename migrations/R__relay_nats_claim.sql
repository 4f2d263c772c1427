-- R__relay_nats_claim.sql: the current definition of relay_nats_claim().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0005; the versioned files keep its history.

/*
 * relay_nats_claim: leases up to p_batch events for p_lease_ms, in seq
 * order (SKIP LOCKED, so relays share the work), for publishing to NATS.
 * An event is claimable only when no earlier event of the same charge is
 * still unpublished to NATS, leased or not, so a batch holds at most one
 * event per charge and the stream receives each charge's events in commit
 * order. A crashed relay's lease expires and the event is claimed again.
 */
CREATE OR REPLACE FUNCTION relay_nats_claim(p_batch integer, p_lease_ms bigint)
RETURNS TABLE (seq bigint, event_id text, type text, body text)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH due AS (
        SELECT e.seq FROM outbox_events e
         WHERE e.nats_published_at IS NULL
           AND (e.nats_locked_until IS NULL OR e.nats_locked_until < now())
           -- (nats_published_at IS NULL) IS TRUE, the same test, keeps
           -- outbox_events_nats_unpublished_idx out of this probe, which reads the charge's
           -- own events (outbox_events_charge_idx): under statistics from before a burst
           -- the planner read every event waiting for NATS below each candidate
           -- (sql-tests/022; relay_claim had the same trap).
           AND NOT EXISTS (SELECT 1 FROM outbox_events p
                            WHERE p.charge_id = e.charge_id AND p.seq < e.seq
                              AND (p.nats_published_at IS NULL) IS TRUE)
         ORDER BY e.seq
         LIMIT p_batch
           FOR NO KEY UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE outbox_events e
           SET nats_locked_until = now() + p_lease_ms * interval '1 millisecond'
          FROM due WHERE e.seq = due.seq
        RETURNING e.*
    )
    SELECT l.seq, l.id, l.type, event_object(ROW(l.*)::outbox_events)::text
      FROM leased l
     ORDER BY l.seq
$$;

REVOKE ALL ON FUNCTION relay_nats_claim(integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_nats_claim(integer, bigint) TO payments_app;

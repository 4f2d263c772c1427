-- 0005: publishing events to NATS JetStream, independently of webhooks.
--
-- nats_published_at is when JetStream acknowledged the event (NULL: not yet);
-- nats_locked_until is the lease of the relay that is publishing it. Webhook
-- fan-out (published_at) and NATS publishing never wait for each other.
--
-- Events older than this migration are never published to NATS: the column
-- is added with the default '-infinity', which PostgreSQL stores once in the
-- catalogue (no table rewrite) and every existing row reads, and the default
-- is dropped at once, so every later event starts as NULL. Events committed
-- after this migration are published when a relay runs with
-- PAYMENTS_NATS_URL, including those committed while NATS was not configured
-- (as long as retention kept them).
--
-- The partial index below is built in this transaction (it holds a SHARE
-- lock on outbox_events while it scans the table, so new events wait for
-- it): the outbox only holds the retention period's events, and the index
-- starts empty.

ALTER TABLE outbox_events
    ADD COLUMN nats_published_at timestamptz DEFAULT '-infinity',
    ADD COLUMN nats_locked_until timestamptz;
ALTER TABLE outbox_events ALTER COLUMN nats_published_at DROP DEFAULT;

-- The NATS claim reads only events not yet in the stream, in commit order.
CREATE INDEX outbox_events_nats_unpublished_idx ON outbox_events (seq)
    WHERE nats_published_at IS NULL;

/*
 * relay_nats_claim: leases up to p_batch events for p_lease_ms, in seq
 * order (SKIP LOCKED, so relays share the work), for publishing to NATS.
 * An event is claimable only when no earlier event of the same charge is
 * still unpublished to NATS, leased or not, so a batch holds at most one
 * event per charge and the stream receives each charge's events in commit
 * order. A crashed relay's lease expires and the event is claimed again.
 */
CREATE FUNCTION relay_nats_claim(p_batch integer, p_lease_ms bigint)
RETURNS TABLE (seq bigint, event_id text, type text, body text)
LANGUAGE sql AS $$
    WITH due AS (
        SELECT e.seq FROM outbox_events e
         WHERE e.nats_published_at IS NULL
           AND (e.nats_locked_until IS NULL OR e.nats_locked_until < now())
           AND NOT EXISTS (SELECT 1 FROM outbox_events p
                            WHERE p.charge_id = e.charge_id AND p.seq < e.seq
                              AND p.nats_published_at IS NULL)
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

/*
 * relay_nats_record: after a publish round, marks the events JetStream
 * acknowledged (p_published) and releases the lease of those it did not
 * (p_failed) so that any relay retries them. Returns how many were marked.
 */
CREATE FUNCTION relay_nats_record(p_published bigint[], p_failed bigint[]) RETURNS bigint
LANGUAGE sql AS $$
    WITH released AS (
        UPDATE outbox_events SET nats_locked_until = NULL
         WHERE seq = ANY (p_failed) AND nats_published_at IS NULL
    ), marked AS (
        UPDATE outbox_events SET nats_published_at = now(), nats_locked_until = NULL
         WHERE seq = ANY (p_published) AND nats_published_at IS NULL
        RETURNING 1
    )
    SELECT count(*) FROM marked
$$;

-- purge_published_events for relays that publish to NATS: keeps events not yet in the stream.
CREATE FUNCTION purge_published_events_nats(p_retention_ms bigint, p_batch integer) RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (
        DELETE FROM outbox_events WHERE seq IN (
            SELECT seq FROM outbox_events
             WHERE published_at IS NOT NULL AND nats_published_at IS NOT NULL
               AND created < now() - p_retention_ms * interval '1 millisecond'
             ORDER BY seq LIMIT p_batch FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) FROM d
$$;

-- As in 0004: every writing function runs as its owner, and only payments_app may call it.
ALTER FUNCTION relay_nats_claim(integer, bigint) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION relay_nats_record(bigint[], bigint[])
    SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION purge_published_events_nats(bigint, integer)
    SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE ALL ON FUNCTION relay_nats_claim(integer, bigint), relay_nats_record(bigint[], bigint[]),
                       purge_published_events_nats(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_nats_claim(integer, bigint), relay_nats_record(bigint[], bigint[]),
                          purge_published_events_nats(bigint, integer) TO payments_app;

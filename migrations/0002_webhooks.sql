-- 0002: webhook endpoints, per-endpoint deliveries with retries, and the relay's SQL.

CREATE TABLE webhook_endpoints (
    id             text        PRIMARY KEY CHECK (id ~ '^we_[0-9A-Za-z]{24}$'),
    user_id        text        NOT NULL CHECK (user_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    url            text        NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    enabled_events text[]      NOT NULL CHECK (cardinality(enabled_events) BETWEEN 1 AND 32),
    secret         text        NOT NULL CHECK (secret ~ '^whsec_'),
    status         text        NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    created        timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
-- Serves the per-user list and the relay's fan-out join.
CREATE INDEX webhook_endpoints_user_idx ON webhook_endpoints (user_id, created DESC, id DESC)
    WHERE deleted_at IS NULL;

-- One row per (event, endpoint): the unit of delivery, retried until it succeeds or dies.
CREATE TABLE webhook_deliveries (
    id               text        PRIMARY KEY CHECK (id ~ '^wd_[0-9A-Za-z]{24}$'),
    event_seq        bigint      NOT NULL REFERENCES outbox_events (seq) ON DELETE CASCADE,
    event_id         text        NOT NULL,
    endpoint_id      text        NOT NULL REFERENCES webhook_endpoints (id),
    user_id          text        NOT NULL,
    charge_id        text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'succeeded', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,
    last_status_code integer,
    last_error       text,
    created          timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (event_seq, endpoint_id)
);
-- Due deliveries, in order.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, event_seq)
    WHERE status = 'pending';
-- The per-(endpoint, charge) ordering check.
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (endpoint_id, charge_id, event_seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_user_idx ON webhook_deliveries (user_id, status, created DESC);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
-- relay_claim's per-charge order check: is an earlier event of this charge still unpublished?
CREATE INDEX outbox_events_unpublished_charge_idx ON outbox_events (charge_id, seq)
    WHERE published_at IS NULL;

-- Every attempt of every delivery: the dead-letter record.
CREATE TABLE webhook_attempts (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id text        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    status_code integer,
    error       text,
    duration_ms integer     NOT NULL CHECK (duration_ms >= 0),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, seq);

-- The event object exactly as webhooks and the events API send it.
CREATE FUNCTION event_object(e outbox_events) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT row_to_json(o) FROM (
        SELECT e.id,
               'event'::text AS object,
               e.type,
               floor(extract(epoch FROM e.created))::bigint AS created,
               (SELECT row_to_json(d) FROM (SELECT e.data AS object) d) AS data,
               (SELECT row_to_json(q) FROM (SELECT e.request_id AS id,
                                                   e.idempotency_key) q) AS request
    ) o);
END
$$;

-- prefix + 24 characters from two v4 UUIDs (gen_random_uuid draws from a strong random source).
CREATE FUNCTION random_id(prefix text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT prefix || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)
                  || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)
$$;

/*
 * relay_fanout: claims up to p_batch unpublished events (SKIP LOCKED, so
 * relays share the work), records one delivery per matching endpoint, and
 * marks the events published, all in one transaction: an event is published
 * only once its deliveries are recorded. Returns the number of events.
 */
CREATE FUNCTION relay_fanout(p_batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
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
 */
CREATE FUNCTION relay_claim(p_batch integer, p_lease_ms bigint)
RETURNS TABLE (delivery_id text, event_id text, endpoint_id text, attempts integer, url text,
               secret text, body text, lease text, created double precision)
LANGUAGE sql AS $$
    WITH due AS (
        -- The checks are scalar subqueries on purpose: each is one index probe per
        -- candidate, and the planner cannot turn them into a join that scans a
        -- whole index when the table's statistics are stale.
        SELECT d.id FROM webhook_deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= now()
           AND (d.locked_until IS NULL OR d.locked_until < now())
           AND coalesce((SELECT w.deleted_at IS NULL AND w.status = 'enabled'
                           FROM webhook_endpoints w WHERE w.id = d.endpoint_id), false)
           AND (SELECT min(p.event_seq) FROM webhook_deliveries p
                 WHERE p.status = 'pending' AND p.endpoint_id = d.endpoint_id
                   AND p.charge_id = d.charge_id) = d.event_seq
           AND coalesce((SELECT min(o.seq) FROM outbox_events o
                          WHERE o.charge_id = d.charge_id AND o.published_at IS NULL),
                        d.event_seq) >= d.event_seq
         ORDER BY d.next_attempt_at, d.event_seq
         LIMIT p_batch
           FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE webhook_deliveries d
           SET locked_until = now() + p_lease_ms * interval '1 millisecond'
          FROM due WHERE d.id = due.id
        RETURNING d.id, d.event_seq, d.event_id, d.attempts, d.endpoint_id, d.locked_until
    )
    SELECT l.id, l.event_id, l.endpoint_id, l.attempts, w.url, w.secret, event_object(e)::text,
           l.locked_until::text, extract(epoch FROM e.created)::double precision
      FROM leased l
      JOIN webhook_endpoints w ON w.id = l.endpoint_id
      JOIN outbox_events e ON e.seq = l.event_seq
     ORDER BY l.event_seq
$$;

/*
 * relay_record: stores the outcome of a batch of attempts in one round trip.
 * p_results is a JSON array of {id, lease, ok, code, error, duration_ms,
 * delay_ms, dead}: delay_ms is the backoff before the next attempt (ignored
 * on success); dead marks a delivery that used its last attempt. Every
 * attempt is kept in the history, but a delivery changes only while it is
 * pending under the same lease: not after its endpoint was deleted (it is
 * dead then), nor after another relay took it over.
 */
CREATE FUNCTION relay_record(p_results json) RETURNS void
LANGUAGE sql AS $$
    WITH r AS (
        SELECT * FROM json_to_recordset(p_results)
                   AS t(id text, lease text, ok boolean, code integer, error text,
                        duration_ms integer, delay_ms bigint, dead boolean)
    ), attempts AS (
        INSERT INTO webhook_attempts (delivery_id, status_code, error, duration_ms)
        SELECT id, code, error, duration_ms FROM r
    )
    UPDATE webhook_deliveries d
       SET attempts = d.attempts + 1,
           status = CASE WHEN r.ok THEN 'succeeded' WHEN r.dead THEN 'dead' ELSE 'pending' END,
           delivered_at = CASE WHEN r.ok THEN now() END,
           next_attempt_at = CASE WHEN r.ok OR r.dead THEN d.next_attempt_at
                                  ELSE now() + r.delay_ms * interval '1 millisecond' END,
           locked_until = NULL,
           last_status_code = r.code,
           last_error = r.error
      FROM r
     WHERE d.id = r.id AND d.status = 'pending' AND d.locked_until = r.lease::timestamptz
$$;

-- Gives back leases of deliveries a stopping relay did not finish ({id, lease} JSON array).
CREATE FUNCTION relay_release(p_leases json) RETURNS void
LANGUAGE sql AS $$
    UPDATE webhook_deliveries d SET locked_until = NULL
      FROM json_to_recordset(p_leases) AS r(id text, lease text)
     WHERE d.id = r.id AND d.status = 'pending' AND d.locked_until = r.lease::timestamptz
$$;

-- The webhook endpoint object as the API renders it (the secret is shown only at creation).
CREATE FUNCTION webhook_endpoint_object(w webhook_endpoints) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT row_to_json(o) FROM (
        SELECT w.id,
               'webhook_endpoint'::text AS object,
               w.url,
               to_json(w.enabled_events) AS enabled_events,
               w.status,
               floor(extract(epoch FROM w.created))::bigint AS created
    ) o);
END
$$;

-- A delivery with its attempts, for the dead-letter API.
CREATE FUNCTION webhook_delivery_object(d webhook_deliveries) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT row_to_json(o) FROM (
        SELECT d.id,
               'webhook_delivery'::text AS object,
               d.event_id AS event,
               d.endpoint_id AS webhook_endpoint,
               d.status,
               d.attempts,
               CASE WHEN d.status = 'pending'
                    THEN floor(extract(epoch FROM d.next_attempt_at))::bigint END AS next_attempt_at,
               d.last_status_code,
               d.last_error,
               floor(extract(epoch FROM d.created))::bigint AS created,
               floor(extract(epoch FROM d.delivered_at))::bigint AS delivered_at,
               (SELECT coalesce(json_agg(row_to_json(a) ORDER BY a.seq), '[]')
                  FROM (SELECT seq, status_code, error, duration_ms,
                               floor(extract(epoch FROM at))::bigint AS at
                          FROM webhook_attempts WHERE delivery_id = d.id) a) AS attempt_history
    ) o);
END
$$;

/*
 * relay_replay: puts a dead (or delivered) delivery back in the queue with a
 * fresh set of attempts: same event, so the same webhook-id. p_user_id NULL
 * (the operator's CLI) skips the ownership check. Returns the delivery
 * object, or NULL when there is no such delivery of that user; a delivery
 * whose endpoint was deleted is refused with SQLSTATE PR400.
 */
CREATE FUNCTION relay_replay(p_id text, p_user_id text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    d webhook_deliveries%ROWTYPE;
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_deliveries x JOIN webhook_endpoints w ON w.id = x.endpoint_id
                WHERE x.id = p_id AND (p_user_id IS NULL OR x.user_id = p_user_id)
                  AND (w.deleted_at IS NOT NULL OR w.status <> 'enabled')) THEN
        RAISE EXCEPTION 'endpoint_deleted' USING ERRCODE = 'PR400';
    END IF;
    UPDATE webhook_deliveries
       SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL
     WHERE id = p_id AND (p_user_id IS NULL OR user_id = p_user_id)
       AND status IN ('dead', 'succeeded')
    RETURNING * INTO d;
    IF NOT FOUND THEN
        SELECT * INTO d FROM webhook_deliveries
         WHERE id = p_id AND (p_user_id IS NULL OR user_id = p_user_id);
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN webhook_delivery_object(d);
END
$$;

-- R__webhook_delivery_object.sql: the current definition of webhook_delivery_object().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002; the versioned files keep its history.

-- A delivery with its last 50 attempts (oldest of them first), for the dead-letter API.
-- Replays keep no more than those 50 of the attempts before them (relay_replay,
-- relay_replay_dead), so a delivery replayed over and over stays small.
CREATE OR REPLACE FUNCTION webhook_delivery_object(d webhook_deliveries) RETURNS json
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
                          FROM webhook_attempts WHERE delivery_id = d.id
                         ORDER BY seq DESC LIMIT 50) a) AS attempt_history
    ) o);
END
$$;

REVOKE ALL ON FUNCTION webhook_delivery_object(webhook_deliveries) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_delivery_object(webhook_deliveries) TO payments_app;

-- R__event_object.sql: the current definition of event_object().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002; the versioned files keep its history.

-- The event object exactly as webhooks and the events API send it, with Stripe's
-- event fields (and data.previous_attributes where an update wrote it, 0080);
-- api_version is the version the API speaks (HTTP_STRIPE_VERSION in
-- include/http.h).
CREATE OR REPLACE FUNCTION event_object(e outbox_events) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT row_to_json(o) FROM (
        SELECT e.id,
               'event'::text AS object,
               '2024-06-20'::text AS api_version,
               e.type,
               floor(extract(epoch FROM e.created))::bigint AS created,
               CASE WHEN e.previous_attributes IS NULL
                    THEN (SELECT row_to_json(d) FROM (SELECT e.data AS object) d)
                    ELSE (SELECT row_to_json(d) FROM (SELECT e.data AS object,
                                                             e.previous_attributes) d)
               END AS data,
               false AS livemode,
               (SELECT row_to_json(q) FROM (SELECT e.request_id AS id,
                                                   e.idempotency_key) q) AS request
    ) o);
END
$$;

REVOKE ALL ON FUNCTION event_object(outbox_events) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION event_object(outbox_events) TO payments_app;

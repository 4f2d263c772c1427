-- R__webhook_endpoint_object.sql: the current definition of webhook_endpoint_object().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002; the versioned files keep its history.

-- The webhook endpoint object as the API renders it (the secret is shown only at creation).
CREATE OR REPLACE FUNCTION webhook_endpoint_object(w webhook_endpoints) RETURNS json
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

REVOKE ALL ON FUNCTION webhook_endpoint_object(webhook_endpoints) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_endpoint_object(webhook_endpoints) TO payments_app;

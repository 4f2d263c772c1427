-- R__charge_object.sql: the current definition of charge_object().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0001; the versioned files keep its history.

-- The charge object exactly as the API renders it (compact JSON, fixed key order).
CREATE OR REPLACE FUNCTION charge_object(c charges) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT row_to_json(o) FROM (
        SELECT c.id,
               'charge'::text AS object,
               c.amount,
               c.currency,
               c.status,
               c.source,
               c.description,
               c.metadata,
               c.amount_refunded,
               (c.amount_refunded = c.amount) AS refunded,
               c.failure_code,
               c.decline_code,
               floor(extract(epoch FROM c.created))::bigint AS created
    ) o);
END
$$;

REVOKE ALL ON FUNCTION charge_object(charges) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charge_object(charges) TO payments_app;

-- R__refund_object.sql: the current definition of refund_object().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0003; the versioned files keep its history.

-- The refund object exactly as the API renders it (compact JSON, fixed key order).
CREATE OR REPLACE FUNCTION refund_object(r refunds) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT row_to_json(o) FROM (
        SELECT r.id,
               'refund'::text AS object,
               r.amount,
               r.charge_id AS charge,
               r.currency,
               r.metadata,
               r.reason,
               r.status,
               floor(extract(epoch FROM r.created))::bigint AS created
    ) o);
END
$$;

REVOKE ALL ON FUNCTION refund_object(refunds) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION refund_object(refunds) TO payments_app;

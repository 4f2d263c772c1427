-- R__charge_object.sql: the current definition of charge_object().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0001; the versioned files keep its history.

/*
 * The charge object exactly as the API renders it (compact JSON, fixed key order).
 * Since 0010: captured and amount_captured (a NULL amount_captured, on charges
 * from before it, stands for the whole amount; a failed charge captured
 * nothing), and released_at/release_reason once an uncaptured authorization
 * was let go. refunded is true when a captured charge's captured amount was
 * refunded in full, or when an uncaptured one was released by a refund.
 */
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
               CASE WHEN c.status = 'succeeded' AND c.captured
                    THEN c.amount_refunded = coalesce(c.amount_captured, c.amount)
                    ELSE coalesce(c.release_reason = 'refunded', false) END AS refunded,
               (c.status = 'succeeded' AND c.captured) AS captured,
               CASE WHEN c.status = 'succeeded' AND c.captured
                    THEN coalesce(c.amount_captured, c.amount) ELSE 0 END AS amount_captured,
               floor(extract(epoch FROM c.released_at))::bigint AS released_at,
               c.release_reason,
               c.failure_code,
               c.decline_code,
               floor(extract(epoch FROM c.created))::bigint AS created
    ) o);
END
$$;

REVOKE ALL ON FUNCTION charge_object(charges) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charge_object(charges) TO payments_app;

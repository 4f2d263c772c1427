-- R__processor_resolve.sql: the current definition of processor_resolve().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created with migration 0060 (processor mode).

/*
 * processor_resolve: records the processor's definitive answer for a pending
 * charge, in one transaction: the final status ('succeeded', or 'failed' with
 * p_failure_code and p_decline_code), the processor's reference, the event
 * (charge.succeeded / charge.failed, id p_event_id, the charge object as it
 * now is) and the end of its processor job. Returns the charge's status
 * after the call: p_status when this call recorded it, or the status some
 * earlier call recorded (then nothing is written but the job's removal), or
 * NULL when there is no such charge. Two workers holding the same answer
 * (a lease that expired mid-call) thus write one outcome and one event.
 */
CREATE OR REPLACE FUNCTION processor_resolve(p_charge_id text, p_status text,
                                             p_failure_code text, p_decline_code text,
                                             p_processor_ref text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c charges%ROWTYPE;
BEGIN
    IF p_status NOT IN ('succeeded', 'failed') THEN
        RAISE EXCEPTION 'processor_resolve: status must be succeeded or failed'
            USING ERRCODE = 'PR063';
    END IF;
    UPDATE charges
       SET status = p_status,
           failure_code = CASE WHEN p_status = 'failed' THEN coalesce(p_failure_code, 'card_declined') END,
           decline_code = CASE WHEN p_status = 'failed' THEN p_decline_code END,
           processor_ref = p_processor_ref,
           captured = p_status = 'succeeded',
           amount_captured = CASE WHEN p_status = 'succeeded' THEN amount ELSE 0 END
     WHERE id = p_charge_id AND status = 'pending'
    RETURNING * INTO c;
    DELETE FROM processor_jobs WHERE charge_id = p_charge_id;
    IF c.id IS NULL THEN
        SELECT * INTO c FROM charges WHERE id = p_charge_id;
        RETURN c.status;
    END IF;
    INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                               idempotency_key, created)
    VALUES (p_event_id, c.user_id,
            CASE WHEN p_status = 'succeeded' THEN 'charge.succeeded' ELSE 'charge.failed' END,
            c.id, c.id, charge_object(c), c.request_id, c.idempotency_key, now());
    RETURN c.status;
END
$$;

REVOKE ALL ON FUNCTION processor_resolve(text, text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION processor_resolve(text, text, text, text, text, text) TO payments_app;

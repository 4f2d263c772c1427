-- R__processor_defer.sql: the current definition of processor_defer().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created with migration 0060 (processor mode).

/*
 * processor_defer: the outcome of an attempt is unknown (timeout, dropped
 * connection, 5xx, 409, 429): the charge stays pending and its job comes
 * due again after p_delay_ms, to be retried with the same idempotency key.
 * p_error says what happened (for the operator). A charge older than
 * p_max_wait_ms that is not yet flagged is flagged for review, once, with a
 * charge.review_required event (id p_event_id): its status stays pending,
 * nothing is guessed, and the worker keeps asking. Returns true when this
 * call flagged it.
 */
CREATE OR REPLACE FUNCTION processor_defer(p_charge_id text, p_delay_ms bigint, p_error text,
                                           p_max_wait_ms bigint, p_event_id text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c charges%ROWTYPE;
BEGIN
    UPDATE processor_jobs
       SET next_attempt_at = now() + p_delay_ms * interval '1 millisecond',
           last_error = left(p_error, 500)
     WHERE charge_id = p_charge_id;
    UPDATE charges SET review_required_at = now()
     WHERE id = p_charge_id AND status = 'pending' AND review_required_at IS NULL
       AND created <= now() - p_max_wait_ms * interval '1 millisecond'
    RETURNING * INTO c;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                               idempotency_key, created)
    VALUES (p_event_id, c.user_id, 'charge.review_required', c.id, c.id, charge_object(c),
            c.request_id, c.idempotency_key, now());
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION processor_defer(text, bigint, text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION processor_defer(text, bigint, text, bigint, text) TO payments_app;

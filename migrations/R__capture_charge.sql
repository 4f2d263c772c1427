-- R__capture_charge.sql: the current definition of capture_charge().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created with migration 0010 (authorize now, capture later).

/*
 * capture_charge: the whole database work of one POST /v1/charges/{id}/capture
 * in one round trip and one transaction: the idempotency row (inserted
 * first, as in create_refund), the charge's captured and amount_captured,
 * and the charge.captured event. p_amount NULL captures the whole authorized
 * amount; a smaller one captures that much and releases the rest.
 *
 * One conditional UPDATE (WHERE NOT captured AND released_at IS NULL) does
 * the check and the write, so of concurrent captures, or a capture racing
 * the expiry job or a releasing refund, exactly one changes the row; the
 * others wait for its row lock, see the new version and are refused. The
 * CHECK charges_capture_bounds keeps amount_captured within the amount.
 *
 * Refusals raise an SQLSTATE of class PR that src/err.c maps to the API's
 * error, and nothing is stored for them: PR404 no such charge of this user,
 * PR021 charge_already_captured, PR022 charge_expired_for_capture (released
 * by a refund or expired), PR023 charge_not_capturable (a failed charge), PR061 charge_pending,
 * PR001 amount_too_large (more than authorized).
 * Replay, mismatch and the concurrent-key wait behave as in create_charge;
 * a capture answers 200 with the charge object.
 */
CREATE OR REPLACE FUNCTION capture_charge(
    p_user_id text, p_key text, p_fingerprint bytea, p_ttl_ms bigint, p_wait_ms bigint,
    p_charge_id text, p_amount bigint, p_event_id text, p_request_id text,
    OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c charges%ROWTYPE;
    v_object json;
BEGIN
    -- The key first: a stored answer is returned as is; NULL means it is ours.
    SELECT k.outcome, k.status_code, k.body INTO outcome, status_code, body
      FROM idempotency_claim(p_user_id, p_key, p_fingerprint, p_ttl_ms, p_wait_ms, 200,
                             p_charge_id) k;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    LOOP
        UPDATE charges SET captured = true, amount_captured = coalesce(p_amount, amount)
         WHERE id = p_charge_id AND user_id = p_user_id AND status = 'succeeded'
           AND NOT captured AND released_at IS NULL AND coalesce(p_amount, amount) <= amount
        RETURNING * INTO c;
        EXIT WHEN FOUND;
        SELECT * INTO c FROM charges WHERE id = p_charge_id AND user_id = p_user_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'No such charge: %', p_charge_id USING ERRCODE = 'PR404';
        ELSIF c.status = 'pending' THEN
            RAISE EXCEPTION 'charge_pending' USING ERRCODE = 'PR061';
        ELSIF c.status <> 'succeeded' THEN
            RAISE EXCEPTION 'charge_not_capturable' USING ERRCODE = 'PR023';
        ELSIF c.captured THEN
            RAISE EXCEPTION 'charge_already_captured' USING ERRCODE = 'PR021';
        ELSIF c.released_at IS NOT NULL THEN
            RAISE EXCEPTION 'charge_expired_for_capture' USING ERRCODE = 'PR022';
        ELSIF p_amount > c.amount THEN
            RAISE EXCEPTION 'amount_too_large' USING ERRCODE = 'PR001';
        END IF;
        -- The row changed between the UPDATE and this read: look again.
    END LOOP;

    v_object := charge_object(c);
    outcome := 'created';
    status_code := 200;
    body := v_object::text;
    UPDATE idempotency_keys SET response_body = body
     WHERE user_id = p_user_id AND key = p_key;
    INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                               idempotency_key, created)
    VALUES (p_event_id, p_user_id, 'charge.captured', c.id, c.id, v_object, p_request_id, p_key,
            now());
END
$$;

REVOKE ALL ON FUNCTION capture_charge(text, text, bytea, bigint, bigint, text, bigint, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION capture_charge(text, text, bytea, bigint, bigint, text, bigint, text, text)
    TO payments_app;

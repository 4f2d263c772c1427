-- R__create_refund.sql: the current definition of create_refund().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0003; the versioned files keep its history.

/*
 * create_refund: the whole database work of one POST /v1/refunds in one
 * round trip and one transaction: the idempotency row, the refund, the
 * charge's amount_refunded (one conditional UPDATE, so concurrent refunds
 * can never exceed the amount), and the refund.created and charge.refunded
 * events. Refusals raise an SQLSTATE of class PR that src/err.c maps to
 * the API's error: PR404 no such charge of this user, PR001
 * amount_too_large, PR002 charge_already_refunded, PR003 charge_failed,
 * PR022 charge_expired_for_capture (an authorization that expired), PR061
 * charge_pending (processor mode: the outcome is not known yet), PR024
 * an amount other than the whole authorization of an uncaptured charge;
 * PR409 the charge stayed locked by another refund past p_wait_ms;
 * nothing is stored for them.
 *
 * Since 0010 refunds of a captured charge are bounded by amount_captured
 * (NULL on older charges: the amount), and a refund of an uncaptured charge
 * releases the authorization, as Stripe does: no money moved, the refund is
 * of the whole authorized amount (so amount_refunded still equals the sum
 * of the refunds), released_at and release_reason 'refunded' are set, and
 * the events are the same. Its conditional UPDATE (NOT captured AND
 * released_at IS NULL) races a capture or the expiry job on the row lock:
 * exactly one of them changes the row.
 * Replay, mismatch and the concurrent-key wait behave as in create_charge.
 */
CREATE OR REPLACE FUNCTION create_refund(
    p_user_id text, p_key text, p_fingerprint bytea, p_ttl_ms bigint, p_wait_ms bigint,
    p_refund_id text, p_charge_id text, p_amount bigint, p_reason text, p_metadata json,
    p_request_id text, p_refund_event_id text, p_charge_event_id text,
    OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c charges%ROWTYPE;
    r refunds%ROWTYPE;
    v_seen bigint;
    v_amount bigint;
    v_captured boolean;
BEGIN
    -- The key first: a stored answer is returned as is; NULL means it is ours.
    SELECT k.outcome, k.status_code, k.body INTO outcome, status_code, body
      FROM idempotency_claim(p_user_id, p_key, p_fingerprint, p_ttl_ms, p_wait_ms, 201,
                             p_refund_id) k;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    -- The charge's row lock first, in a block of its own, so that a wait for
    -- it that outlasts lock_timeout (another refund of the charge holding it)
    -- is told apart from a wait for the idempotency key: PR409, charge_busy.
    BEGIN
        PERFORM FROM charges WHERE id = p_charge_id AND user_id = p_user_id FOR NO KEY UPDATE;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'charge_busy' USING ERRCODE = 'PR409';
    END;

    -- One conditional UPDATE does the check and the write. With no amount,
    -- refund what is left: compare-and-set on the value seen, retried if a
    -- concurrent refund changed it.
    LOOP
        SELECT captured INTO v_captured FROM charges WHERE id = p_charge_id AND user_id = p_user_id;
        IF NOT coalesce(v_captured, true) THEN
            -- An uncaptured charge: release the whole authorization.
            UPDATE charges SET amount_refunded = amount, released_at = now(),
                               release_reason = 'refunded'
             WHERE id = p_charge_id AND user_id = p_user_id AND status = 'succeeded'
               AND NOT captured AND released_at IS NULL
               AND (p_amount IS NULL OR p_amount = amount)
            RETURNING * INTO c;
            v_amount := c.amount;
        ELSIF p_amount IS NOT NULL THEN
            v_amount := p_amount;
            UPDATE charges SET amount_refunded = amount_refunded + v_amount
             WHERE id = p_charge_id AND user_id = p_user_id AND status = 'succeeded' AND captured
               AND amount_refunded + v_amount <= coalesce(amount_captured, amount)
            RETURNING * INTO c;
        ELSE
            SELECT amount_refunded, coalesce(amount_captured, amount) - amount_refunded
              INTO v_seen, v_amount
              FROM charges WHERE id = p_charge_id AND user_id = p_user_id;
            UPDATE charges SET amount_refunded = coalesce(amount_captured, amount)
             WHERE id = p_charge_id AND user_id = p_user_id AND status = 'succeeded' AND captured
               AND amount_refunded = v_seen AND v_amount > 0
            RETURNING * INTO c;
        END IF;
        EXIT WHEN FOUND;
        SELECT * INTO c FROM charges WHERE id = p_charge_id AND user_id = p_user_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'No such charge: %', p_charge_id USING ERRCODE = 'PR404';
        ELSIF c.status = 'pending' THEN
            -- Processor mode (0060): the outcome is not known yet.
            RAISE EXCEPTION 'charge_pending' USING ERRCODE = 'PR061';
        ELSIF c.status <> 'succeeded' THEN
            RAISE EXCEPTION 'charge_failed' USING ERRCODE = 'PR003';
        ELSIF NOT c.captured AND c.release_reason = 'refunded' THEN
            RAISE EXCEPTION 'charge_already_refunded' USING ERRCODE = 'PR002';
        ELSIF NOT c.captured AND c.released_at IS NOT NULL THEN
            RAISE EXCEPTION 'charge_expired_for_capture' USING ERRCODE = 'PR022';
        ELSIF NOT c.captured AND p_amount IS NOT NULL AND p_amount <> c.amount THEN
            RAISE EXCEPTION 'an uncaptured charge is released in full' USING ERRCODE = 'PR024';
        ELSIF c.captured AND c.amount_refunded >= coalesce(c.amount_captured, c.amount) THEN
            RAISE EXCEPTION 'charge_already_refunded' USING ERRCODE = 'PR002';
        ELSIF c.captured AND p_amount IS NOT NULL
              AND c.amount_refunded + p_amount > coalesce(c.amount_captured, c.amount) THEN
            RAISE EXCEPTION 'amount_too_large' USING ERRCODE = 'PR001';
        END IF;
        -- A concurrent refund moved the total, or a capture came first: try again.
    END LOOP;

    r.id := p_refund_id;
    r.user_id := p_user_id;
    r.charge_id := c.id;
    r.amount := v_amount;
    r.currency := c.currency;
    r.reason := p_reason;
    r.metadata := p_metadata;
    r.status := 'succeeded';
    r.idempotency_key := p_key;
    r.request_id := p_request_id;
    r.created := now();
    INSERT INTO refunds VALUES (r.*);

    outcome := 'created';
    status_code := 201;
    body := refund_object(r)::text;
    UPDATE idempotency_keys SET response_body = body
     WHERE user_id = p_user_id AND key = p_key;

    INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                               idempotency_key, created)
    VALUES (p_refund_event_id, p_user_id, 'refund.created', r.id, c.id, refund_object(r),
            p_request_id, p_key, r.created),
           (p_charge_event_id, p_user_id, 'charge.refunded', c.id, c.id, charge_object(c),
            p_request_id, p_key, r.created);
END
$$;

REVOKE ALL ON FUNCTION create_refund(text, text, bytea, bigint, bigint, text, text, bigint, text, json, text, text,
                                 text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_refund(text, text, bytea, bigint, bigint, text, text, bigint, text, json, text, text,
                                 text) TO payments_app;

-- R__update_refund.sql: the current definition of update_refund().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created for POST /v1/refunds/{id} (the Stripe SDKs' refunds.update / Refund.modify).

/*
 * update_refund: the whole database work of one POST /v1/refunds/{id} in
 * one round trip and one transaction: the idempotency row, the refund's
 * metadata (merged by merge_metadata(), as update_charge does) and the
 * refund.updated event, whose data is the refund after the update. An
 * update that changes nothing writes no row of the refund and no event.
 * The refund's row lock is taken in a block of its own, as in update_charge.
 * Refusals, stored for none: PR404 no such refund of this user, PR409 the
 * row stayed locked past p_wait_ms (another update of the refund), PR051
 * more than p_metadata_max keys once merged. Replay, mismatch and the
 * concurrent-key wait behave as in create_charge; an update answers 200
 * with the refund object.
 */
CREATE OR REPLACE FUNCTION update_refund(
    p_user_id text, p_key text, p_fingerprint bytea, p_ttl_ms bigint, p_wait_ms bigint,
    p_refund_id text, p_metadata json, p_metadata_max integer, p_event_id text,
    p_request_id text,
    OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r refunds%ROWTYPE;
    v_metadata json;
BEGIN
    -- The key first: a stored answer is returned as is; NULL means it is ours.
    SELECT k.outcome, k.status_code, k.body INTO outcome, status_code, body
      FROM idempotency_claim(p_user_id, p_key, p_fingerprint, p_ttl_ms, p_wait_ms, 200,
                             p_refund_id) k;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    BEGIN
        SELECT * INTO r FROM refunds WHERE id = p_refund_id AND user_id = p_user_id
           FOR NO KEY UPDATE;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'refund_busy' USING ERRCODE = 'PR409';
    END;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'No such refund: %', p_refund_id USING ERRCODE = 'PR404';
    END IF;

    v_metadata := merge_metadata(r.metadata, p_metadata);
    IF (SELECT count(*) FROM json_object_keys(v_metadata)) > p_metadata_max THEN
        RAISE EXCEPTION 'metadata would have more than % keys', p_metadata_max
              USING ERRCODE = 'PR051';
    END IF;
    IF v_metadata::jsonb IS DISTINCT FROM r.metadata::jsonb THEN
        UPDATE refunds SET metadata = v_metadata WHERE id = r.id
        RETURNING * INTO r;
        INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                                   idempotency_key, created)
        VALUES (p_event_id, p_user_id, 'refund.updated', r.id, r.charge_id, refund_object(r),
                p_request_id, p_key, now());
    END IF;

    outcome := 'created';
    status_code := 200;
    body := refund_object(r)::text;
    UPDATE idempotency_keys SET response_body = body
     WHERE user_id = p_user_id AND key = p_key;
END
$$;

REVOKE ALL ON FUNCTION update_refund(text, text, bytea, bigint, bigint, text, json, integer, text,
                                     text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION update_refund(text, text, bytea, bigint, bigint, text, json, integer,
                                        text, text) TO payments_app;

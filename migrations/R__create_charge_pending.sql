-- R__create_charge_pending.sql: the current definition of create_charge_pending().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created with migration 0060 (processor mode).

/*
 * create_charge_pending: POST /v1/charges in processor mode, in one round
 * trip and one transaction. Like create_charge() (a stored key answers
 * 'replayed' or 'mismatch' and nothing is written; a concurrent request with
 * the key waits at most p_wait_ms, then SQLSTATE 55P03), but the outcome is
 * not decided here: the charge is inserted 'pending' (captured false until
 * the processor says succeeded), with its processor_jobs row and a
 * charge.pending event, and the stored answer is 201 with that pending
 * charge. The job keeps the description and metadata the processor is to
 * be sent, so that every attempt is the same request. The processor worker records the outcome (processor_resolve()).
 */
CREATE OR REPLACE FUNCTION create_charge_pending(
    p_user_id text, p_key text, p_fingerprint bytea, p_ttl_ms bigint, p_wait_ms bigint,
    p_charge_id text, p_event_id text, p_amount bigint, p_currency text, p_source text,
    p_description text, p_metadata json, p_request_id text,
    OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c charges%ROWTYPE;
    v_object json;
BEGIN
    SELECT k.outcome, k.status_code, k.body INTO outcome, status_code, body
      FROM idempotency_claim(p_user_id, p_key, p_fingerprint, p_ttl_ms, p_wait_ms, 201,
                             p_charge_id) k;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    c.id := p_charge_id;
    c.user_id := p_user_id;
    c.amount := p_amount;
    c.currency := p_currency;
    c.source := p_source;
    c.description := p_description;
    c.metadata := p_metadata;
    c.status := 'pending';
    c.amount_refunded := 0;
    c.captured := false;
    c.amount_captured := 0;
    c.idempotency_key := p_key;
    c.request_id := p_request_id;
    c.created := now();
    c.via_processor := true;
    INSERT INTO charges SELECT c.*;
    -- The request the processor is sent, as created: an update of the charge's
    -- description or metadata must not change a retry under the same key (0063).
    INSERT INTO processor_jobs (charge_id, created, description, metadata)
    VALUES (c.id, c.created, c.description, coalesce(c.metadata, '{}'::json));

    v_object := charge_object(c);
    outcome := 'created';
    status_code := 201;
    body := v_object::text;
    UPDATE idempotency_keys SET response_body = body WHERE user_id = p_user_id AND key = p_key;
    INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                               idempotency_key, created)
    VALUES (p_event_id, p_user_id, 'charge.pending', c.id, c.id, v_object, p_request_id, p_key,
            c.created);
END
$$;

REVOKE ALL ON FUNCTION create_charge_pending(text, text, bytea, bigint, bigint, text, text, bigint,
                                             text, text, text, json, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_charge_pending(text, text, bytea, bigint, bigint, text, text,
                                                bigint, text, text, text, json, text)
    TO payments_app;

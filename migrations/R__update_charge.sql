-- R__update_charge.sql: the current definition of update_charge().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created for POST /v1/charges/{id} (the Stripe SDKs' charges.update / Charge.modify).

/*
 * update_charge: the whole database work of one POST /v1/charges/{id} in one
 * round trip and one transaction: the idempotency row (inserted first, as
 * in capture_charge), the charge's description and metadata, and the
 * charge.updated event, whose data is the charge after the update.
 *
 * p_description NULL leaves the description, '' unsets it (null), anything
 * else replaces it. p_metadata is merged by merge_metadata() (NULL leaves
 * it; the JSON string "" clears it; an object sets its keys, "" removing
 * one). An update that changes nothing writes no row of the charge and no
 * event, and answers the charge as it is (the key still stores it).
 *
 * The charge's row lock is taken first, in a block of its own, so that a
 * wait for it that outlasts lock_timeout (a refund or capture of the charge
 * holding it) is told apart from a wait for the idempotency key.
 *
 * Refusals raise an SQLSTATE of class PR that src/err.c maps to the API's
 * error, and nothing is stored for them: PR404 no such charge of this user,
 * PR409 charge_busy (the row stayed locked past p_wait_ms), PR051
 * invalid_metadata (more than p_metadata_max keys once merged).
 * Replay, mismatch and the concurrent-key wait behave as in create_charge;
 * an update answers 200 with the charge object.
 */
CREATE OR REPLACE FUNCTION update_charge(
    p_user_id text, p_key text, p_fingerprint bytea, p_ttl_ms bigint, p_wait_ms bigint,
    p_charge_id text, p_description text, p_metadata json, p_metadata_max integer,
    p_event_id text, p_request_id text,
    OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c charges%ROWTYPE;
    v_description text;
    v_metadata json;
BEGIN
    -- The key first: a stored answer is returned as is; NULL means it is ours.
    SELECT k.outcome, k.status_code, k.body INTO outcome, status_code, body
      FROM idempotency_claim(p_user_id, p_key, p_fingerprint, p_ttl_ms, p_wait_ms, 200,
                             p_charge_id) k;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    BEGIN
        SELECT * INTO c FROM charges WHERE id = p_charge_id AND user_id = p_user_id
           FOR NO KEY UPDATE;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'charge_busy' USING ERRCODE = 'PR409';
    END;
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'No such charge: %', p_charge_id USING ERRCODE = 'PR404';
    END IF;

    v_description := CASE WHEN p_description IS NULL THEN c.description
                          ELSE nullif(p_description, '') END;
    v_metadata := merge_metadata(c.metadata, p_metadata);
    IF (SELECT count(*) FROM json_object_keys(v_metadata)) > p_metadata_max THEN
        RAISE EXCEPTION 'metadata would have more than % keys', p_metadata_max
              USING ERRCODE = 'PR051';
    END IF;
    IF v_description IS DISTINCT FROM c.description
       OR v_metadata::jsonb IS DISTINCT FROM c.metadata::jsonb THEN
        UPDATE charges SET description = v_description, metadata = v_metadata
         WHERE id = c.id
        RETURNING * INTO c;
        INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                                   idempotency_key, created)
        VALUES (p_event_id, p_user_id, 'charge.updated', c.id, c.id, charge_object(c),
                p_request_id, p_key, now());
    END IF;

    outcome := 'created';
    status_code := 200;
    body := charge_object(c)::text;
    UPDATE idempotency_keys SET response_body = body
     WHERE user_id = p_user_id AND key = p_key;
END
$$;

REVOKE ALL ON FUNCTION update_charge(text, text, bytea, bigint, bigint, text, text, json, integer,
                                     text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION update_charge(text, text, bytea, bigint, bigint, text, text, json, integer,
                                        text, text) TO payments_app;

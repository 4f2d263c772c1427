-- R__create_charge.sql: the current definition of create_charge().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0001; the versioned files keep its history.

/*
 * create_charge: the whole database work of one POST /v1/charges, in one
 * round trip and one transaction.
 *
 * A key already stored (and not expired) is answered from the stored row:
 * 'replayed' with the stored status and body when the fingerprint matches,
 * 'mismatch' otherwise; nothing is written. Otherwise the idempotency row,
 * the charge and its outbox event are inserted together and 'created' is
 * returned with the response. A concurrent request with the same key waits
 * for the first one's commit, at most p_wait_ms; past that it fails with
 * SQLSTATE 55P03 (lock_not_available), which the API answers with 409
 * idempotency_key_in_use and Retry-After.
 *
 * p_capture false (0010) only authorizes a succeeded charge: captured false,
 * amount_captured 0, the money held until capture_charge() or a release.
 *
 * p_error_body is the response body for a declined charge (status 'failed');
 * a succeeded charge's body is its charge object.
 *
 * expires_in_ms: how long the stored key has left, in the database's clock, for
 * 'created' and 'replayed' (a process may keep the response that long at most,
 * PAYMENTS_REPLAY_CACHE_TTL); NULL for 'mismatch'.
 *
 * The write path is kept to what it must do (make bench measures it against
 * three bare inserts): one index probe finds a stored key, live or expired
 * (only an expired one costs a DELETE), and the charge object is rendered
 * once for the response and the event.
 */
-- 0010 added p_capture: the signature before it is dropped first. The OUT parameter
-- expires_in_ms came later: a change of OUT parameters is a new return type, which
-- CREATE OR REPLACE cannot make, so the current signature is dropped too.
DROP FUNCTION IF EXISTS create_charge(text, text, bytea, bigint, bigint, text, text, bigint, text, text,
                                      text, json, text, text, text, text);
DROP FUNCTION IF EXISTS create_charge(text, text, bytea, bigint, bigint, text, text, bigint, text, text,
                                      text, json, text, text, text, text, boolean);
CREATE FUNCTION create_charge(
    p_user_id text, p_key text, p_fingerprint bytea, p_ttl_ms bigint, p_wait_ms bigint,
    p_charge_id text, p_event_id text, p_amount bigint, p_currency text, p_source text,
    p_description text, p_metadata json, p_failure_code text, p_decline_code text,
    p_error_body text, p_request_id text, p_capture boolean DEFAULT true,
    OUT outcome text, OUT status_code integer, OUT body text, OUT expires_in_ms bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k idempotency_keys%ROWTYPE;
    c charges%ROWTYPE;
    v_object json;
    v_expired boolean;
BEGIN
    -- Fast path for retries: a read-only lookup, no lock and no WAL.
    SELECT * INTO k FROM idempotency_keys WHERE user_id = p_user_id AND key = p_key;
    IF FOUND AND k.expires_at > now() THEN
        outcome := CASE WHEN k.fingerprint = p_fingerprint THEN 'replayed' ELSE 'mismatch' END;
        status_code := k.status_code;
        body := CASE WHEN outcome = 'replayed' THEN k.response_body END;
        expires_in_ms := CASE WHEN outcome = 'replayed'
                              THEN floor(extract(epoch FROM k.expires_at - now()) * 1000) END;
        RETURN;
    END IF;
    v_expired := FOUND;

    PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
    IF v_expired THEN
        -- A key past its TTL is treated as new.
        DELETE FROM idempotency_keys
         WHERE user_id = p_user_id AND key = p_key AND expires_at <= now();
    END IF;

    c.id := p_charge_id;
    c.user_id := p_user_id;
    c.amount := p_amount;
    c.currency := p_currency;
    c.source := p_source;
    c.description := p_description;
    c.metadata := p_metadata;
    c.status := CASE WHEN p_failure_code IS NULL THEN 'succeeded' ELSE 'failed' END;
    c.failure_code := p_failure_code;
    c.decline_code := p_decline_code;
    c.amount_refunded := 0;
    c.captured := c.status = 'succeeded' AND p_capture;
    c.amount_captured := CASE WHEN c.captured THEN p_amount ELSE 0 END;
    c.idempotency_key := p_key;
    c.request_id := p_request_id;
    c.created := now();
    status_code := CASE WHEN c.status = 'succeeded' THEN 201 ELSE 402 END;
    v_object := charge_object(c);
    body := CASE WHEN c.status = 'succeeded' THEN v_object::text ELSE p_error_body END;

    -- The key goes first: a concurrent request with the same key blocks here
    -- until this transaction ends, then sees the stored row.
    INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body,
                                  object_id, expires_at)
    VALUES (p_user_id, p_key, p_fingerprint, status_code, body, c.id,
            now() + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO k FROM idempotency_keys WHERE user_id = p_user_id AND key = p_key;
        IF NOT FOUND THEN
            -- The winner rolled back between our insert and this read: let the client retry.
            RAISE EXCEPTION 'idempotency key vanished' USING ERRCODE = 'lock_not_available';
        END IF;
        outcome := CASE WHEN k.fingerprint = p_fingerprint THEN 'replayed' ELSE 'mismatch' END;
        status_code := k.status_code;
        body := CASE WHEN outcome = 'replayed' THEN k.response_body END;
        expires_in_ms := CASE WHEN outcome = 'replayed'
                              THEN floor(extract(epoch FROM k.expires_at - now()) * 1000) END;
        RETURN;
    END IF;

    INSERT INTO charges SELECT c.*;
    INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                               idempotency_key, created)
    VALUES (p_event_id, p_user_id,
            CASE WHEN c.status = 'succeeded' THEN 'charge.succeeded' ELSE 'charge.failed' END,
            c.id, c.id, v_object, p_request_id, p_key, c.created);
    outcome := 'created';
    expires_in_ms := p_ttl_ms;
END
$$;

REVOKE ALL ON FUNCTION create_charge(text, text, bytea, bigint, bigint, text, text, bigint, text, text, text, json,
                                 text, text, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_charge(text, text, bytea, bigint, bigint, text, text, bigint, text, text, text, json,
                                 text, text, text, text, boolean) TO payments_app;

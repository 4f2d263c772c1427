-- R__idempotency_claim.sql: the current definition of idempotency_claim().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- The key-taking step shared by create_refund and capture_charge (both had it written out).

/*
 * idempotency_claim: takes p_key of p_user_id for a new idempotent write, in
 * the caller's transaction. A live stored key answers first, read-only:
 * outcome 'replayed' (stored status and body) or 'mismatch', and the caller
 * returns that as is. Otherwise an expired row is deleted and a row is
 * inserted with status p_status, an empty body (the caller stores its
 * response before it commits) and p_object_id; outcome NULL then means the
 * key is this transaction's. A concurrent request holding the key is waited
 * for at most p_wait_ms (lock_timeout: SQLSTATE 55P03, the API's 409
 * idempotency_key_in_use), and its stored answer is returned.
 * Called only from SECURITY DEFINER functions: payments_app cannot run it.
 */
CREATE OR REPLACE FUNCTION idempotency_claim(p_user_id text, p_key text, p_fingerprint bytea,
                                  p_ttl_ms bigint, p_wait_ms bigint, p_status integer,
                                  p_object_id text,
                                  OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    SELECT l.outcome, l.status_code, l.body INTO outcome, status_code, body
      FROM idempotency_lookup(p_user_id, p_key, p_fingerprint) l;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
    DELETE FROM idempotency_keys
     WHERE user_id = p_user_id AND key = p_key AND expires_at <= now();
    INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body,
                                  object_id, expires_at)
    VALUES (p_user_id, p_key, p_fingerprint, p_status, '', p_object_id,
            now() + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT l.outcome, l.status_code, l.body INTO outcome, status_code, body
          FROM idempotency_lookup(p_user_id, p_key, p_fingerprint) l;
        IF outcome IS NULL THEN
            -- The winner rolled back between our insert and this read: let the client retry.
            RAISE EXCEPTION 'idempotency key vanished' USING ERRCODE = 'lock_not_available';
        END IF;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION idempotency_claim(text, text, bytea, bigint, bigint, integer, text) FROM PUBLIC;

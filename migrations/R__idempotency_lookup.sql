-- R__idempotency_lookup.sql: the current definition of idempotency_lookup().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0003; the versioned files keep its history.

/*
 * idempotency_lookup: the read-only fast path shared by every idempotent
 * create: 'replayed' (stored status and body) when the live key's
 * fingerprint matches, 'mismatch' when it does not, NULL when there is no
 * live key.
 */
CREATE OR REPLACE FUNCTION idempotency_lookup(p_user_id text, p_key text, p_fingerprint bytea,
                                   OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN k.fingerprint = p_fingerprint THEN 'replayed' ELSE 'mismatch' END,
           k.status_code,
           CASE WHEN k.fingerprint = p_fingerprint THEN k.response_body END
      FROM idempotency_keys k
     WHERE k.user_id = p_user_id AND k.key = p_key AND k.expires_at > now()
$$;

REVOKE ALL ON FUNCTION idempotency_lookup(text, text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idempotency_lookup(text, text, bytea) TO payments_app;

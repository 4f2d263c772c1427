-- R__idempotency_keys_row_valid.sql: the current definition of idempotency_keys_row_valid(), the rules of a stored key.
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0050, which made it the table's one CHECK (idempotency_keys_row_check).

/*
 * idempotency_keys_row_valid: true when an idempotency_keys row's fingerprint,
 * key and status code are in range; otherwise check_violation (23514) naming the
 * rule as its own CHECK did (0001). Why a function, and what a change here does
 * not do: see R__charges_row_valid.sql.
 */
CREATE OR REPLACE FUNCTION idempotency_keys_row_valid(p_key text, p_fingerprint bytea, p_status_code integer)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_failed text;
BEGIN
    -- (rule) IS FALSE: a NULL passes, as in any CHECK; tried in the order of the old names.
    v_failed := CASE
        -- A SHA-256 of the request.
        WHEN (length(p_fingerprint) = 32) IS FALSE
            THEN 'idempotency_keys_fingerprint_check'
        WHEN (length(p_key) >= 1 AND length(p_key) <= 255) IS FALSE
            THEN 'idempotency_keys_key_check'
        WHEN (p_status_code >= 200 AND p_status_code <= 499) IS FALSE
            THEN 'idempotency_keys_status_code_check'
    END;
    IF v_failed IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "idempotency_keys" violates check constraint "%"', v_failed
            USING ERRCODE = 'check_violation', SCHEMA = 'public', TABLE = 'idempotency_keys', CONSTRAINT = v_failed;
    END IF;
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION idempotency_keys_row_valid(text, bytea, integer) FROM PUBLIC;

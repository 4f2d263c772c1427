-- 0050: each of charges, outbox_events and idempotency_keys keeps its rules in one
-- CHECK that calls an IMMUTABLE PL/pgSQL function, instead of one CHECK per rule.
-- PostgreSQL 15 reads back and prepares every CHECK expression at each INSERT or
-- UPDATE statement; for a new charge the twenty of them cost more of the database's
-- CPU than its b-tree inserts. create_charge() alone, 5,000 calls in one statement
-- (no commits), 3 interleaved runs: 158 -> 120 us per charge for charges' rules,
-- and about 6 us less again for the other two tables' five.
--
-- charges_status_check stays a CHECK of its own, as small as any: 0060 (processor
-- mode, numbered after this file but written before it) drops and re-adds it to
-- allow 'pending', so this file must leave it, and must not name 0060's
-- via_processor column, whichever order a database runs the two in.
--
-- The functions refuse a bad row with the SQLSTATE (23514), message and constraint
-- name of the CHECK that held the rule before, so nothing that reads a refusal
-- changes. Their current text lives in R__<function>.sql; they are created here
-- because the constraints need them now (the repeatables run after this file and
-- replace them with the same text).
--
-- Live: the new constraints are added NOT VALID (no scan under the ACCESS EXCLUSIVE
-- lock, taken for an instant under lock_timeout), and hold for every row written
-- from this commit on; the old ones, validated, are dropped in the same transaction,
-- so no row is ever written unchecked. 0051 validates the new ones under SHARE
-- UPDATE EXCLUSIVE, which lets charges keep flowing.

CREATE OR REPLACE FUNCTION charges_row_valid(
    p_id text, p_user_id text, p_amount bigint, p_currency text, p_source text,
    p_description text, p_status text, p_failure_code text, p_amount_refunded bigint,
    p_captured boolean, p_amount_captured bigint, p_released_at timestamptz,
    p_release_reason text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_failed text;
BEGIN
    -- Each rule is (rule) IS FALSE: a NULL passes, as in any CHECK (NOT NULL is the column's job).
    -- They are tried in the order PostgreSQL tried the constraints of the same names (by name).
    v_failed := CASE
        WHEN (p_amount >= 1 AND p_amount <= 99999999) IS FALSE
            THEN 'charges_amount_check'
        WHEN (p_amount_captured IS NULL OR (p_amount_captured >= 0 AND p_amount_captured <= p_amount)) IS FALSE
            THEN 'charges_capture_bounds'
        WHEN (p_currency ~ '^[a-z]{3}$') IS FALSE
            THEN 'charges_currency_check'
        WHEN (char_length(p_description) <= 1000) IS FALSE
            THEN 'charges_description_check'
        -- Only a succeeded charge can be refunded.
        WHEN (p_status = 'succeeded' OR p_amount_refunded = 0) IS FALSE
            THEN 'charges_failed_not_refunded'
        WHEN ((p_status = 'failed') = (p_failure_code IS NOT NULL)) IS FALSE
            THEN 'charges_failure_consistent'
        WHEN (p_id ~ '^ch_[0-9A-Za-z]{24}$') IS FALSE
            THEN 'charges_id_check'
        WHEN (p_amount_refunded >= 0 AND p_amount_refunded <= p_amount) IS FALSE
            THEN 'charges_refund_bounds'
        -- Refunds never exceed what was captured (an uncaptured charge released by a
        -- refund has its whole authorized amount refunded, as Stripe shows it).
        WHEN (NOT p_captured OR p_amount_refunded <= coalesce(p_amount_captured, p_amount)) IS FALSE
            THEN 'charges_refund_within_captured'
        WHEN ((p_released_at IS NULL) = (p_release_reason IS NULL)
              AND (p_released_at IS NULL OR NOT p_captured)
              AND (p_release_reason IS NULL OR p_release_reason IN ('refunded', 'expired'))) IS FALSE
            THEN 'charges_release_consistent'
        WHEN (length(p_source) >= 1 AND length(p_source) <= 255) IS FALSE
            THEN 'charges_source_check'
        WHEN (p_captured OR p_amount_refunded = 0 OR p_release_reason IS NOT DISTINCT FROM 'refunded') IS FALSE
            THEN 'charges_uncaptured_refund_is_release'
        WHEN (p_user_id ~ '^[A-Za-z0-9_.-]{1,64}$') IS FALSE
            THEN 'charges_user_id_check'
    END;
    IF v_failed IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "charges" violates check constraint "%"', v_failed
            USING ERRCODE = 'check_violation', SCHEMA = 'public', TABLE = 'charges', CONSTRAINT = v_failed;
    END IF;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION outbox_events_row_valid(p_id text, p_type text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_failed text;
BEGIN
    -- (rule) IS FALSE: a NULL passes, as in any CHECK; tried in the order of the old names.
    v_failed := CASE
        WHEN (p_id ~ '^evt_[0-9A-Za-z]{24}$') IS FALSE
            THEN 'outbox_events_id_check'
        WHEN (p_type ~ '^[a-z_]+\.[a-z_.]+$') IS FALSE
            THEN 'outbox_events_type_check'
    END;
    IF v_failed IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "outbox_events" violates check constraint "%"', v_failed
            USING ERRCODE = 'check_violation', SCHEMA = 'public', TABLE = 'outbox_events', CONSTRAINT = v_failed;
    END IF;
    RETURN true;
END
$$;

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

REVOKE ALL ON FUNCTION charges_row_valid(text, text, bigint, text, text, text, text, text, bigint, boolean, bigint,
                                         timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox_events_row_valid(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION idempotency_keys_row_valid(text, bytea, integer) FROM PUBLIC;

ALTER TABLE charges
    ADD CONSTRAINT charges_row_check
        CHECK (charges_row_valid(id, user_id, amount, currency, source, description, status, failure_code,
                                 amount_refunded, captured, amount_captured, released_at, release_reason)) NOT VALID,
    DROP CONSTRAINT charges_amount_check,
    DROP CONSTRAINT charges_capture_bounds,
    DROP CONSTRAINT charges_currency_check,
    DROP CONSTRAINT charges_description_check,
    DROP CONSTRAINT charges_failed_not_refunded,
    DROP CONSTRAINT charges_failure_consistent,
    DROP CONSTRAINT charges_id_check,
    DROP CONSTRAINT charges_refund_bounds,
    DROP CONSTRAINT charges_refund_within_captured,
    DROP CONSTRAINT charges_release_consistent,
    DROP CONSTRAINT charges_source_check,
    DROP CONSTRAINT charges_uncaptured_refund_is_release,
    DROP CONSTRAINT charges_user_id_check;

ALTER TABLE outbox_events
    ADD CONSTRAINT outbox_events_row_check CHECK (outbox_events_row_valid(id, type)) NOT VALID,
    DROP CONSTRAINT outbox_events_id_check,
    DROP CONSTRAINT outbox_events_type_check;

ALTER TABLE idempotency_keys
    ADD CONSTRAINT idempotency_keys_row_check
        CHECK (idempotency_keys_row_valid(key, fingerprint, status_code)) NOT VALID,
    DROP CONSTRAINT idempotency_keys_fingerprint_check,
    DROP CONSTRAINT idempotency_keys_key_check,
    DROP CONSTRAINT idempotency_keys_status_code_check;

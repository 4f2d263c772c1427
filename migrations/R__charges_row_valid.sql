-- R__charges_row_valid.sql: the current definition of charges_row_valid(), the rules of a charges row.
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0050, which made it the table's one CHECK (charges_row_check).

/*
 * charges_row_valid: true when a charges row keeps every rule below; otherwise it
 * raises check_violation (23514) naming the rule, with the message and constraint
 * name PostgreSQL gave when each rule was a CHECK of its own (0001 to 0013), so
 * callers and tests see the same refusals. The status's values
 * (charges_status_check, widened by 0060) and via_processor's are still CHECKs of
 * their own (see 0050).
 *
 * Why one function rather than fifteen CHECKs: PostgreSQL 15 reads every CHECK's
 * stored expression back (stringToNode) and prepares it at each INSERT or UPDATE
 * statement; the fourteen cost a new charge more CPU than its b-tree inserts
 * (make bench, README Performance). One CHECK that calls this function is a small
 * tree; the function's plan is cached in each backend, and the rules are one CASE,
 * a single expression on the common path.
 *
 * Changing a rule here does not re-check existing rows (PostgreSQL cannot know an
 * IMMUTABLE function changed): a narrower rule goes with a versioned migration that
 * checks the rows first. No SET search_path (it would cost a GUC save and restore
 * per row): the function touches no table, and pg_catalog is searched first for
 * its operators and functions whatever the caller's path.
 */
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

REVOKE ALL ON FUNCTION charges_row_valid(text, text, bigint, text, text, text, text, text, bigint, boolean, bigint,
                                         timestamptz, text) FROM PUBLIC;

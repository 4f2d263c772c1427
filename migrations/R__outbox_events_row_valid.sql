-- R__outbox_events_row_valid.sql: the current definition of outbox_events_row_valid(), the rules of an outbox row.
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0050, which made it the table's one CHECK (outbox_events_row_check).

/*
 * outbox_events_row_valid: true when an outbox_events row's id and type have their
 * formats; otherwise check_violation (23514) naming the rule as its own CHECK did
 * (0001). Why a function, and what a change here does not do: see
 * R__charges_row_valid.sql.
 */
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

REVOKE ALL ON FUNCTION outbox_events_row_valid(text, text) FROM PUBLIC;

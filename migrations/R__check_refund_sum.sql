-- R__check_refund_sum.sql: the current definition of check_refund_sum() and its triggers.
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0003; the versioned files keep its history.

/*
 * Money stays consistent: at commit, every charge touched has
 * amount_refunded equal to the sum of its refunds (and the CHECK on charges
 * keeps that sum within the amount). Deferred, so a refund and its charge
 * update may come in either order inside one transaction. Every way to
 * break the equality is covered: refunds inserted, updated (also moved to
 * another charge) or deleted, and charges inserted or updated.
 */
CREATE OR REPLACE FUNCTION check_refund_sum() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_charge text;
    v_refunded bigint;
    v_sum bigint;
BEGIN
    -- TG_ARGV[0] names the column holding the charge id: charge_id on refunds, id on charges.
    FOREACH v_charge IN ARRAY ARRAY[to_jsonb(OLD) ->> TG_ARGV[0], to_jsonb(NEW) ->> TG_ARGV[0]] LOOP
        CONTINUE WHEN v_charge IS NULL;
        SELECT amount_refunded INTO v_refunded FROM charges WHERE id = v_charge;
        CONTINUE WHEN NOT FOUND;   -- the charge itself is gone: nothing left to compare
        SELECT coalesce(sum(amount), 0) INTO v_sum FROM refunds WHERE charge_id = v_charge;
        IF v_refunded <> v_sum THEN
            RAISE EXCEPTION 'charge %: amount_refunded % does not equal the sum of its refunds %',
                v_charge, v_refunded, v_sum USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- The triggers that call it. A constraint trigger cannot be replaced in
-- place, so each is dropped and created again in this file's transaction.
DROP TRIGGER IF EXISTS refunds_sum_matches ON refunds;
CREATE CONSTRAINT TRIGGER refunds_sum_matches AFTER INSERT OR UPDATE OR DELETE ON refunds
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_refund_sum('charge_id');
DROP TRIGGER IF EXISTS charges_refunded_matches ON charges;
CREATE CONSTRAINT TRIGGER charges_refunded_matches AFTER UPDATE OF amount_refunded ON charges
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_refund_sum('id');
-- A new charge starts with nothing refunded: only one claiming otherwise needs the check,
-- which keeps the trigger off the path of every new charge.
DROP TRIGGER IF EXISTS charges_inserted_refunded ON charges;
CREATE CONSTRAINT TRIGGER charges_inserted_refunded AFTER INSERT ON charges
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.amount_refunded <> 0)
    EXECUTE FUNCTION check_refund_sum('id');

REVOKE ALL ON FUNCTION check_refund_sum() FROM PUBLIC;

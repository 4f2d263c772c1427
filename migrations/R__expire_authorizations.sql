-- R__expire_authorizations.sql: the current definition of expire_authorizations().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created with migration 0010 (authorize now, capture later).

/*
 * expire_authorizations: releases up to p_batch authorizations not captured
 * within p_ttl_ms of their creation (released_at now, release_reason
 * 'expired'), each with a charge.expired event in the same transaction, and
 * returns how many. The batch is locked FOR UPDATE SKIP LOCKED, so a row a
 * capture or refund holds right now is left for the next sweep, and the
 * UPDATE re-checks NOT captured AND released_at IS NULL on the row it locked:
 * of a capture and the expiry of one charge, exactly one changes it. The
 * partial index charges_uncaptured_created_idx (0012) serves the search.
 * Run by every serve's housekeeping thread (purge.c).
 */
CREATE OR REPLACE FUNCTION expire_authorizations(p_ttl_ms bigint, p_batch integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c charges%ROWTYPE;
    n bigint := 0;
BEGIN
    -- The batch is a MATERIALIZED CTE so that it is chosen once: as an IN
    -- (subquery) the planner may rescan it, and each rescan would pick rows
    -- past the LIMIT (those just released no longer qualify).
    FOR c IN
        WITH batch AS MATERIALIZED (
            SELECT id FROM charges
             WHERE status = 'succeeded' AND NOT captured AND released_at IS NULL
               AND created <= now() - p_ttl_ms * interval '1 millisecond'
             ORDER BY created LIMIT p_batch FOR UPDATE SKIP LOCKED)
        UPDATE charges ch SET released_at = now(), release_reason = 'expired'
          FROM batch
         WHERE ch.id = batch.id
           AND ch.status = 'succeeded' AND NOT ch.captured AND ch.released_at IS NULL
        RETURNING ch.*
    LOOP
        INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, created)
        VALUES (random_id('evt_'), c.user_id, 'charge.expired', c.id, c.id, charge_object(c),
                c.released_at);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION expire_authorizations(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION expire_authorizations(bigint, integer) TO payments_app;

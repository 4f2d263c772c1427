-- R__relay_replay.sql: the current definition of relay_replay().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002; the versioned files keep its history.

/*
 * relay_replay: puts a dead (or delivered) delivery back in the queue with a
 * fresh set of attempts: same event, so the same webhook-id. p_user_id NULL
 * (the operator's CLI) skips the ownership check. Returns the delivery
 * object, or NULL when there is no such delivery of that user; a delivery
 * whose endpoint was deleted is refused with SQLSTATE PR004 (src/err.c).
 * A replayed delivery keeps its last 50 attempts (what its object shows)
 * and forgets older ones, so repeated replays cannot grow it without bound.
 */
CREATE OR REPLACE FUNCTION relay_replay(p_id text, p_user_id text) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d webhook_deliveries%ROWTYPE;
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_deliveries x JOIN webhook_endpoints w ON w.id = x.endpoint_id
                WHERE x.id = p_id AND (p_user_id IS NULL OR x.user_id = p_user_id)
                  AND (w.deleted_at IS NOT NULL OR w.status <> 'enabled')) THEN
        RAISE EXCEPTION 'endpoint_deleted' USING ERRCODE = 'PR004';
    END IF;
    UPDATE webhook_deliveries
       SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL
     WHERE id = p_id AND (p_user_id IS NULL OR user_id = p_user_id)
       AND status IN ('dead', 'succeeded')
    RETURNING * INTO d;
    IF FOUND THEN
        DELETE FROM webhook_attempts
         WHERE delivery_id = d.id
           AND seq < (SELECT a.seq FROM webhook_attempts a WHERE a.delivery_id = d.id
                       ORDER BY a.seq DESC OFFSET 49 LIMIT 1);
    ELSE
        SELECT * INTO d FROM webhook_deliveries
         WHERE id = p_id AND (p_user_id IS NULL OR user_id = p_user_id);
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN webhook_delivery_object(d);
END
$$;

REVOKE ALL ON FUNCTION relay_replay(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_replay(text, text) TO payments_app;

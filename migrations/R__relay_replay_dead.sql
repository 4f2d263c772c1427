-- R__relay_replay_dead.sql: the current definition of relay_replay_dead().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0004; the versioned files keep its history.

-- Requeues every dead delivery (of one endpoint when given); same events, same webhook-ids.
-- Deliveries of deleted or disabled endpoints stay dead. Each keeps its last 50 attempts
-- (what its object shows) and forgets older ones, as in relay_replay.
CREATE OR REPLACE FUNCTION relay_replay_dead(p_endpoint_id text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH u AS (
        UPDATE webhook_deliveries
           SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL
         WHERE status = 'dead' AND (p_endpoint_id IS NULL OR endpoint_id = p_endpoint_id)
           AND endpoint_id IN (SELECT id FROM webhook_endpoints
                                WHERE deleted_at IS NULL AND status = 'enabled')
        RETURNING id
    ), forgotten AS (
        DELETE FROM webhook_attempts a USING u
         WHERE a.delivery_id = u.id
           AND a.seq < (SELECT x.seq FROM webhook_attempts x WHERE x.delivery_id = u.id
                         ORDER BY x.seq DESC OFFSET 49 LIMIT 1)
    )
    SELECT count(*) FROM u
$$;

REVOKE ALL ON FUNCTION relay_replay_dead(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_replay_dead(text) TO payments_app;

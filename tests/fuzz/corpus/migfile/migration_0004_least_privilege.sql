-- 0004: the application role payments_app and the only privileges it needs.
--
-- The API and the relay connect as a login role that is a member of
-- payments_app (GRANT payments_app TO <login>). They may read every table,
-- but every write goes through a SECURITY DEFINER function meant for it:
-- no direct UPDATE or DELETE of charges, refunds, idempotency keys or the
-- outbox's history. Migrations and 'payments keys' run as the owner.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'payments_app') THEN
        CREATE ROLE payments_app NOLOGIN;
    END IF;
END
$$;

-- Writes the service needs besides create_charge and create_refund.
CREATE FUNCTION purge_idempotency_keys(p_batch integer) RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (
        DELETE FROM idempotency_keys WHERE ctid IN (
            SELECT ctid FROM idempotency_keys WHERE expires_at <= now()
             ORDER BY expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) FROM d
$$;

CREATE FUNCTION purge_published_events(p_retention_ms bigint, p_batch integer) RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (
        DELETE FROM outbox_events WHERE seq IN (
            SELECT seq FROM outbox_events
             WHERE published_at IS NOT NULL
               AND created < now() - p_retention_ms * interval '1 millisecond'
             ORDER BY seq LIMIT p_batch FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) FROM d
$$;

-- Disables an endpoint of the user; its pending deliveries die with it, keeping their history.
CREATE FUNCTION delete_webhook_endpoint(p_id text, p_user_id text) RETURNS boolean
LANGUAGE sql AS $$
    WITH w AS (
        UPDATE webhook_endpoints SET deleted_at = now(), status = 'disabled'
         WHERE id = p_id AND user_id = p_user_id AND deleted_at IS NULL
        RETURNING id
    ), d AS (
        UPDATE webhook_deliveries SET status = 'dead', locked_until = NULL,
               last_error = 'endpoint deleted'
         WHERE endpoint_id IN (SELECT id FROM w) AND status = 'pending'
    )
    SELECT count(*) > 0 FROM w
$$;

-- Requeues every dead delivery (of one endpoint when given); same events, same webhook-ids.
CREATE FUNCTION relay_replay_dead(p_endpoint_id text) RETURNS bigint
LANGUAGE sql AS $$
    WITH u AS (
        UPDATE webhook_deliveries
           SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL
         WHERE status = 'dead' AND (p_endpoint_id IS NULL OR endpoint_id = p_endpoint_id)
        RETURNING 1)
    SELECT count(*) FROM u
$$;

-- Every writing function runs as its owner, with a fixed search_path.
ALTER FUNCTION create_charge(text, text, bytea, bigint, bigint, text, text, bigint, text, text,
                             text, json, text, text, text, text)
    SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION create_refund(text, text, bytea, bigint, bigint, text, text, bigint, text, json,
                             text, text, text)
    SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION relay_fanout(integer) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION relay_claim(integer, bigint) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION relay_record(json) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION relay_replay(text, text) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION relay_replay_dead(text) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION purge_idempotency_keys(integer) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION purge_published_events(bigint, integer)
    SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION delete_webhook_endpoint(text, text)
    SECURITY DEFINER SET search_path = public, pg_temp;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO payments_app;
GRANT SELECT ON api_keys, charges, refunds, idempotency_keys, outbox_events, webhook_endpoints,
                webhook_deliveries, webhook_attempts TO payments_app;
GRANT INSERT ON webhook_endpoints TO payments_app;
GRANT EXECUTE ON FUNCTION
    charge_object(charges), refund_object(refunds), event_object(outbox_events),
    webhook_endpoint_object(webhook_endpoints), webhook_delivery_object(webhook_deliveries),
    idempotency_lookup(text, text, bytea), list_page(text, text, integer, text, text, timestamptz,
                                                     timestamptz, text, text),
    create_charge(text, text, bytea, bigint, bigint, text, text, bigint, text, text, text, json,
                  text, text, text, text),
    create_refund(text, text, bytea, bigint, bigint, text, text, bigint, text, json, text, text,
                  text),
    relay_fanout(integer), relay_claim(integer, bigint), relay_record(json),
    relay_replay(text, text), relay_replay_dead(text), purge_idempotency_keys(integer),
    purge_published_events(bigint, integer), delete_webhook_endpoint(text, text)
    TO payments_app;

-- R__delete_webhook_endpoint.sql: the current definition of delete_webhook_endpoint().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0004; the versioned files keep its history.

-- Disables an endpoint of the user; its pending deliveries die with it, keeping their history.
CREATE OR REPLACE FUNCTION delete_webhook_endpoint(p_id text, p_user_id text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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

REVOKE ALL ON FUNCTION delete_webhook_endpoint(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION delete_webhook_endpoint(text, text) TO payments_app;

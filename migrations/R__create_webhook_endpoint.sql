-- R__create_webhook_endpoint.sql: the current definition of create_webhook_endpoint().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.

/*
 * create_webhook_endpoint: inserts an endpoint of p_user_id unless the user
 * already has p_max endpoints that are not deleted (then SQLSTATE PR031,
 * webhook_endpoints_limit in src/err.c; nothing is stored). The count and
 * the insert run under a transaction-scoped advisory lock of the user, so
 * concurrent creates of one user queue and can never pass the limit
 * together, while other users' creates never wait for them.
 * p_enabled_events is a JSON array of event types. Returns the endpoint
 * object (without the secret, which the API adds to its answer once).
 */
CREATE OR REPLACE FUNCTION create_webhook_endpoint(p_id text, p_user_id text, p_url text,
                                                   p_enabled_events json, p_secret text,
                                                   p_max integer) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    w webhook_endpoints%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('payments/webhook_endpoints/' || p_user_id, 0));
    -- Served by webhook_endpoints_user_idx (user_id, ... WHERE deleted_at IS NULL).
    IF (SELECT count(*) FROM webhook_endpoints
         WHERE user_id = p_user_id AND deleted_at IS NULL) >= p_max THEN
        RAISE EXCEPTION 'webhook_endpoints_limit %', p_max USING ERRCODE = 'PR031';
    END IF;
    INSERT INTO webhook_endpoints (id, user_id, url, enabled_events, secret)
    VALUES (p_id, p_user_id, p_url, ARRAY(SELECT json_array_elements_text(p_enabled_events)),
            p_secret)
    RETURNING * INTO w;
    RETURN webhook_endpoint_object(w);
END
$$;

REVOKE ALL ON FUNCTION create_webhook_endpoint(text, text, text, json, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_webhook_endpoint(text, text, text, json, text, integer) TO payments_app;

-- R__merge_metadata.sql: the current definition of merge_metadata().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created for POST /v1/charges/{id} and POST /v1/refunds/{id} (update_charge, update_refund).

/*
 * merge_metadata: an object's metadata after an update, as Stripe merges it.
 * p_update is the request's metadata: NULL leaves p_current as it is; the
 * JSON string "" removes every key; an object sets its keys, a key given ""
 * being removed, and leaves the other keys of p_current alone. The result
 * keeps p_current's key order, with new keys after it in p_update's order,
 * and is compact JSON like the metadata a create stores (the service
 * renders the stored text as it is). Both are objects of string values
 * (the API validated p_update; create stored p_current), without duplicate
 * keys.
 */
CREATE OR REPLACE FUNCTION merge_metadata(p_current json, p_update json) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_update IS NULL THEN p_current
        WHEN json_typeof(p_update) <> 'object' THEN '{}'::json
        ELSE (SELECT coalesce('{' || string_agg(to_json(m.key)::text || ':' || m.value::text, ','
                                                ORDER BY m.added, m.pos) || '}', '{}')::json
                FROM (SELECT c.key, coalesce(u.value, c.value) AS value, false AS added, c.pos
                        FROM json_each(p_current) WITH ORDINALITY AS c(key, value, pos)
                        LEFT JOIN json_each(p_update) AS u ON u.key = c.key
                       WHERE u.value IS NULL OR u.value #>> '{}' <> ''
                      UNION ALL
                      SELECT u.key, u.value, true, u.pos
                        FROM json_each(p_update) WITH ORDINALITY AS u(key, value, pos)
                       WHERE u.value #>> '{}' <> ''
                         AND NOT EXISTS (SELECT FROM json_each(p_current) AS c WHERE c.key = u.key)
                     ) m)
    END
$$;

REVOKE ALL ON FUNCTION merge_metadata(json, json) FROM PUBLIC;

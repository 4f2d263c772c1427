-- R__previous_metadata.sql: the current definition of previous_metadata().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created for the previous_attributes of charge.updated and refund.updated (0080).

/*
 * previous_metadata: what an update changed in an object's metadata, as
 * Stripe's events report it in data.previous_attributes.metadata: each key
 * whose value differs between p_old and p_new, with its value in p_old, or
 * null for a key p_old did not have. NULL when nothing changed. Keys come in
 * p_old's order, then the added ones in p_new's.
 */
CREATE OR REPLACE FUNCTION previous_metadata(p_old json, p_new json) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_object_agg(k.key, k.value ORDER BY k.added, k.pos)
      FROM (SELECT o.key, o.value, false AS added, o.pos
              FROM json_each(p_old) WITH ORDINALITY AS o(key, value, pos)
             WHERE (p_new -> o.key)::jsonb IS DISTINCT FROM o.value::jsonb
            UNION ALL
            SELECT n.key, 'null'::json, true, n.pos
              FROM json_each(p_new) WITH ORDINALITY AS n(key, value, pos)
             WHERE p_old -> n.key IS NULL) k
$$;

REVOKE ALL ON FUNCTION previous_metadata(json, json) FROM PUBLIC;

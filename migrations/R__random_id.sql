-- R__random_id.sql: the current definition of random_id().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002; the versioned files keep its history.

-- prefix + 24 characters from two v4 UUIDs (gen_random_uuid draws from a strong random source).
CREATE OR REPLACE FUNCTION random_id(prefix text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT prefix || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)
                  || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)
$$;

REVOKE ALL ON FUNCTION random_id(text) FROM PUBLIC;

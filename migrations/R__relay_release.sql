-- R__relay_release.sql: the current definition of relay_release().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002; the versioned files keep its history.

-- Gives back leases of deliveries a stopping relay did not finish ({id, lease} JSON array).
CREATE OR REPLACE FUNCTION relay_release(p_leases json) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE webhook_deliveries d SET locked_until = NULL
      FROM json_to_recordset(p_leases) AS r(id text, lease text)
     WHERE d.id = r.id AND d.status = 'pending' AND d.locked_until = r.lease::timestamptz
$$;

REVOKE ALL ON FUNCTION relay_release(json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_release(json) TO payments_app;

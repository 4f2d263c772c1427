-- R__relay_record.sql: the current definition of relay_record().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0002; the versioned files keep its history.

/*
 * relay_record: stores the outcome of a batch of attempts in one round trip.
 * p_results is a JSON array of {id, lease, ok, code, error, duration_ms,
 * delay_ms, dead}: delay_ms is the backoff before the next attempt (ignored
 * on success); dead marks a delivery that used its last attempt. Every
 * attempt is kept in the history, but a delivery changes only while it is
 * pending under the same lease: not after its endpoint was deleted (it is
 * dead then), nor after another relay took it over.
 */
CREATE OR REPLACE FUNCTION relay_record(p_results json) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH r AS (
        SELECT * FROM json_to_recordset(p_results)
                   AS t(id text, lease text, ok boolean, code integer, error text,
                        duration_ms integer, delay_ms bigint, dead boolean)
    ), attempts AS (
        INSERT INTO webhook_attempts (delivery_id, status_code, error, duration_ms)
        SELECT id, code, error, duration_ms FROM r
    )
    UPDATE webhook_deliveries d
       SET attempts = d.attempts + 1,
           status = CASE WHEN r.ok THEN 'succeeded' WHEN r.dead THEN 'dead' ELSE 'pending' END,
           delivered_at = CASE WHEN r.ok THEN now() END,
           next_attempt_at = CASE WHEN r.ok OR r.dead THEN d.next_attempt_at
                                  ELSE now() + r.delay_ms * interval '1 millisecond' END,
           locked_until = NULL,
           last_status_code = r.code,
           last_error = r.error
      FROM r
     -- The deliveries are found by their ids (d.id = ANY: primary-key probes), and
     -- (status = 'pending') IS TRUE, the same test, keeps the partial indexes on pending
     -- deliveries out of the plan: with statistics from before a burst (few pending, a
     -- small table) the planner read every pending delivery per call, through
     -- webhook_deliveries_due_idx, or the whole table (sql-tests/022).
     WHERE d.id = ANY (ARRAY(SELECT id FROM r)) AND d.id = r.id
       AND (d.status = 'pending') IS TRUE AND d.locked_until = r.lease::timestamptz
$$;

REVOKE ALL ON FUNCTION relay_record(json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_record(json) TO payments_app;

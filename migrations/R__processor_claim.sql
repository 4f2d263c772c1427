-- R__processor_claim.sql: the current definition of processor_claim().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created with migration 0060 (processor mode).

/*
 * processor_claim: leases up to p_batch due processor jobs to the caller for
 * p_lease_ms (their next_attempt_at moves past the lease, so a worker that
 * dies holding them gives them up when it ends) and returns what the
 * processor call needs, with the attempt number (1 for the first) and the
 * charge's age. The description and metadata are the job's (0063): the
 * charge's as created, since a retry under the same key must be the same
 * request even if POST /v1/charges/{id} changed the charge meanwhile.
 * SKIP LOCKED: workers running side by side take different jobs.
 */
CREATE OR REPLACE FUNCTION processor_claim(p_batch integer, p_lease_ms bigint)
RETURNS TABLE (charge_id text, user_id text, amount bigint, currency text, source text,
               description text, metadata text, attempts integer, age_ms bigint, flagged boolean)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH due AS (
        SELECT j.charge_id FROM processor_jobs j
         WHERE j.next_attempt_at <= now()
         ORDER BY j.next_attempt_at
         LIMIT p_batch
           FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE processor_jobs j
           SET attempts = j.attempts + 1,
               next_attempt_at = now() + p_lease_ms * interval '1 millisecond'
          FROM due WHERE j.charge_id = due.charge_id
        RETURNING j.charge_id, j.attempts, j.description, j.metadata
    )
    SELECT c.id, c.user_id, c.amount, c.currency, c.source,
           CASE WHEN l.metadata IS NULL THEN c.description ELSE l.description END,
           coalesce(l.metadata, c.metadata)::text,
           l.attempts, (extract(epoch FROM now() - c.created) * 1000)::bigint,
           c.review_required_at IS NOT NULL
      FROM leased l JOIN charges c ON c.id = l.charge_id;
$$;

REVOKE ALL ON FUNCTION processor_claim(integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION processor_claim(integer, bigint) TO payments_app;

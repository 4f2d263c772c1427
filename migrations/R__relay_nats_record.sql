-- R__relay_nats_record.sql: the current definition of relay_nats_record().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0005; the versioned files keep its history.

/*
 * relay_nats_record: after a publish round, marks the events JetStream
 * acknowledged (p_published) and releases the lease of those it did not
 * (p_failed) so that any relay retries them. Returns how many were marked.
 */
CREATE OR REPLACE FUNCTION relay_nats_record(p_published bigint[], p_failed bigint[]) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH released AS (
        UPDATE outbox_events SET nats_locked_until = NULL
         WHERE seq = ANY (p_failed) AND nats_published_at IS NULL
    ), marked AS (
        UPDATE outbox_events SET nats_published_at = now(), nats_locked_until = NULL
         WHERE seq = ANY (p_published) AND nats_published_at IS NULL
        RETURNING 1
    )
    SELECT count(*) FROM marked
$$;

REVOKE ALL ON FUNCTION relay_nats_record(bigint[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relay_nats_record(bigint[], bigint[]) TO payments_app;

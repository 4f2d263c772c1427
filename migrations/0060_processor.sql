-- 0060: processor mode (PAYMENTS_PROCESSOR_URL). A charge is created
-- 'pending' with a processor_jobs row in the same transaction; the processor
-- worker ('payments processor') carries it to the processor and records the
-- outcome. See README "Processor mode".
--
-- The status check is widened NOT VALID (every existing row satisfies the
-- wider check; no scan under the ACCESS EXCLUSIVE lock); 0061 validates it.
ALTER TABLE charges DROP CONSTRAINT charges_status_check;
ALTER TABLE charges
    ADD CONSTRAINT charges_status_check
        CHECK (status IN ('succeeded', 'failed', 'pending')) NOT VALID,
    -- The processor's id of the charge (e.g. ch_... at Stripe), once known.
    ADD COLUMN processor_ref      text,
    -- Set once when a charge stayed pending past PAYMENTS_PROCESSOR_MAX_WAIT.
    ADD COLUMN review_required_at timestamptz,
    -- true: made in processor mode, one of the charges 'payments processor
    -- reconcile' compares. NULL (not false) otherwise: create_charge() inserts
    -- a whole charges%ROWTYPE, whose unset fields are NULL whatever a default says.
    ADD COLUMN via_processor      boolean     CHECK (via_processor);

-- One row per charge still to be carried to the processor; deleted in the
-- transaction that records the outcome. next_attempt_at doubles as the lease:
-- a claim moves it forward by the lease, so a crashed worker's claims come
-- due again after it.
CREATE TABLE processor_jobs (
    charge_id       text        PRIMARY KEY REFERENCES charges (id),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created         timestamptz NOT NULL DEFAULT now()
);
-- Serves processor_claim(): the due jobs, oldest due first.
CREATE INDEX processor_jobs_due_idx ON processor_jobs (next_attempt_at);

-- Like every table (0004): the app reads it; writes go through the SECURITY DEFINER functions.
GRANT SELECT ON processor_jobs TO payments_app;

-- 0063: what the processor is sent for a charge, fixed when the charge is created.
--
-- The worker retries an unknown outcome with the same Idempotency-Key, and a
-- processor (Stripe, or this service) refuses a key reused with other
-- parameters. Since POST /v1/charges/{id} can change a pending charge's
-- description and metadata, the request is kept here, as created, and every
-- attempt sends these (processor_claim()). NULL metadata: a job written
-- before 0063, sent with the charge's own. Columns without a default: no
-- table rewrite.
ALTER TABLE processor_jobs
    ADD COLUMN description text,
    ADD COLUMN metadata    json;

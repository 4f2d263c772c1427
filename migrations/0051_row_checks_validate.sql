-- 0051: validate the constraints 0050 added NOT VALID. VALIDATE CONSTRAINT scans
-- the table under SHARE UPDATE EXCLUSIVE, which does not block inserts or updates,
-- so it runs in its own transaction after 0050 committed.
ALTER TABLE charges VALIDATE CONSTRAINT charges_row_check;
ALTER TABLE outbox_events VALIDATE CONSTRAINT outbox_events_row_check;
ALTER TABLE idempotency_keys VALIDATE CONSTRAINT idempotency_keys_row_check;

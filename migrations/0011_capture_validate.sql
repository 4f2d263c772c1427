-- 0011: validate the constraints 0010 added NOT VALID. VALIDATE CONSTRAINT
-- scans the table under SHARE UPDATE EXCLUSIVE, which does not block inserts
-- or updates, so it runs in its own transaction after 0010 committed.
ALTER TABLE charges VALIDATE CONSTRAINT charges_capture_bounds;
ALTER TABLE charges VALIDATE CONSTRAINT charges_refund_within_captured;
ALTER TABLE charges VALIDATE CONSTRAINT charges_uncaptured_refund_is_release;
ALTER TABLE charges VALIDATE CONSTRAINT charges_release_consistent;

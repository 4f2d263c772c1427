-- payments:no-transaction
-- 0012: the partial index of authorizations waiting for capture.
--
-- Serves expire_authorizations() (the housekeeping thread's search for
-- authorizations older than PAYMENTS_AUTHORIZATION_TTL, oldest first). It
-- holds only the uncaptured, unreleased succeeded charges, so it stays as
-- small as the authorizations in flight and costs nothing on the write path
-- of a charge captured at creation. Built CONCURRENTLY, so charges keep
-- flowing; if it fails, 'migrate status' names the invalid index to drop.
CREATE INDEX CONCURRENTLY IF NOT EXISTS charges_uncaptured_created_idx ON charges (created)
    WHERE status = 'succeeded' AND NOT captured AND released_at IS NULL;

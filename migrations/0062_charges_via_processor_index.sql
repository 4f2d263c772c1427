-- payments:no-transaction
-- 0062: the partial index of charges made in processor mode.
--
-- Serves 'payments processor reconcile' (db_stmt.c processor_ours: the
-- processor-mode charges created since a time). It holds only those rows, so
-- it costs nothing on the write path in the default mode. Built
-- CONCURRENTLY, so charges keep flowing; if it fails, 'migrate status' names
-- the invalid index to drop.
CREATE INDEX CONCURRENTLY IF NOT EXISTS charges_via_processor_created_idx ON charges (created)
    WHERE via_processor;

-- payments:no-transaction
-- 0020: the due deliveries of one endpoint, in order, for the fair relay_claim.
--
-- relay_claim (R__relay_claim.sql) now goes round the endpoints that have
-- pending deliveries and takes at most a few due deliveries from each, so one
-- tenant's backlog cannot fill every claim. Reading one endpoint's due
-- deliveries in (next_attempt_at, event_seq) order must stop after a few rows
-- however large that endpoint's backlog, which takes an index with the
-- endpoint first (sql-tests/021 counts the rows a claim reads); the endpoint
-- round itself probes webhook_deliveries_order_idx. Partial like the other
-- delivery indexes: only pending rows are in it, so it stays the size of the
-- backlog. "next_attempt_at IS NOT NULL" holds for every row (the column is
-- NOT NULL) and is there for the planner: only a query that constrains
-- next_attempt_at (the claim's walk: next_attempt_at <= now()) can use this
-- index, so the per-(endpoint, charge) order check, which names the
-- endpoint but not next_attempt_at, keeps probing webhook_deliveries_order_idx
-- even under stale statistics, instead of reading a whole endpoint here. Built CONCURRENTLY, so neither the relay nor the API waits for it;
-- a failed build leaves an invalid index that 'migrate status' names.
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_deliveries_endpoint_due_idx
    ON webhook_deliveries (endpoint_id, next_attempt_at, event_seq) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;

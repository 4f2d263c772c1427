-- payments:no-transaction
-- 0013: the partial index of GET /v1/charges?captured=false.
--
-- Serves list_page()'s captured=false filter, a user's charges whose object
-- says captured false (authorizations, captured later or never, and failed
-- charges), newest first, keyset on (created, id) like
-- charges_user_created_idx. Its predicate is the filter's clause, word for
-- word, so the planner uses it. A charge captured at creation, the common
-- case, is not in it: no cost on that write path. Built CONCURRENTLY.
CREATE INDEX CONCURRENTLY IF NOT EXISTS charges_user_uncaptured_idx
    ON charges (user_id, created DESC, id DESC) WHERE (NOT captured OR status = 'failed');

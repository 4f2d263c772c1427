-- payments:no-transaction
-- 0009: one index fewer on every new charge.
--
-- charges_user_id_idx (user_id, id), from 0003, served lookups of one of a
-- user's charges by id, which the primary key on id answers as well (the id
-- is unique; the user is a filter on the one row). The newest-first lists use
-- charges_user_created_idx. Dropped CONCURRENTLY, so charges keep flowing.
DROP INDEX CONCURRENTLY IF EXISTS charges_user_id_idx;

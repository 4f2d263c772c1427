-- 0080: what an update changed, for the events that report it.
--
-- Stripe's *.updated events carry data.previous_attributes: the values the
-- changed attributes had before the update (for metadata, the old value of
-- each key the update touched, "" for one that did not exist), which is how
-- a webhook consumer learns what changed without keeping its own copy.
-- update_charge() and update_refund() write it here; event_object() renders
-- it when it is not NULL (every other event type leaves it NULL).
-- A nullable column without a default: no table rewrite, a moment's lock.
ALTER TABLE outbox_events
    ADD COLUMN previous_attributes json;

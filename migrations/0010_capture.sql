-- 0010: authorize now, capture later (POST /v1/charges with capture=false,
-- POST /v1/charges/{id}/capture).
--
-- Every statement here is quick on a live table: the columns need no rewrite
-- (a constant default, or none), and the constraints are added NOT VALID, so
-- they hold for every row written from now on without a scan under the
-- ACCESS EXCLUSIVE lock; 0011 validates them, in its own transaction, under a
-- lock that lets charges keep flowing.
--
-- captured: false while an authorization is only held (and for charges
-- created failed from now on; the API renders a failed charge's captured as
-- false either way). amount_captured: what was captured; NULL on charges
-- from before this migration, which stands for their whole amount (or 0 for a
-- failed one), so no backfill is needed. released_at and release_reason: when
-- and why an uncaptured authorization was let go ('refunded' by a refund,
-- 'expired' by the authorization TTL).
ALTER TABLE charges
    ADD COLUMN captured        boolean     NOT NULL DEFAULT true,
    ADD COLUMN amount_captured bigint,
    ADD COLUMN released_at     timestamptz,
    ADD COLUMN release_reason  text;

ALTER TABLE charges
    ADD CONSTRAINT charges_capture_bounds
        CHECK (amount_captured IS NULL OR (amount_captured >= 0 AND amount_captured <= amount))
        NOT VALID,
    -- Refunds never exceed what was captured (charges_refund_bounds still
    -- bounds them by the amount: an uncaptured charge released by a refund
    -- has its whole authorized amount refunded, as Stripe shows it).
    ADD CONSTRAINT charges_refund_within_captured
        CHECK (NOT captured OR amount_refunded <= coalesce(amount_captured, amount))
        NOT VALID,
    ADD CONSTRAINT charges_uncaptured_refund_is_release
        CHECK (captured OR amount_refunded = 0 OR release_reason IS NOT DISTINCT FROM 'refunded')
        NOT VALID,
    ADD CONSTRAINT charges_release_consistent
        CHECK ((released_at IS NULL) = (release_reason IS NULL)
               AND (released_at IS NULL OR NOT captured)
               AND (release_reason IS NULL OR release_reason IN ('refunded', 'expired')))
        NOT VALID;

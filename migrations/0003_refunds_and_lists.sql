-- 0003: refunds (never more than the charge), and keyset-paginated lists.

CREATE TABLE refunds (
    id              text        PRIMARY KEY CHECK (id ~ '^re_[0-9A-Za-z]{24}$'),
    user_id         text        NOT NULL CHECK (user_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    charge_id       text        NOT NULL REFERENCES charges (id),
    amount          bigint      NOT NULL CHECK (amount BETWEEN 1 AND 99999999),
    currency        text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    reason          text        CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
    metadata        json        NOT NULL DEFAULT '{}',
    status          text        NOT NULL DEFAULT 'succeeded' CHECK (status IN ('succeeded')),
    idempotency_key text,
    request_id      text,
    created         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_user_created_idx ON refunds (user_id, created DESC, id DESC);
CREATE INDEX refunds_charge_created_idx ON refunds (charge_id, created DESC, id DESC);
CREATE INDEX charges_user_id_idx ON charges (user_id, id);

/*
 * Money stays consistent: at commit, every charge touched has
 * amount_refunded equal to the sum of its refunds (and the CHECK on charges
 * keeps that sum within the amount). Deferred, so a refund and its charge
 * update may come in either order inside one transaction. Every way to
 * break the equality is covered: refunds inserted, updated (also moved to
 * another charge) or deleted, and charges inserted or updated.
 */
CREATE FUNCTION check_refund_sum() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_charge text;
    v_refunded bigint;
    v_sum bigint;
BEGIN
    -- TG_ARGV[0] names the column holding the charge id: charge_id on refunds, id on charges.
    FOREACH v_charge IN ARRAY ARRAY[to_jsonb(OLD) ->> TG_ARGV[0], to_jsonb(NEW) ->> TG_ARGV[0]] LOOP
        CONTINUE WHEN v_charge IS NULL;
        SELECT amount_refunded INTO v_refunded FROM charges WHERE id = v_charge;
        CONTINUE WHEN NOT FOUND;   -- the charge itself is gone: nothing left to compare
        SELECT coalesce(sum(amount), 0) INTO v_sum FROM refunds WHERE charge_id = v_charge;
        IF v_refunded <> v_sum THEN
            RAISE EXCEPTION 'charge %: amount_refunded % does not equal the sum of its refunds %',
                v_charge, v_refunded, v_sum USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER refunds_sum_matches AFTER INSERT OR UPDATE OR DELETE ON refunds
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_refund_sum('charge_id');
CREATE CONSTRAINT TRIGGER charges_refunded_matches AFTER UPDATE OF amount_refunded ON charges
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_refund_sum('id');
-- A new charge starts with nothing refunded: only one claiming otherwise needs the check,
-- which keeps the trigger off the path of every new charge.
CREATE CONSTRAINT TRIGGER charges_inserted_refunded AFTER INSERT ON charges
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.amount_refunded <> 0)
    EXECUTE FUNCTION check_refund_sum('id');

CREATE FUNCTION refund_object(r refunds) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT row_to_json(o) FROM (
        SELECT r.id,
               'refund'::text AS object,
               r.amount,
               r.charge_id AS charge,
               r.currency,
               r.metadata,
               r.reason,
               r.status,
               floor(extract(epoch FROM r.created))::bigint AS created
    ) o);
END
$$;

/*
 * idempotency_lookup: the read-only fast path shared by every idempotent
 * create: 'replayed' (stored status and body) when the live key's
 * fingerprint matches, 'mismatch' when it does not, NULL when there is no
 * live key.
 */
CREATE FUNCTION idempotency_lookup(p_user_id text, p_key text, p_fingerprint bytea,
                                   OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN k.fingerprint = p_fingerprint THEN 'replayed' ELSE 'mismatch' END,
           k.status_code,
           CASE WHEN k.fingerprint = p_fingerprint THEN k.response_body END
      FROM idempotency_keys k
     WHERE k.user_id = p_user_id AND k.key = p_key AND k.expires_at > now()
$$;

/*
 * create_refund: the whole database work of one POST /v1/refunds in one
 * round trip and one transaction: the idempotency row, the refund, the
 * charge's amount_refunded (one conditional UPDATE, so concurrent refunds
 * can never exceed the amount), and the refund.created and charge.refunded
 * events. Refusals raise SQLSTATE PR404 (no such charge of this user) or
 * PR400 with the error code as message (amount_too_large,
 * charge_already_refunded, charge_failed); nothing is stored for them.
 * Replay, mismatch and the concurrent-key wait behave as in create_charge.
 */
CREATE FUNCTION create_refund(
    p_user_id text, p_key text, p_fingerprint bytea, p_ttl_ms bigint, p_wait_ms bigint,
    p_refund_id text, p_charge_id text, p_amount bigint, p_reason text, p_metadata json,
    p_request_id text, p_refund_event_id text, p_charge_event_id text,
    OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    c charges%ROWTYPE;
    r refunds%ROWTYPE;
    v_seen bigint;
    v_amount bigint;
BEGIN
    SELECT l.outcome, l.status_code, l.body INTO outcome, status_code, body
      FROM idempotency_lookup(p_user_id, p_key, p_fingerprint) l;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
    DELETE FROM idempotency_keys
     WHERE user_id = p_user_id AND key = p_key AND expires_at <= now();
    INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body,
                                  object_id, expires_at)
    VALUES (p_user_id, p_key, p_fingerprint, 201, '', p_refund_id,
            now() + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT l.outcome, l.status_code, l.body INTO outcome, status_code, body
          FROM idempotency_lookup(p_user_id, p_key, p_fingerprint) l;
        IF outcome IS NULL THEN
            RAISE EXCEPTION 'idempotency key vanished' USING ERRCODE = 'lock_not_available';
        END IF;
        RETURN;
    END IF;

    -- One conditional UPDATE does the check and the write. With no amount,
    -- refund what is left: compare-and-set on the value seen, retried if a
    -- concurrent refund changed it.
    LOOP
        IF p_amount IS NOT NULL THEN
            v_amount := p_amount;
            UPDATE charges SET amount_refunded = amount_refunded + v_amount
             WHERE id = p_charge_id AND user_id = p_user_id AND status = 'succeeded'
               AND amount_refunded + v_amount <= amount
            RETURNING * INTO c;
        ELSE
            SELECT amount_refunded, amount - amount_refunded INTO v_seen, v_amount
              FROM charges WHERE id = p_charge_id AND user_id = p_user_id;
            UPDATE charges SET amount_refunded = amount
             WHERE id = p_charge_id AND user_id = p_user_id AND status = 'succeeded'
               AND amount_refunded = v_seen AND v_amount > 0
            RETURNING * INTO c;
        END IF;
        EXIT WHEN FOUND;
        SELECT * INTO c FROM charges WHERE id = p_charge_id AND user_id = p_user_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'No such charge: %', p_charge_id USING ERRCODE = 'PR404';
        ELSIF c.status <> 'succeeded' THEN
            RAISE EXCEPTION 'charge_failed' USING ERRCODE = 'PR400';
        ELSIF c.amount_refunded >= c.amount THEN
            RAISE EXCEPTION 'charge_already_refunded' USING ERRCODE = 'PR400';
        ELSIF p_amount IS NOT NULL THEN
            RAISE EXCEPTION 'amount_too_large' USING ERRCODE = 'PR400';
        END IF;
        -- no amount given and a concurrent refund moved the total: try again
    END LOOP;

    r.id := p_refund_id;
    r.user_id := p_user_id;
    r.charge_id := c.id;
    r.amount := v_amount;
    r.currency := c.currency;
    r.reason := p_reason;
    r.metadata := p_metadata;
    r.status := 'succeeded';
    r.idempotency_key := p_key;
    r.request_id := p_request_id;
    r.created := now();
    INSERT INTO refunds VALUES (r.*);

    outcome := 'created';
    status_code := 201;
    body := refund_object(r)::text;
    UPDATE idempotency_keys SET response_body = body
     WHERE user_id = p_user_id AND key = p_key;

    INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                               idempotency_key, created)
    VALUES (p_refund_event_id, p_user_id, 'refund.created', r.id, c.id, refund_object(r),
            p_request_id, p_key, r.created),
           (p_charge_event_id, p_user_id, 'charge.refunded', c.id, c.id, charge_object(c),
            p_request_id, p_key, r.created);
END
$$;

/*
 * list_page: one page of a user's charges, refunds or events, newest first,
 * by keyset on (created, id) — stable while rows are inserted, no OFFSET.
 * p_after / p_before are cursor ids (Stripe's starting_after /
 * ending_before) that must belong to the user (else SQLSTATE PR400 with the
 * parameter name). p_filter_col / p_filter_val add one equality filter
 * (refunds by charge, events by type). Returns the JSON array of objects
 * and whether more rows lie beyond the page in the direction of travel.
 */
CREATE FUNCTION list_page(p_kind text, p_user_id text, p_limit integer, p_after text,
                          p_before text, p_gte timestamptz, p_lt timestamptz,
                          p_filter_col text, p_filter_val text,
                          OUT data text, OUT has_more boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_table text;
    v_object text;
    v_cursor text := coalesce(p_after, p_before);
    v_created timestamptz;
    v_dir text := CASE WHEN p_before IS NULL THEN 'DESC' ELSE 'ASC' END;
    v_cmp text := CASE WHEN p_before IS NULL THEN '<' ELSE '>' END;
    v_sql text;
BEGIN
    CASE p_kind
        WHEN 'charges' THEN v_table := 'charges'; v_object := 'charge_object';
        WHEN 'refunds' THEN v_table := 'refunds'; v_object := 'refund_object';
        WHEN 'events' THEN v_table := 'outbox_events'; v_object := 'event_object';
        ELSE RAISE EXCEPTION 'unknown list %', p_kind;
    END CASE;
    IF p_filter_col IS NOT NULL AND p_filter_col NOT IN ('charge_id', 'type') THEN
        RAISE EXCEPTION 'unknown filter %', p_filter_col;
    END IF;
    IF v_cursor IS NOT NULL THEN
        EXECUTE format('SELECT created FROM %I WHERE id = $1 AND user_id = $2', v_table)
           INTO v_created USING v_cursor, p_user_id;
        IF v_created IS NULL THEN
            RAISE EXCEPTION '%', CASE WHEN p_after IS NOT NULL THEN 'starting_after'
                                      ELSE 'ending_before' END USING ERRCODE = 'PR400';
        END IF;
    END IF;
    v_sql := format(
        'WITH page AS (SELECT t FROM %1$I t WHERE t.user_id = $1'
        '   AND ($2::text IS NULL OR (t.created, t.id) %2$s ($3, $2))'
        '   AND ($4::timestamptz IS NULL OR t.created >= $4)'
        '   AND ($5::timestamptz IS NULL OR t.created < $5)'
        '   AND ($6::text IS NULL OR t.%3$I = $6)'
        ' ORDER BY t.created %4$s, t.id %4$s LIMIT $7 + 1)'
        ' SELECT coalesce(json_agg(%5$I(p.t) ORDER BY (p.t).created DESC, (p.t).id DESC)'
        '        FILTER (WHERE p.n <= $7), ''[]'')::text, count(*) > $7'
        '   FROM (SELECT t, row_number() OVER (ORDER BY (t).created %4$s, (t).id %4$s) AS n'
        '           FROM page) p',
        v_table, v_cmp, coalesce(p_filter_col, 'id'), v_dir, v_object);
    EXECUTE v_sql INTO data, has_more
      USING p_user_id, v_cursor, v_created, p_gte, p_lt, p_filter_val, p_limit;
END
$$;

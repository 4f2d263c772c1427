-- R__list_page.sql: the current definition of list_page().
-- Repeatable: edit it in place; 'migrate up' runs it again whenever it changes.
-- First created in migration 0003; the versioned files keep its history.

/*
 * list_page: one page of a user's charges, refunds, events or webhook
 * endpoints (those not deleted; a deleted one still works as a cursor), newest first,
 * by keyset on (created, id) — stable while rows are inserted, no OFFSET.
 * p_after / p_before are cursor ids (Stripe's starting_after /
 * ending_before) that must belong to the user (else SQLSTATE PR011 or
 * PR012, naming the parameter). p_filter_col / p_filter_val add one equality filter
 * (refunds by charge, events by type), or for charges 'captured' with
 * 'true' or 'false': the charge object's captured, so false also lists
 * failed charges; that filter is served by the partial index
 * charges_user_uncaptured_idx (0013), whose predicate it repeats. Returns
 * the JSON array of objects
 * and whether more rows lie beyond the page in the direction of travel.
 */
CREATE OR REPLACE FUNCTION list_page(p_kind text, p_user_id text, p_limit integer, p_after text,
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
    v_where text := '';
BEGIN
    CASE p_kind
        WHEN 'charges' THEN v_table := 'charges'; v_object := 'charge_object';
        WHEN 'refunds' THEN v_table := 'refunds'; v_object := 'refund_object';
        WHEN 'events' THEN v_table := 'outbox_events'; v_object := 'event_object';
        WHEN 'webhook_endpoints' THEN
            v_table := 'webhook_endpoints'; v_object := 'webhook_endpoint_object';
            -- Served by webhook_endpoints_user_idx, which holds only these.
            v_where := ' AND t.deleted_at IS NULL';
        ELSE RAISE EXCEPTION 'unknown list %', p_kind;
    END CASE;
    IF p_filter_col = 'captured' AND p_kind = 'charges' THEN
        -- One of two fixed clauses: the value only chooses, nothing is pasted.
        v_where := CASE p_filter_val
            WHEN 'false' THEN ' AND (NOT t.captured OR t.status = ''failed'')'
            WHEN 'true' THEN ' AND t.captured AND t.status = ''succeeded'''
        END;
        IF v_where IS NULL THEN
            RAISE EXCEPTION 'unknown captured filter %', p_filter_val;
        END IF;
        p_filter_col := NULL;
        p_filter_val := NULL;
    ELSIF p_filter_col IS NOT NULL AND p_filter_col NOT IN ('charge_id', 'type') THEN
        RAISE EXCEPTION 'unknown filter %', p_filter_col;
    END IF;
    IF v_cursor IS NOT NULL THEN
        EXECUTE format('SELECT created FROM %I WHERE id = $1 AND user_id = $2', v_table)
           INTO v_created USING v_cursor, p_user_id;
        IF v_created IS NULL THEN
            -- The cursor is not one of the user's objects: PR011 names
            -- starting_after, PR012 ending_before (src/err.c).
            IF p_after IS NOT NULL THEN
                RAISE EXCEPTION 'starting_after' USING ERRCODE = 'PR011';
            END IF;
            RAISE EXCEPTION 'ending_before' USING ERRCODE = 'PR012';
        END IF;
    END IF;
    v_sql := format(
        'WITH page AS (SELECT t FROM %1$I t WHERE t.user_id = $1'
        '   AND ($2::text IS NULL OR (t.created, t.id) %2$s ($3, $2))'
        '   AND ($4::timestamptz IS NULL OR t.created >= $4)'
        '   AND ($5::timestamptz IS NULL OR t.created < $5)'
        '   AND ($6::text IS NULL OR t.%3$I = $6)%6$s'
        ' ORDER BY t.created %4$s, t.id %4$s LIMIT $7 + 1)'
        ' SELECT coalesce(json_agg(%5$I(p.t) ORDER BY (p.t).created DESC, (p.t).id DESC)'
        '        FILTER (WHERE p.n <= $7), ''[]'')::text, count(*) > $7'
        '   FROM (SELECT t, row_number() OVER (ORDER BY (t).created %4$s, (t).id %4$s) AS n'
        '           FROM page) p',
        v_table, v_cmp, coalesce(p_filter_col, 'id'), v_dir, v_object, v_where);
    EXECUTE v_sql INTO data, has_more
      USING p_user_id, v_cursor, v_created, p_gte, p_lt, p_filter_val, p_limit;
END
$$;

REVOKE ALL ON FUNCTION list_page(text, text, integer, text, text, timestamptz, timestamptz, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION list_page(text, text, integer, text, text, timestamptz, timestamptz, text, text) TO payments_app;

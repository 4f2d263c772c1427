-- 0001: API keys, charges, idempotency keys and the transactional outbox.

CREATE TABLE api_keys (
    id          text        PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{12}$'),
    user_id     text        NOT NULL CHECK (user_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    secret_hash bytea       NOT NULL CHECK (length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE charges (
    id              text        PRIMARY KEY CHECK (id ~ '^ch_[0-9A-Za-z]{24}$'),
    user_id         text        NOT NULL CHECK (user_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    amount          bigint      NOT NULL CHECK (amount BETWEEN 1 AND 99999999),
    currency        text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    source          text        NOT NULL CHECK (length(source) BETWEEN 1 AND 255),
    description     text        CHECK (char_length(description) <= 1000),
    metadata        json        NOT NULL DEFAULT '{}',
    status          text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    failure_code    text,
    decline_code    text,
    amount_refunded bigint      NOT NULL DEFAULT 0,
    idempotency_key text,
    request_id      text,
    created         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT charges_refund_bounds CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    CONSTRAINT charges_failure_consistent CHECK ((status = 'failed') = (failure_code IS NOT NULL)),
    CONSTRAINT charges_failed_not_refunded CHECK (status = 'succeeded' OR amount_refunded = 0)
);
-- Serves GET /v1/charges/{id} scoped to a user and the newest-first lists.
CREATE INDEX charges_user_created_idx ON charges (user_id, created DESC, id DESC);

-- One row per (user, Idempotency-Key): the request fingerprint and the stored response.
CREATE TABLE idempotency_keys (
    user_id       text        NOT NULL,
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint   bytea       NOT NULL CHECK (length(fingerprint) = 32),
    status_code   integer     NOT NULL CHECK (status_code BETWEEN 200 AND 499),
    response_body text        NOT NULL,
    object_id     text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
-- Serves the batched purge of expired keys.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- The transactional outbox: written in the same transaction as the object.
CREATE TABLE outbox_events (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE CHECK (id ~ '^evt_[0-9A-Za-z]{24}$'),
    user_id         text        NOT NULL,
    type            text        NOT NULL CHECK (type ~ '^[a-z_]+\.[a-z_.]+$'),
    object_id       text        NOT NULL,
    charge_id       text        NOT NULL REFERENCES charges (id),
    data            json        NOT NULL,
    request_id      text,
    idempotency_key text,
    created         timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);
-- The relay's claim query reads only unpublished events, in commit order.
CREATE INDEX outbox_events_unpublished_idx ON outbox_events (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_events_charge_idx ON outbox_events (charge_id, seq);
CREATE INDEX outbox_events_user_created_idx ON outbox_events (user_id, created DESC, id DESC);

-- The charge object exactly as the API renders it (compact JSON, fixed key order).
CREATE FUNCTION charge_object(c charges) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT row_to_json(o) FROM (
        SELECT c.id,
               'charge'::text AS object,
               c.amount,
               c.currency,
               c.status,
               c.source,
               c.description,
               c.metadata,
               c.amount_refunded,
               (c.amount_refunded = c.amount) AS refunded,
               c.failure_code,
               c.decline_code,
               floor(extract(epoch FROM c.created))::bigint AS created
    ) o);
END
$$;

/*
 * create_charge: the whole database work of one POST /v1/charges, in one
 * round trip and one transaction.
 *
 * A key already stored (and not expired) is answered from the stored row:
 * 'replayed' with the stored status and body when the fingerprint matches,
 * 'mismatch' otherwise; nothing is written. Otherwise the idempotency row,
 * the charge and its outbox event are inserted together and 'created' is
 * returned with the response. A concurrent request with the same key waits
 * for the first one's commit, at most p_wait_ms; past that it fails with
 * SQLSTATE 55P03 (lock_not_available), which the API answers with 409
 * idempotency_key_in_use and Retry-After.
 *
 * p_error_body is the response body for a declined charge (status 'failed');
 * a succeeded charge's body is its charge object.
 */
CREATE FUNCTION create_charge(
    p_user_id text, p_key text, p_fingerprint bytea, p_ttl_ms bigint, p_wait_ms bigint,
    p_charge_id text, p_event_id text, p_amount bigint, p_currency text, p_source text,
    p_description text, p_metadata json, p_failure_code text, p_decline_code text,
    p_error_body text, p_request_id text,
    OUT outcome text, OUT status_code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    k idempotency_keys%ROWTYPE;
    c charges%ROWTYPE;
BEGIN
    -- Fast path for retries: a read-only lookup, no lock and no WAL.
    SELECT * INTO k FROM idempotency_keys
     WHERE user_id = p_user_id AND key = p_key AND expires_at > now();
    IF FOUND THEN
        outcome := CASE WHEN k.fingerprint = p_fingerprint THEN 'replayed' ELSE 'mismatch' END;
        status_code := k.status_code;
        body := CASE WHEN outcome = 'replayed' THEN k.response_body END;
        RETURN;
    END IF;

    PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
    -- A key past its TTL is treated as new.
    DELETE FROM idempotency_keys
     WHERE user_id = p_user_id AND key = p_key AND expires_at <= now();

    c.id := p_charge_id;
    c.user_id := p_user_id;
    c.amount := p_amount;
    c.currency := p_currency;
    c.source := p_source;
    c.description := p_description;
    c.metadata := p_metadata;
    c.status := CASE WHEN p_failure_code IS NULL THEN 'succeeded' ELSE 'failed' END;
    c.failure_code := p_failure_code;
    c.decline_code := p_decline_code;
    c.amount_refunded := 0;
    c.idempotency_key := p_key;
    c.request_id := p_request_id;
    c.created := now();
    status_code := CASE WHEN c.status = 'succeeded' THEN 201 ELSE 402 END;
    body := CASE WHEN c.status = 'succeeded' THEN charge_object(c)::text ELSE p_error_body END;

    -- The key goes first: a concurrent request with the same key blocks here
    -- until this transaction ends, then sees the stored row.
    INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body,
                                  object_id, expires_at)
    VALUES (p_user_id, p_key, p_fingerprint, status_code, body, c.id,
            now() + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO k FROM idempotency_keys WHERE user_id = p_user_id AND key = p_key;
        IF NOT FOUND THEN
            -- The winner rolled back between our insert and this read: let the client retry.
            RAISE EXCEPTION 'idempotency key vanished' USING ERRCODE = 'lock_not_available';
        END IF;
        outcome := CASE WHEN k.fingerprint = p_fingerprint THEN 'replayed' ELSE 'mismatch' END;
        status_code := k.status_code;
        body := CASE WHEN outcome = 'replayed' THEN k.response_body END;
        RETURN;
    END IF;

    INSERT INTO charges SELECT c.*;
    INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data, request_id,
                               idempotency_key, created)
    VALUES (p_event_id, p_user_id,
            CASE WHEN c.status = 'succeeded' THEN 'charge.succeeded' ELSE 'charge.failed' END,
            c.id, c.id, charge_object(c), p_request_id, p_key, c.created);
    outcome := 'created';
END
$$;

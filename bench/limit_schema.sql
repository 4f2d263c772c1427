-- limit_schema.sql - make bench: minimal tables of the same shape as the service's, primary keys only.
--
-- bench/limit.pgbench and the Node.js peer (bench/peer/) write one row into
-- each per new charge. The columns are those of idempotency_keys, charges and
-- outbox_events (migrations/0001), but without CHECK constraints, secondary
-- indexes, foreign keys, triggers or functions: what is left is the cost of
-- writing three rows in one transaction with a durable commit, the ceiling of
-- any service that stores a charge with its idempotency row and outbox event.
-- The schema is separate, so the service's own tables are never touched.
DROP SCHEMA IF EXISTS bench_limit CASCADE;
CREATE SCHEMA bench_limit;

CREATE TABLE bench_limit.idempotency_keys (
    user_id       text        NOT NULL,
    key           text        NOT NULL,
    fingerprint   bytea       NOT NULL,
    status_code   integer     NOT NULL,
    response_body text        NOT NULL,
    object_id     text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE bench_limit.charges (
    id              text        PRIMARY KEY,
    user_id         text        NOT NULL,
    amount          bigint      NOT NULL,
    currency        text        NOT NULL,
    source          text        NOT NULL,
    description     text,
    metadata        json        NOT NULL DEFAULT '{}',
    status          text        NOT NULL,
    failure_code    text,
    decline_code    text,
    amount_refunded bigint      NOT NULL DEFAULT 0,
    idempotency_key text,
    request_id      text,
    created         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bench_limit.outbox_events (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL,
    user_id         text        NOT NULL,
    type            text        NOT NULL,
    object_id       text        NOT NULL,
    charge_id       text        NOT NULL,
    data            json        NOT NULL,
    request_id      text,
    idempotency_key text,
    created         timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);

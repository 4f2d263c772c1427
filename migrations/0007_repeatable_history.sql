-- 0007: payments_schema_history records repeatable migrations (R__name.sql) too.
--
-- From here on the current text of every function, trigger and view lives
-- in a repeatable migration, which 'migrate up' runs again whenever its
-- checksum changes. A repeatable has no version: each of its runs adds a
-- row with version NULL and type 'repeatable', so the table gets a key of
-- its own, installed_rank (the order rows were written, as in Flyway), and
-- version becomes unique instead of the key: a versioned migration still
-- has exactly one row, which 'migrate up' upserts on that constraint.
--
-- Only the migrator uses this table, under its advisory lock, and it holds
-- a row per migration: the table rewrite of adding the identity column is
-- instant and no query of the service ever waits on it.

ALTER TABLE payments_schema_history
    ADD COLUMN installed_rank bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN type text NOT NULL DEFAULT 'versioned' CHECK (type IN ('versioned', 'repeatable'));
ALTER TABLE payments_schema_history DROP CONSTRAINT payments_schema_history_pkey;
ALTER TABLE payments_schema_history
    ALTER COLUMN version DROP NOT NULL,
    ADD CONSTRAINT payments_schema_history_pkey PRIMARY KEY (installed_rank),
    ADD CONSTRAINT payments_schema_history_version_key UNIQUE (version),
    ADD CONSTRAINT payments_schema_history_version_by_type
        CHECK ((type = 'versioned') = (version IS NOT NULL));

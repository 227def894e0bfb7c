-- Core platform tables and the time-series helpers every domain table uses.

CREATE TABLE IF NOT EXISTS its_timeseries (
    table_name      text PRIMARY KEY,
    time_column     text NOT NULL,
    backend         text NOT NULL CHECK (backend IN ('timescaledb', 'native')),
    chunk_interval  interval NOT NULL,
    retention       interval
);

CREATE TABLE IF NOT EXISTS its_rollups (
    view_name     text PRIMARY KEY,
    source_table  text NOT NULL,
    time_column   text NOT NULL,
    bucket        interval NOT NULL,
    query         text NOT NULL,
    materialized  boolean NOT NULL DEFAULT false
);

-- Create a time-series table: a hypertable with compression when TimescaleDB is installed,
-- otherwise a table range-partitioned by day on time_col with a BRIN index.
CREATE OR REPLACE FUNCTION its_create_timeseries(
    tbl text, time_col text, columns_ddl text,
    chunk interval DEFAULT interval '1 day',
    retention interval DEFAULT NULL,
    segment_by text DEFAULT NULL
) RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    ts boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb');
BEGIN
    IF to_regclass(tbl) IS NOT NULL THEN
        RETURN 'exists';
    END IF;
    IF ts THEN
        EXECUTE format('CREATE TABLE %I (%s)', tbl, columns_ddl);
        EXECUTE format('SELECT create_hypertable(%L, by_range(%L, %L::interval))', tbl, time_col, chunk);
        IF segment_by IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L)', tbl, segment_by);
        ELSE
            EXECUTE format('ALTER TABLE %I SET (timescaledb.compress)', tbl);
        END IF;
        EXECUTE format('SELECT add_compression_policy(%L, %L::interval)', tbl, interval '7 days');
        IF retention IS NOT NULL THEN
            EXECUTE format('SELECT add_retention_policy(%L, %L::interval)', tbl, retention);
        END IF;
        INSERT INTO its_timeseries VALUES (tbl, time_col, 'timescaledb', chunk, retention);
        RETURN 'timescaledb';
    END IF;
    EXECUTE format('CREATE TABLE %I (%s) PARTITION BY RANGE (%I)', tbl, columns_ddl, time_col);
    EXECUTE format('CREATE INDEX %I ON %I USING brin (%I)', tbl || '_time_brin', tbl, time_col);
    INSERT INTO its_timeseries VALUES (tbl, time_col, 'native', interval '1 day', retention);
    RETURN 'native';
END
$fn$;

-- Native path: create the daily partitions of tbl for days first..last (UTC), if missing.
CREATE OR REPLACE FUNCTION its_ensure_partitions(tbl text, first date, last date)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    d date := first;
    part text;
    created integer := 0;
BEGIN
    WHILE d <= last LOOP
        part := tbl || '_p' || to_char(d, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    part, tbl, (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
                created := created + 1;
            EXCEPTION WHEN duplicate_table THEN
                NULL;  -- a concurrent writer made it
            END;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END
$fn$;

-- Native path: drop daily partitions that end before cutoff; returns their names.
CREATE OR REPLACE FUNCTION its_drop_partitions_before(cutoff timestamptz)
RETURNS text[] LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    dropped text[] := '{}';
BEGIN
    FOR r IN
        SELECT c.relname AS part, t.table_name
        FROM its_timeseries t
        JOIN pg_inherits i ON i.inhparent = t.table_name::regclass
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE t.backend = 'native'
    LOOP
        IF to_date(right(r.part, 8), 'YYYYMMDD') + 1 <= (cutoff AT TIME ZONE 'UTC')::date THEN
            EXECUTE format('DROP TABLE %I', r.part);
            dropped := dropped || r.part::text;
        END IF;
    END LOOP;
    RETURN dropped;
END
$fn$;

-- Register a rollup view; the migrator materialises it (continuous aggregate or view).
CREATE OR REPLACE FUNCTION its_register_rollup(
    view_name text, source_table text, time_col text, bucket interval, query text
) RETURNS void LANGUAGE sql AS $fn$
    INSERT INTO its_rollups (view_name, source_table, time_column, bucket, query)
    VALUES (view_name, source_table, time_col, bucket, query)
    ON CONFLICT (view_name) DO NOTHING;
$fn$;

-- Everything that failed validation, with its topic, raw bytes and reason.
CREATE TABLE IF NOT EXISTS rejected_messages (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    msg_key      bytea NOT NULL UNIQUE   -- sha256(topic, payload): redelivery is harmless
);
CREATE INDEX IF NOT EXISTS rejected_messages_received ON rejected_messages (received_at);

-- Auth: app keys, dispatcher users, sessions, device registry.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id          text PRIMARY KEY,
    name            text NOT NULL,
    key_hash        text NOT NULL UNIQUE,
    quota_per_min   integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE IF NOT EXISTS users (
    username        text PRIMARY KEY,
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('dispatcher', 'admin')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled        boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS devices (
    device_id       text PRIMARY KEY,
    kind            text NOT NULL,
    password_hash   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

-- Dispatcher alerts and their acknowledgements.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id        text PRIMARY KEY,
    kind            text NOT NULL,
    severity        text NOT NULL,
    subject         text NOT NULL,
    message         text NOT NULL,
    lat             float8,
    lon             float8,
    raised_at       timestamptz NOT NULL,
    cleared_at      timestamptz,
    acked_by        text,
    acked_at        timestamptz
);
CREATE INDEX IF NOT EXISTS alerts_raised ON alerts (raised_at);

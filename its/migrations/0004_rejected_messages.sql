-- Dead letters become a time series like the telemetry they stand for: daily partitions (or
-- TimescaleDB chunks) on received_at, dropped after ITS_REJECTED_RETENTION_DAYS by the
-- collector. Payloads are kept truncated (ITS_REJECTED_PAYLOAD_MAX_BYTES) with their original
-- length and SHA-256, and every receipt of a bad message is a row of its own: a device repeating
-- the same bad message is seen repeating it. msg_key = sha256(topic, 0x00, payload) names the
-- message; the collector skips a redelivery (MQTT DUP or retained flag) whose key is stored.
CREATE TEMP TABLE _rejected_v1 ON COMMIT DROP AS
    SELECT received_at, topic, payload, reason, msg_key FROM rejected_messages;
DROP TABLE rejected_messages;

SELECT its_create_timeseries('rejected_messages', 'received_at',
    $$received_at     timestamptz NOT NULL DEFAULT now(),
      id              bigserial,
      topic           text NOT NULL,
      payload         bytea NOT NULL,
      reason          text NOT NULL,
      msg_key         bytea NOT NULL,
      payload_bytes   integer,
      payload_sha256  bytea,
      PRIMARY KEY (received_at, id)$$,
    chunk => interval '1 day');
COMMENT ON COLUMN rejected_messages.payload IS 'the first ITS_REJECTED_PAYLOAD_MAX_BYTES bytes of the payload';
COMMENT ON COLUMN rejected_messages.payload_bytes IS 'length of the whole payload, bytes (NULL: payload is whole)';
COMMENT ON COLUMN rejected_messages.payload_sha256 IS 'SHA-256 of the whole payload (NULL: sha256(payload))';
CREATE INDEX IF NOT EXISTS rejected_messages_key ON rejected_messages (msg_key);

DO $$
BEGIN
    IF (SELECT backend FROM its_timeseries WHERE table_name = 'rejected_messages') = 'native' THEN
        PERFORM its_ensure_partitions('rejected_messages', d, d)
        FROM (SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date AS d FROM _rejected_v1) days;
    END IF;
END
$$;
INSERT INTO rejected_messages (received_at, topic, payload, reason, msg_key, payload_bytes, payload_sha256)
SELECT received_at, topic, substring(payload FROM 1 FOR 4096), reason, msg_key, octet_length(payload), sha256(payload)
FROM _rejected_v1;

-- Native path: drop the daily partitions of one table that end before cutoff; returns their names.
CREATE OR REPLACE FUNCTION its_drop_partitions_before(cutoff timestamptz, only_table text)
RETURNS text[] LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    dropped text[] := '{}';
BEGIN
    FOR r IN
        SELECT c.relname AS part
        FROM its_timeseries t
        JOIN pg_inherits i ON i.inhparent = t.table_name::regclass
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE t.backend = 'native' AND t.table_name = only_table
    LOOP
        IF to_date(right(r.part, 8), 'YYYYMMDD') + 1 <= (cutoff AT TIME ZONE 'UTC')::date THEN
            EXECUTE format('DROP TABLE %I', r.part);
            dropped := dropped || r.part::text;
        END IF;
    END LOOP;
    RETURN dropped;
END
$fn$;

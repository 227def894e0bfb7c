"""Migrations, time-series backend detection, batch COPY writes on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from its.db import (
    Database,
    copy_rows,
    drop_expired_partitions,
    migrate,
    timeseries_backend,
    upsert_rows,
)


def test_migrations_twice_in_a_row(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    first = migrate(db)
    second = migrate(db)
    assert first and "0001_core" in first
    assert second == []
    versions = [r[0] for r in db.fetchall("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == sorted(first)
    db.close()


def test_concurrent_migrators_are_safe(empty_db_url: str) -> None:
    import threading

    errors: list[BaseException] = []
    applied: list[list[str]] = []

    def run() -> None:
        db = Database(empty_db_url)
        try:
            applied.append(migrate(db))
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(len(a) for a in applied) == len(max(applied, key=len))


def _make_series(db: Database) -> str:
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT its_create_timeseries('probe', 'time', $$k text NOT NULL, time timestamptz NOT NULL,"
            " v float8, PRIMARY KEY (k, time)$$)"
        )
        return str(cur.fetchone()[0])


def test_timeseries_native_fallback_on_plain_postgres(db: Database) -> None:
    if timeseries_backend(db) == "timescaledb":
        pytest.skip("this server has TimescaleDB; the native path is tested on plain PostgreSQL")
    assert _make_series(db) == "native"
    kind = db.fetchall("SELECT relkind FROM pg_class WHERE relname = 'probe'")[0][0]
    assert kind == "p"  # a partitioned table, nothing pretends to be a hypertable
    assert db.fetchall("SELECT backend FROM its_timeseries WHERE table_name = 'probe'") == [("native",)]
    assert db.fetchall("SELECT amname FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname"
                       " JOIN pg_am a ON a.oid = c.relam WHERE i.tablename = 'probe' AND amname = 'brin'")


def test_timeseries_hypertable_when_timescale_present(db: Database) -> None:
    if timeseries_backend(db) != "timescaledb":
        pytest.skip("TimescaleDB extension not installed on this server (native path tested instead)")
    assert _make_series(db) == "timescaledb"
    rows = db.fetchall("SELECT hypertable_name FROM timescaledb_information.hypertables")
    assert ("probe",) in rows


def test_copy_rows_is_idempotent_and_creates_partitions(db: Database) -> None:
    _make_series(db)
    t0 = datetime(2016, 10, 4, 8, 0, tzinfo=UTC)
    rows = [(f"k{i % 7}", t0 + timedelta(hours=i), float(i)) for i in range(200)]
    with db.connection() as conn:
        assert copy_rows(conn, "probe", ("k", "time", "v"), rows) == 200
    with db.connection() as conn:
        assert copy_rows(conn, "probe", ("k", "time", "v"), [*rows[:50], ("new", t0, None)]) == 1
    assert db.fetchall("SELECT count(*) FROM probe") == [(201,)]
    if timeseries_backend(db) == "native":
        parts = db.fetchall("SELECT count(*) FROM pg_inherits WHERE inhparent = 'probe'::regclass")[0][0]
        assert parts >= 9  # 200 hours span 9 UTC days (plus the ones made ahead of today)


def test_copy_rows_escapes_text_and_bytes(db: Database) -> None:
    weird = "tab\there\nnewline \\ backslash 'quote' \"dq\" ünï"
    with db.connection() as conn:
        copy_rows(conn, "rejected_messages", ("topic", "payload", "reason", "msg_key"),
                  [(weird, b"\x00\xff\\N", weird, b"k1")])
    assert db.fetchall("SELECT topic, payload, reason FROM rejected_messages") == [
        (weird, memoryview(b"\x00\xff\\N"), weird)
    ] or db.fetchall("SELECT topic, reason FROM rejected_messages") == [(weird, weird)]
    payload = db.fetchall("SELECT payload FROM rejected_messages")[0][0]
    assert bytes(payload) == b"\x00\xff\\N"


def test_upsert_rows_last_wins(db: Database) -> None:
    with db.connection() as conn:
        upsert_rows(conn, "api_keys", ("key_id", "name", "key_hash", "quota_per_min"),
                    [("a", "one", "h1", 1), ("a", "two", "h1", 2)], ("key_id",))
        upsert_rows(conn, "api_keys", ("key_id", "name", "key_hash", "quota_per_min"),
                    [("a", "three", "h1", 3)], ("key_id",))
    assert db.fetchall("SELECT name, quota_per_min FROM api_keys") == [("three", 3)]


def test_retention_drops_old_native_partitions(db: Database) -> None:
    if timeseries_backend(db) != "native":
        pytest.skip("retention on TimescaleDB is a policy, tested on the native path here")
    _make_series(db)
    old = datetime.now(UTC) - timedelta(days=40)
    with db.connection() as conn:
        copy_rows(conn, "probe", ("k", "time", "v"), [("a", old, 1.0), ("a", datetime.now(UTC), 2.0)])
    dropped = drop_expired_partitions(db, 30)
    assert any(name.startswith("probe_p") for name in dropped)
    assert db.fetchall("SELECT count(*) FROM probe") == [(1,)]


def test_rollup_gives_the_same_buckets_on_both_backends(db: Database) -> None:
    _make_series(db)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT its_register_rollup('probe_15m', 'probe', 'time', interval '15 minutes',"
                    " $$SELECT {bucket} AS bucket, k, avg(v) AS mean_v, count(*) AS n FROM probe GROUP BY 1, 2$$)")
    migrate(db)  # materialises pending rollups
    t0 = datetime(2026, 2, 16, 10, 0, tzinfo=UTC)
    with db.connection() as conn:
        copy_rows(conn, "probe", ("k", "time", "v"),
                  [("a", t0 + timedelta(minutes=m), float(m)) for m in range(30)])
    # on TimescaleDB the continuous aggregate answers in real time (materialized_only = false)
    rows = db.fetchall("SELECT bucket, mean_v, n FROM probe_15m ORDER BY bucket")
    assert [(r[0], r[1], r[2]) for r in rows] == [(t0, 7.0, 15), (t0 + timedelta(minutes=15), 22.0, 15)]


def test_weekly_rollup_buckets_start_on_the_same_day_on_both_backends(db: Database) -> None:
    _make_series(db)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT its_register_rollup('probe_7d', 'probe', 'time', interval '7 days',"
                    " $$SELECT {bucket} AS bucket, count(*) AS n FROM probe GROUP BY 1$$)")
    migrate(db)
    monday = datetime(2026, 2, 16, 10, 0, tzinfo=UTC)
    with db.connection() as conn:
        copy_rows(conn, "probe", ("k", "time", "v"), [("a", monday, 1.0)])
    # origin 2000-01-01 (a Saturday) on both paths: the week holding Mon 16 Feb starts Sat 14 Feb
    assert db.fetchall("SELECT bucket, n FROM probe_7d") == [(datetime(2026, 2, 14, tzinfo=UTC), 1)]


def test_bad_url_fails_clearly() -> None:
    with pytest.raises(psycopg2.OperationalError):
        Database("postgresql://postgres@127.0.0.1:1/none")

"""The collector runtime against a real Mosquitto and a real PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from its.collector import Collector
from its.db import Database
from its.devices import DEVICE_STATUS_ROUTE
from its.mqtt import connect
from its.settings import Settings

from .helpers import READINGS, T0, count, make_readings_table, publish_readings, wait_for


def _collector(settings: Settings, db: Database, client_id: str = "test-collector") -> Collector:
    return Collector(settings, db, [READINGS, DEVICE_STATUS_ROUTE], client_id=client_id)


def test_ten_thousand_qos1_messages_none_lost(settings: Settings, db: Database) -> None:
    make_readings_table(db)
    collector = _collector(settings, db)
    collector.start()
    try:
        keys = publish_readings(settings.mqtt_url or "", 10_000)
        assert wait_for(lambda: count(db, "test_readings") >= 10_000, 90)
    finally:
        collector.stop()
    assert count(db, "test_readings") == 10_000 == len(set(keys))
    assert collector.totals.stored == 10_000
    assert collector.totals.rejected == 0


def test_messages_published_while_collector_away_are_delivered(settings: Settings, db: Database) -> None:
    make_readings_table(db)
    collector = _collector(settings, db, "test-away")
    collector.start()
    collector.stop()
    publish_readings(settings.mqtt_url or "", 2_000)
    collector = _collector(settings, db, "test-away")
    collector.start()
    try:
        assert wait_for(lambda: count(db, "test_readings") >= 2_000, 60)
    finally:
        collector.stop()
    assert count(db, "test_readings") == 2_000


def test_malformed_payloads_of_every_kind_are_dead_lettered(settings: Settings, db: Database) -> None:
    make_readings_table(db)
    collector = _collector(settings, db, "test-bad")
    collector.start()
    bad = {
        "its/v1/testfeed/a/reading": [
            b"\xff\xfe\x00 not utf-8",
            b"{not json",
            b"[1, 2, 3]",
            b'{"ts": 1700000000, "value": "high"}',
            b'{"ts": 1700000000, "value": 1e308, "x": 1}',
            b'{"ts": 1700000000}',
            b'{"ts": "yesterday", "value": 1}',
            b'{"ts": 99999999999999, "value": 1}',
            b'{"ts": 1700000000, "value": 1, "value": 2}',
            b'{"ts": 1700000000, "value": 1, "d": {"a": {"b": {"c": {"d": 1}}}}}',
            b'{"ts": 1700000000, "value": NaN}',
            b"x" * (70 * 1024),
        ],
        "its/v1/nosuchfeed/x/y": [b'{"ts": 1700000000}'],
        "its/v1/devices/sensor/d1/status": [b'{"online": "yes"}'],
    }
    pub = connect(settings.mqtt_url or "", "bad-pub")
    total = 0
    for topic, payloads in bad.items():
        for p in payloads:
            pub.client.publish(topic, p, qos=1).wait_for_publish(10)
            total += 1
    pub.client.publish("its/v1/testfeed/ok/reading", orjson.dumps({"ts": T0, "value": 3}), qos=1).wait_for_publish(10)
    pub.close()
    try:
        assert wait_for(lambda: count(db, "rejected_messages") >= total and count(db, "test_readings") == 1, 30)
    finally:
        collector.stop()
    rows = db.fetchall("SELECT topic, reason, payload FROM rejected_messages")
    reasons = " | ".join(r[1] for r in rows)
    assert len(rows) == total
    for needle in ("UTF-8", "invalid JSON", "JSON object", "'value' must be a number", "outside",
                   "missing field 'value'", "unparsable timestamp", "future", "duplicate key",
                   "nested deeper", "oversized", "unknown_topic", "'online' must be a boolean"):
        assert needle in reasons, needle
    assert any(bytes(r[2]).startswith(b"\xff\xfe") for r in rows)  # raw bytes kept


def test_sigkill_style_restart_redelivers_without_duplicates(settings: Settings, db: Database, tmp_path: Path) -> None:
    """Messages received but not yet committed are redelivered to the same session."""
    make_readings_table(db)
    slow = settings.model_copy(update={"collector_batch_size": 200, "collector_batch_ms": 50})
    first = _collector(slow, db, "test-kill")
    first.start()
    publish_readings(settings.mqtt_url or "", 3_000)
    # cut the connection without acknowledging what is queued (like a SIGKILL of the process)
    first._stop.set()
    assert first.conn is not None
    first.conn.client._sock.close() if first.conn.client._sock else None  # type: ignore[attr-defined]
    first.conn.client.loop_stop()
    time.sleep(1.0)
    second = _collector(settings, db, "test-kill")
    second.start()
    try:
        assert wait_for(lambda: count(db, "test_readings") >= 3_000, 60)
        time.sleep(1.0)
    finally:
        second.stop()
    assert count(db, "test_readings") == 3_000


def test_database_outage_spools_and_replays(settings: Settings, db: Database, db_url: str) -> None:
    """A database that refuses connections: messages go to the spool and are replayed."""
    make_readings_table(db)
    broken = Database(db_url)
    collector = _collector(settings, broken, "test-outage")
    collector.start()
    publish_readings(settings.mqtt_url or "", 500)
    assert wait_for(lambda: count(db, "test_readings") >= 500, 30)
    # take the database away: every pooled connection is killed and new ones are refused
    dbname = db_url.rsplit("/", 1)[1]
    admin = Database(db_url.rsplit("/", 1)[0] + "/postgres")
    admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
    publish_readings(settings.mqtt_url or "", 1_500, start=500)
    assert wait_for(lambda: not collector.db_available, 20)
    time.sleep(2.0)
    admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    admin.close()
    db2 = Database(db_url)
    try:
        assert wait_for(lambda: count(db2, "test_readings") >= 2_000, 60)
    finally:
        collector.stop()
    assert count(db2, "test_readings") == 2_000
    assert collector.spool.count == 0
    db2.close()
    broken.close()

"""Dead letters (``rejected_messages``) on the real PostgreSQL, broker and collector: payloads kept
truncated with their length and SHA-256, every receipt recorded, redeliveries not, retention
like the other time series, old rows carried over by the migration."""

from __future__ import annotations

import hashlib
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from its.app.registry import domain_routes
from its.batch import process_batch
from its.collector import Collector
from its.db import MIGRATIONS_DIR, Database, copy_rows, migrate
from its.dead_letters import Message, cut_message, dead_letter, write_dead_letters
from its.ingest import Router
from its.mqtt import connect
from its.settings import Settings
from its.spool import Spool

from .helpers import count, wait_for


def _rows(db: Database) -> list[tuple[object, ...]]:
    return db.fetchall("SELECT topic, payload, payload_bytes, payload_sha256, reason FROM rejected_messages ORDER BY id")


def test_oversized_and_repeated_bad_messages_through_the_collector(settings: Settings, db: Database) -> None:
    cfg = settings.model_copy(update={"max_payload_bytes": 2048, "rejected_payload_max_bytes": 100})
    collector = Collector(cfg, db, domain_routes(), client_id=f"dl-{time.time_ns()}")
    collector.start()
    big = b'{"ts": 1, "pad": "' + bytes(range(48, 58)) * 1000 + b'"}'
    repeated = b'{"ts": "not a time", "lat": 1, "lon": 2}'
    pub = connect(settings.mqtt_url or "", "dl-pub")
    try:
        pub.publish("its/v1/vehicles/a/big/position", big).wait_for_publish(10)
        for _ in range(3):
            pub.publish("its/v1/vehicles/a/rep/position", repeated).wait_for_publish(10)
        assert wait_for(lambda: collector.totals.rejected >= 4, 30)
    finally:
        pub.close()
        collector.stop()
    rows = _rows(db)
    assert len(rows) == 4 == collector.totals.rejected
    topic, payload, size, digest, reason = rows[0]
    assert topic.endswith("/big/position") and reason.startswith("oversized")
    assert bytes(payload) == big[:100] and size == len(big) and bytes(digest) == hashlib.sha256(big).digest()
    # the same bad message three times: three dead letters, whole payload (under the limit)
    assert [(bytes(r[1]), r[2]) for r in rows[1:]] == [(repeated, len(repeated))] * 3


def test_redelivered_dead_letters_are_written_once(db: Database) -> None:
    msg = Message(1, 1, "its/v1/nosuch/x", b"\x00bad", time.time())
    router = Router(domain_routes())
    with db.connection() as conn:
        first = process_batch(conn, router, [msg, msg], 65536)
    with db.connection() as conn:  # the broker redelivers both (DUP set): already stored
        again = process_batch(conn, router, [msg._replace(dup=True)] * 2, 65536)
    with db.connection() as conn:  # sent again by the device (no DUP): a new receipt
        third = process_batch(conn, router, [msg._replace(received=time.time() + 1)], 65536)
    assert (first.rejected, first.redelivered) == (2, 0)
    assert (again.rejected, again.redelivered) == (2, 2)
    assert (third.rejected, third.redelivered) == (1, 0)
    assert count(db, "rejected_messages") == 3
    with db.connection() as conn:  # a redelivery whose first delivery was never committed
        fresh = Message(2, 1, "its/v1/nosuch/y", b"other", time.time(), dup=True)
        assert write_dead_letters(conn, [dead_letter(fresh, "unknown_topic", 4096)], [True]) == 1


def test_payload_cut_at_receipt_keeps_its_length_and_hashes(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40
    msg = Message(5, 1, "its/v1/vehicles/a/b/position", payload, 1.7e9, dup=True)
    cut = cut_message(msg, 64)
    assert cut.payload == payload[:64] and cut.size == len(payload) and cut.key == msg.key
    row = dead_letter(cut, "oversized", 16)
    assert row[2] == payload[:16] and row[5] == len(payload) and row[6] == hashlib.sha256(payload).digest()
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([cut, msg._replace(dup=False, payload=b"small")])
    back = spool.read()
    assert [(m.payload, m.size, m.key, m.dup) for m in back] == [
        (cut.payload, len(payload), msg.key, True), (b"small", 5, back[1].key, False)]
    spool.rewrite(back[1:])
    assert spool.count == 1 and [m.payload for m in spool.read()] == [b"small"]


def test_dead_letters_expire_like_other_time_series(settings: Settings, db: Database) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    with db.connection() as conn:
        copy_rows(conn, "rejected_messages", ("received_at", "topic", "payload", "reason", "msg_key"),
                  [(old, "its/v1/x", b"old", "r", b"k1"), (recent, "its/v1/x", b"recent", "r", b"k2")])
    assert db.fetchall("SELECT table_name, time_column FROM its_timeseries WHERE table_name = 'rejected_messages'") == [
        ("rejected_messages", "received_at")]
    collector = Collector(settings.model_copy(update={"rejected_retention_days": 30}), db, [])
    dropped = collector.expire()
    assert dropped and all(name.startswith("rejected_messages_p") for name in dropped)
    assert [bytes(p) for (p,) in db.fetchall("SELECT payload FROM rejected_messages")] == [b"recent"]
    # the day whose partition was dropped can be written again
    with db.connection() as conn:
        copy_rows(conn, "rejected_messages", ("received_at", "topic", "payload", "reason", "msg_key"),
                  [(old, "its/v1/x", b"late", "r", b"k3")])
    assert count(db, "rejected_messages") == 2


def test_migration_keeps_old_dead_letters_truncated(empty_db_url: str, tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.stem < "0004":
            shutil.copy(path, before / path.name)
    db = Database(empty_db_url)
    try:
        migrate(db, [before])
        big = b"y" * 10_000
        db.execute("INSERT INTO rejected_messages (received_at, topic, payload, reason, msg_key) VALUES"
                   " (now() - interval '3 days', 't/big', %s, 'oversized', 'k1'), (now(), 't/small', 'ab', 'r', 'k2')",
                   (big,))
        assert "0004_rejected_messages" in migrate(db)
        rows = db.fetchall("SELECT topic, octet_length(payload), payload_bytes, payload_sha256 FROM rejected_messages"
                           " ORDER BY topic")
        assert [(r[0], r[1], r[2], bytes(r[3])) for r in rows] == [
            ("t/big", 4096, 10_000, hashlib.sha256(big).digest()), ("t/small", 2, 2, hashlib.sha256(b"ab").digest())]
    finally:
        db.close()


def test_history_imports_bypass_the_time_window(db: Database) -> None:
    """Old data goes in through explicit imports: process_batch without a time policy, COPY."""
    router = Router(domain_routes())
    payload = orjson.dumps({"ts": "2016-11-14T08:00:00Z", "occupied": 12})
    with db.connection() as conn:
        result = process_batch(conn, router, [Message(0, 1, "its/v1/parking/LOT/counts", payload, time.time())], 65536)
    assert (result.stored, result.rejected) == (1, 0)
    assert db.fetchall("SELECT extract(year FROM time)::int FROM parking_counts") == [(2016,)]


def test_reason_classes_sort_every_kind_of_refusal() -> None:
    from its.dead_letters import REASON_CLASSES, reason_class
    from its.timeutil import TimeWindow

    window = TimeWindow(60.0, 86400.0)
    cases = {
        window.problem(1000.0 + 3600, 1000.0, 1000.0) or "": "future",
        window.problem(1000.0 - 2 * 86400, 1000.0, 1000.0) or "": "too_old",
        "field 'ts': timestamp 1970-01-01T00:00:01+00:00 is before 2000-01-01": "too_old",
        "field 'ts': timestamp 2031-01-01T00:00:00+00:00 is in the future": "future",
        "unknown_topic: no route for this topic": "unknown_topic",
        "oversized: 70000 bytes > 65536": "oversized",
        "unsafe topic: a level contains control or bidi-override characters": "unsafe",
        "field 'trip_id' contains control or bidi-override characters": "unsafe",
        "parser error: KeyError: 'x'": "parser_error",
        "database rejected: NumericValueOutOfRange: integer out of range": "database_refused",
        "missing field 'ts'": "invalid",
        "invalid JSON: unexpected character": "invalid",
    }
    for reason, kind in cases.items():
        assert reason_class(reason) == kind, reason
    assert set(cases.values()) == set(REASON_CLASSES)

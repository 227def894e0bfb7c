"""Hostile and odd input through the real broker, collector and PostgreSQL (issue #19): no bad
message takes valid ones with it, every message is stored, dead-lettered with its reason or
(the platform's own topics) skipped, and all of them are acknowledged."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from its.app.registry import domain_routes
from its.collector import Collector
from its.db import Database
from its.ingest import PayloadError, Route, json_object
from its.mqtt import MqttConnection, connect, drop_session
from its.settings import Settings
from its.timeutil import TimeError, parse_time

from .helpers import count, wait_for

YEAR_S = 365 * 86400.0
#: Old data is allowed on this feed: an old row and a current one in one COPY make
#: its/db.py refuse the batch (too many daily partitions at once), as in the issue.
GUARDED = "test_guarded"


def parse_guarded(topic: str, payload: bytes) -> Sequence[tuple[Any, ...]]:
    """A parser that lets through what the table's CHECK refuses (value >= 1000)."""
    obj = json_object(payload)
    try:
        ts = parse_time(obj.get("ts"))
    except TimeError as exc:
        raise PayloadError(f"field 'ts': {exc}") from None
    value = obj.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise PayloadError("field 'value' must be a number")
    return [(topic.split("/")[3], ts, float(value))]


GUARDED_ROUTE = Route(GUARDED, "its/v1/testguard/+/reading", GUARDED, ("sensor", "time", "value"), parse_guarded)


def make_guarded_table(db: Database) -> None:
    db.execute(
        f"SELECT its_create_timeseries('{GUARDED}', 'time', $$sensor text NOT NULL, time timestamptz NOT NULL,"
        " value float8 NOT NULL CHECK (value < 1000), PRIMARY KEY (sensor, time)$$)"
    )


def _settings(settings: Settings, batch_size: int = 5000) -> Settings:
    return settings.model_copy(update={
        "max_payload_bytes": 2048, "rejected_payload_max_bytes": 256, "collector_batch_size": batch_size,
        "collector_batch_ms": 200, "ingest_max_age_s_by_feed": {GUARDED: 30 * YEAR_S},
    })


@dataclass(frozen=True)
class Kind:
    """One kind of message: how to make it and what must become of it."""

    outcome: str  # table it is stored in, "rejected" or "ignored"
    reason: str  # a part of the dead letter's reason ("" unless rejected)
    make: Callable[[str, float], tuple[str, bytes]]  # (unique id, now s) -> (topic, payload)


def _pos(vid: str, ts: object, **extra: object) -> tuple[str, bytes]:
    return f"its/v1/vehicles/hx/{vid}/position", orjson.dumps({"ts": ts, "lat": -16.9, "lon": 145.7, **extra})


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


KINDS: dict[str, Kind] = {
    "position": Kind("vehicle_positions", "", lambda u, now: _pos(u, now - 60)),
    "position_within_skew": Kind("vehicle_positions", "", lambda u, now: _pos(u, _iso(now + 20))),
    "parking_count": Kind("parking_counts", "", lambda u, now: (
        f"its/v1/parking/{u}/counts", orjson.dumps({"ts": now - 5, "occupied": 7}))),
    "guarded": Kind(GUARDED, "", lambda u, now: (
        f"its/v1/testguard/{u}/reading", orjson.dumps({"ts": now - 1, "value": 1}))),
    "guarded_2005": Kind(GUARDED, "", lambda u, now: (
        f"its/v1/testguard/{u}/reading", orjson.dumps({"ts": "2005-03-01T12:00:00Z", "value": 2}))),
    "position_2005": Kind("rejected", "implausible time", lambda u, now: _pos(u, "2005-03-01T12:00:00Z")),
    "position_hour_ahead": Kind("rejected", "in the future", lambda u, now: _pos(u, now + 3600)),
    "position_days_ahead": Kind("rejected", "in the future", lambda u, now: _pos(u, now + 3 * 86400)),
    "position_1990": Kind("rejected", "before 2000", lambda u, now: _pos(u, "1990-01-01T00:00:00Z")),
    "not_utf8": Kind("rejected", "UTF-8", lambda u, now: (_pos(u, 0)[0], b"\xff\xfe\x00\x81")),
    "not_json": Kind("rejected", "invalid JSON", lambda u, now: (_pos(u, 0)[0], b"{ts: 1")),
    "not_object": Kind("rejected", "JSON object", lambda u, now: (_pos(u, 0)[0], b"[1, 2]")),
    "missing_field": Kind("rejected", "missing field 'lat'", lambda u, now: (
        _pos(u, 0)[0], orjson.dumps({"ts": now, "lon": 1.0}))),
    "lat_out_of_range": Kind("rejected", "outside", lambda u, now: _pos(u, now, lat=91.5)),
    "nan": Kind("rejected", "invalid JSON", lambda u, now: (_pos(u, 0)[0], b'{"ts": 1, "lat": NaN, "lon": 1}')),
    "duplicate_key": Kind("rejected", "duplicate key", lambda u, now: (
        _pos(u, 0)[0], f'{{"ts": {now}, "ts": {now - 1}, "lat": 1, "lon": 1}}'.encode())),
    "deep": Kind("rejected", "nested deeper", lambda u, now: (
        _pos(u, 0)[0], b'{"ts": 1, "a": {"b": {"c": {"d": {"e": 1}}}}}')),
    "oversized": Kind("rejected", "oversized", lambda u, now: (
        _pos(u, 0)[0], b'{"ts": 1, "pad": "' + b"x" * 3000 + b'"}')),
    "unknown_topic": Kind("rejected", "unknown_topic", lambda u, now: (f"its/v1/nosuch/{u}", b"{}")),
    "fake_snapshot": Kind("rejected", "unknown_topic", lambda u, now: (
        f"its/v1/vehicles/hx/{u}/snapshot", b"\xff\xd8 not a camera")),
    "bidi_topic": Kind("rejected", "unsafe topic", lambda u, now: _pos(f"{u}\u202egnp.exe", now - 1)),
    "bidi_trip": Kind("rejected", "bidi-override", lambda u, now: _pos(u, now - 1, trip_id="T\u2066 1")),
    "nul_line": Kind("rejected", "control", lambda u, now: (f"its/v1/cameras/{u}/counts", orjson.dumps({
        "interval_start": now - 60, "interval_s": 60, "line_id": "a\u0000b", "direction": "in",
        "vehicle_class": "car", "count": 3}))),
    "check_violation": Kind("rejected", "database rejected", lambda u, now: (
        f"its/v1/testguard/{u}/reading", orjson.dumps({"ts": now - 1, "value": 5000}))),
    "state": Kind("ignored", "", lambda u, now: (f"its/v1/state/parking/{u}", b'{"free": 1}')),
    "camera_snapshot": Kind("ignored", "", lambda u, now: (f"its/v1/cameras/{u}/snapshot", b"\xff\xd8\xff" * 50)),
}
TABLES = ("vehicle_positions", "parking_counts", GUARDED)


class Rig:
    """A collector session that is stopped between batches, so each batch is a broker backlog
    delivered at once (one collector batch: the bad messages sit among the valid ones)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.client_id = f"hostile-{time.time_ns()}"
        self.pub = connect(settings.mqtt_url or "", f"{self.client_id}-pub")
        self.collector = self._collector(settings)
        self.collector.start()  # the persistent session exists from now on
        self.collector.stop()

    def _collector(self, settings: Settings) -> Collector:
        return Collector(settings, self.db, [*domain_routes(), GUARDED_ROUTE], client_id=self.client_id)

    def run(self, messages: list[tuple[str, bytes]], settings: Settings) -> Collector:
        for topic, payload in messages:
            self.pub.publish(topic, payload, qos=1).wait_for_publish(10)
        collector = self._collector(settings)
        collector.start()
        t = collector.totals
        try:
            assert wait_for(lambda: t.stored + t.rejected + t.ignored >= len(messages), 60), vars(t)
            time.sleep(0.3)  # anything more (a redelivery) would show in the totals
        finally:
            collector.stop()
        return collector

    def unacknowledged(self, wait_s: float = 2.0) -> int:
        """Messages the broker still holds for the session (unacknowledged or queued)."""
        got: list[str] = []
        conn: MqttConnection = connect(self.settings.mqtt_url or "", self.client_id, persistent=True, manual_ack=True,
                                       on_message=lambda _c, _u, m: got.append(m.topic))
        time.sleep(wait_s)
        conn.close()
        return len(got)

    def close(self) -> None:
        self.pub.close()
        drop_session(self.settings.mqtt_url or "", self.client_id)


def _counts(db: Database) -> dict[str, int]:
    return {t: count(db, t) for t in (*TABLES, "rejected_messages")}


def _check(db: Database, rig: Rig, names: list[str], batch_size: int, repeat: bool, example: int) -> None:
    now = time.time()
    messages, expected = [], []
    for i, name in enumerate(names):
        messages.append(KINDS[name].make(f"e{example}n{i}", now))
        expected.append(KINDS[name])
    bad = [i for i, k in enumerate(expected) if k.outcome == "rejected"]
    if repeat and bad:  # the same bad message again: recorded as often as it came
        messages.append(messages[bad[0]])
        expected.append(expected[bad[0]])
    before = _counts(db)
    collector = rig.run(messages, _settings(rig.settings, batch_size))
    after = _counts(db)
    outcomes = Counter(k.outcome for k in expected)
    t = collector.totals
    # received = stored + dead-lettered (+ the platform's own topics, skipped), nothing dropped
    assert (t.stored, t.rejected, t.ignored, collector.dropped) == (
        sum(outcomes[x] for x in TABLES), outcomes["rejected"], outcomes["ignored"], 0), names
    for table in TABLES:
        assert after[table] - before[table] == outcomes[table], (table, names)
    assert after["rejected_messages"] - before["rejected_messages"] == outcomes["rejected"], names
    for (topic, _), kind in zip(messages, expected, strict=True):
        if kind.outcome == "rejected":
            reasons = [r for (r,) in db.fetchall("SELECT reason FROM rejected_messages WHERE topic = %s", (topic,))]
            assert reasons and all(kind.reason in r for r in reasons), (topic, kind.reason, reasons)


def test_mixed_batches_lose_nothing_and_leave_nothing_unacknowledged(settings: Settings, db: Database) -> None:
    make_guarded_table(db)
    rig = Rig(settings, db)
    examples = [0]

    @settings_for_batches
    @given(names=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=24),
           batch_size=st.sampled_from([3, 5000]), repeat=st.booleans())
    def batch(names: list[str], batch_size: int, repeat: bool) -> None:
        examples[0] += 1
        _check(db, rig, names, batch_size, repeat, examples[0])

    try:
        batch()
        assert rig.unacknowledged() == 0
    finally:
        rig.close()


settings_for_batches = settings(max_examples=15, deadline=None, database=None, derandomize=True,
                                suppress_health_check=list(HealthCheck))


def test_old_position_among_current_ones_costs_only_itself(settings: Settings, db: Database) -> None:
    """The issue's case: one position dated 2005 among 60 current ones, in one batch."""
    rig = Rig(settings, db)
    now = time.time()
    messages = [_pos(f"bus{i}", now - 30 - i) for i in range(60)]
    messages.insert(17, _pos("old", "2005-03-01T12:00:00Z"))
    try:
        collector = rig.run(messages, _settings(settings))
        assert (collector.totals.stored, collector.totals.rejected) == (60, 1)
        assert count(db, "vehicle_positions") == 60
        ((topic, reason),) = db.fetchall("SELECT topic, reason FROM rejected_messages")
        assert topic.endswith("/old/position") and "implausible time" in reason and "7 days" in reason
        parts = db.fetchall("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                            " WHERE i.inhparent = 'vehicle_positions'::regclass AND c.relname LIKE '%2005%'")
        assert parts == []  # a publisher cannot make the collector create partitions for past days
        assert rig.unacknowledged() == 0
    finally:
        rig.close()


def test_a_batch_the_database_refuses_is_split_not_lost(settings: Settings, db: Database) -> None:
    """Rows the parsers pass but the database refuses (a CHECK, a COPY spanning 20 years of
    partitions): the batch is split until the culprits stand alone."""
    make_guarded_table(db)
    rig = Rig(settings, db)
    now = time.time()
    messages = [(f"its/v1/testguard/s{i}/reading", orjson.dumps({"ts": now - i, "value": i})) for i in range(60)]
    messages.insert(40, ("its/v1/testguard/bad/reading", orjson.dumps({"ts": now, "value": 5000})))
    messages.insert(10, ("its/v1/testguard/old/reading", orjson.dumps({"ts": "2005-03-01T12:00:00Z", "value": 1})))
    try:
        collector = rig.run(messages, _settings(settings))
        assert (collector.totals.stored, collector.totals.rejected) == (61, 1)
        assert count(db, GUARDED) == 61
        ((topic, reason),) = db.fetchall("SELECT topic, reason FROM rejected_messages")
        assert topic == "its/v1/testguard/bad/reading" and "CheckViolation" in reason
        assert rig.unacknowledged() == 0
    finally:
        rig.close()

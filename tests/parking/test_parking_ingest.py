"""Parsing of sensor and counter messages, and idempotent storage through the collector batch path."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from its.batch import process_batch
from its.db import Database
from its.dead_letters import Message
from its.ingest import PayloadError, Router
from parking.ingest import ROUTES, count_topic, parse_count, parse_space, space_topic

TS = "2026-11-24T10:00:00+10:00"


def test_space_message() -> None:
    (row,) = parse_space(space_topic("CNS-ABBOTT", "07"), b'{"ts": "%s", "occupied": true, "battery_v": 3.6, "rssi": -87}' % TS.encode())
    assert row == ("CNS-ABBOTT", "07", datetime(2026, 11, 24, 0, 0, tzinfo=UTC), True, 3.6, -87.0)
    (row,) = parse_space(space_topic("S", "1"), b'{"ts": 1764000000, "occupied": false}')
    assert row[3] is False and row[4] is None and row[5] is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"ts": 1764000000, "occupied": 1}', "'occupied' must be a boolean"),
        (b'{"occupied": true}', "missing field 'ts'"),
        (b'{"ts": "yesterday", "occupied": true}', "field 'ts'"),
        (b'{"ts": 1764000000, "occupied": true, "battery_v": -1}', "'battery_v'"),
        (b'{"ts": 1764000000, "occupied": true, "rssi": "weak"}', "'rssi'"),
        (b"[true]", "JSON object"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_bad_space_messages_name_the_field(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_space(space_topic("S", "1"), payload)


def test_count_messages() -> None:
    (row,) = parse_count(count_topic("LOT"), b'{"ts": 1764000000, "occupied": 412}')
    assert row[0] == "LOT" and row[2:] == (412, None, None)
    (row,) = parse_count(count_topic("LOT"), b'{"ts": 1764000000, "entries": 3, "exits": 0}')
    assert row[2:] == (None, 3, 0)
    (row,) = parse_count(count_topic("LOT"), b'{"ts": 1764000000, "occupied": -3}')
    assert row[2] == -3  # kept as sent; availability clamps and flags it


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"ts": 1764000000}', "need field 'occupied' or 'entries'/'exits'"),
        (b'{"ts": 1764000000, "entries": -1}', "'entries'"),
        (b'{"ts": 1764000000, "occupied": 2.5}', "'occupied' must be an integer"),
        (b'{"ts": 1764000000, "exits": true}', "'exits' must be an integer"),
        (b'{"occupied": 3}', "missing field 'ts'"),
    ],
)
def test_bad_count_messages(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_count(count_topic("LOT"), payload)


def test_bad_topic_ids() -> None:
    with pytest.raises(PayloadError, match="site id"):
        parse_count("its/v1/parking//counts", b'{"ts": 1764000000, "occupied": 1}')


def test_stored_once_and_bad_ones_rejected(db: Database) -> None:
    now = datetime.now(UTC)
    ts = now.timestamp()
    good = [
        Message(1, 1, space_topic("Z", "1"), orjson.dumps({"ts": ts, "occupied": True}), now),
        Message(2, 1, count_topic("LOT"), orjson.dumps({"ts": ts, "occupied": 10}), now),
        Message(3, 1, count_topic("LOT"), orjson.dumps({"ts": ts + 60, "entries": 2, "exits": 1}), now),
    ]
    bad = Message(4, 1, count_topic("LOT"), b'{"ts": 1}', now)
    router = Router(ROUTES)
    with db.connection() as conn:
        first = process_batch(conn, router, [*good, bad], 65536)
    with db.connection() as conn:
        again = process_batch(conn, router, good, 65536)  # redelivery
    assert (first.inserted, first.rejected) == (3, 1)
    assert again.inserted == 0
    assert db.fetchall("SELECT count(*) FROM parking_counts") == [(2,)]
    assert db.fetchall("SELECT site_id, space_id, occupied FROM parking_space_events") == [("Z", "1", True)]
    (reason,) = db.fetchall("SELECT reason FROM rejected_messages")[0]
    assert "'ts'" in reason

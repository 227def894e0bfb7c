"""Real helpers for collector tests: a small time-series table and its route."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from its.db import Database
from its.ingest import PayloadError, Route, json_object, require_float
from its.mqtt import connect
from its.timeutil import TimeError, parse_time

TOPIC = "its/v1/testfeed/{sensor}/reading"
#: Start of the readings' times: midnight UTC three days ago, recent enough for the collector's
#: plausibility window (ITS_INGEST_MAX_AGE_S, 7 days) with room for a day of readings at 1 Hz.
T0 = float((int(time.time()) // 86400 - 3) * 86400)


def make_readings_table(db: Database) -> None:
    db.execute(
        "SELECT its_create_timeseries('test_readings', 'time',"
        " $$sensor text NOT NULL, time timestamptz NOT NULL, value float8 NOT NULL,"
        " PRIMARY KEY (sensor, time)$$)"
    )


def parse_reading(topic: str, payload: bytes) -> Sequence[tuple[Any, ...]]:
    obj = json_object(payload)
    try:
        ts = parse_time(obj.get("ts"))
    except TimeError as exc:
        raise PayloadError(f"field 'ts': {exc}") from None
    return [(topic.split("/")[3], ts, require_float(obj, "value", -1e6, 1e6))]


READINGS = Route("test_readings", "its/v1/testfeed/+/reading", "test_readings", ("sensor", "time", "value"), parse_reading)


def publish_readings(url: str, n: int, *, sensors: int = 50, t0: float = T0,
                     start: int = 0, pace: Callable[[int], None] | None = None) -> list[tuple[str, float]]:
    """Publish n distinct readings at QoS 1, waiting for every PUBACK; return their keys."""
    pub = connect(url, f"test-pub-{time.time_ns()}")
    infos, keys = [], []
    for i in range(start, start + n):
        sensor = f"s{i % sensors}"
        ts = t0 + i
        infos.append(pub.client.publish(TOPIC.format(sensor=sensor), orjson.dumps({"ts": ts, "value": i}), qos=1))
        keys.append((sensor, ts))
        if pace is not None:
            pace(i)
        if len(infos) >= 2000:
            for info in infos:
                info.wait_for_publish(30)
            infos.clear()
    for info in infos:
        info.wait_for_publish(30)
    pub.close()
    return keys


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()


def count(db: Database, table: str) -> int:
    return int(db.fetchall(f"SELECT count(*) FROM {table}")[0][0])

"""Every MQTT handler fuzzed: it returns rows or raises PayloadError, never anything else,
and through a real broker and collector, received = stored + rejected exactly."""

from __future__ import annotations

import math
import re
import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from its.app.registry import domain_routes
from its.collector import Collector
from its.db import Database
from its.ingest import PayloadError, Route
from its.mqtt import connect
from its.settings import Settings

ROUTES = domain_routes()
IDS = st.from_regex(re.compile(r"[A-Za-z0-9_\-]{1,12}"), fullmatch=True)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["2026-02-16T15:58:00Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "", "NaN"]),
    st.sampled_from([1.7e9, 1.7e12, -1.0, 1e300, 91.0, -181.0, 0.0]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
FIELDS = ["ts", "lat", "lon", "speed_mps", "bearing", "trip_id", "route_id", "start_date", "occupied",
          "entries", "exits", "online", "interval_start", "interval_s", "line_id", "direction",
          "vehicle_class", "count", "mean_speed_kmh", "occupancy", "battery_v", "rssi", "odometer_m"]


def _topic(route: Route, draw: st.DrawFn) -> str:
    return "/".join(draw(IDS) if level == "+" else level for level in route.topic_filter.split("/"))


@st.composite
def messages(draw: st.DrawFn) -> tuple[Route, str, bytes]:
    route = draw(st.sampled_from(ROUTES))
    topic = _topic(route, draw)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        payload = draw(st.binary(max_size=200))
    elif kind == 1:
        obj = draw(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=12))
        payload = orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS) if _json_safe(obj) else b"{}"
    elif kind == 2:
        nested = {"ts": 1.7e9}
        for _ in range(draw(st.integers(1, 30))):
            nested = {"x": nested}
        payload = orjson.dumps(nested)
    else:
        payload = b'{"ts": 1700000000, "ts": 1700000001, "lat": 1, "lon": 2}'
    return route, topic, payload


def _json_safe(obj: object) -> bool:
    try:
        orjson.dumps(obj)
    except TypeError:
        return False
    return True


@pytest.mark.skipif(not ROUTES, reason="no routes")
@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_parsers_return_rows_or_payload_error(msg: tuple[Route, str, bytes]) -> None:
    route, topic, payload = msg
    try:
        rows = route.parse(topic, payload)
    except PayloadError as exc:
        assert str(exc)
        return
    for row in rows:
        assert len(row) == len(route.columns)
        for value in row:
            assert not (isinstance(value, float) and not math.isfinite(value)), (route.feed, row)


def test_collector_received_equals_stored_plus_rejected(settings: Settings, db: Database) -> None:
    examples: list[tuple[str, bytes]] = []

    @settings_for_sampling
    @given(messages())
    def collect(msg: tuple[Route, str, bytes]) -> None:
        examples.append((msg[1], msg[2]))

    collect()
    collector = Collector(settings, db, ROUTES, client_id="fuzz-collector")
    collector.start()
    pub = connect(settings.mqtt_url or "", "fuzz-pub")
    for topic, payload in examples:
        pub.client.publish(topic, payload, qos=1).wait_for_publish(10)
    pub.close()
    deadline = time.monotonic() + 60
    while collector.totals.stored + collector.totals.rejected < len(examples) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    collector.stop()
    assert collector.totals.stored + collector.totals.rejected == len(examples)
    distinct_rejected = db.fetchall("SELECT count(*) FROM rejected_messages")[0][0]
    assert 0 < distinct_rejected <= collector.totals.rejected


settings_for_sampling = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                                 suppress_health_check=list(HealthCheck))

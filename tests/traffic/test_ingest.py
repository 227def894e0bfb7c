"""Parsing of the live messages the traffic service subscribes to."""

from __future__ import annotations

import math

import orjson
import pytest

from its.ingest import PayloadError
from traffic.ingest import parse_count_message, parse_position_message

POS = "its/v1/vehicles/wmata/5473/position"
CNT = "its/v1/cameras/cam-1/counts"


def test_position_message() -> None:
    m = parse_position_message(POS, orjson.dumps({"ts": "2026-02-16T15:58:02Z", "lat": 38.9, "lon": -77.0}))
    assert m.vehicle == "wmata/5473" and m.time_s == 1771257482.0 and math.isnan(m.heading_deg)
    assert parse_position_message(POS, orjson.dumps({"ts": 1771257482, "lat": 0, "lon": 0, "bearing": 90})).heading_deg == 90


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    (POS, b"not json", "JSON"),
    (POS, orjson.dumps({"lat": 1, "lon": 2}), "'ts'"),
    (POS, orjson.dumps({"ts": "2026-02-16T15:58:02Z", "lat": 91, "lon": 2}), "lat"),
    (POS, orjson.dumps({"ts": "garbage", "lat": 1, "lon": 2}), "'ts'"),
    ("its/v1/vehicles/wmata/position", orjson.dumps({"ts": 1, "lat": 1, "lon": 2}), "topic"),
])
def test_bad_positions_name_the_problem(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_position_message(topic, payload)


def test_count_message_and_errors() -> None:
    body = {"interval_start": "2026-02-16T16:00:00Z", "interval_s": 60, "line_id": "north", "direction": "in",
            "vehicle_class": "car", "count": 12, "mean_speed_kmh": 36.0}
    m = parse_count_message(CNT, orjson.dumps(body))
    assert (m.camera_id, m.line_id, m.direction, m.count, m.interval_s) == ("cam-1", "north", "in", 12, 60)
    assert m.mean_speed_mps == pytest.approx(10.0)
    with pytest.raises(PayloadError, match="direction"):
        parse_count_message(CNT, orjson.dumps({**body, "direction": "up"}))
    with pytest.raises(PayloadError, match="count"):
        parse_count_message(CNT, orjson.dumps({**body, "count": -1}))

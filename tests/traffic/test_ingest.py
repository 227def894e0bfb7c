"""The traffic service reads live messages with the parsers of the domains that own them."""

from __future__ import annotations

import math

import orjson
import pytest

from its.ingest import PayloadError
from telematics.ingest import ROUTES as POSITION_ROUTES
from traffic.service import TrafficService
from video.ingest import ROUTES as COUNT_ROUTES

POS = "its/v1/vehicles/wmata/5473/position"
CNT = "its/v1/cameras/cam-1/counts"
COUNT = {"interval_start": "2026-02-16T16:00:00Z", "interval_s": 60, "line_id": "north", "direction": "in",
         "vehicle_class": "car", "count": 12, "mean_speed_kmh": 36.0}


def test_position_and_count_messages_keep_units() -> None:
    svc = TrafficService()
    svc.on_position(POS, orjson.dumps({"ts": "2026-02-16T15:58:02Z", "lat": 38.9, "lon": -77.0}))
    svc.on_position(POS, orjson.dumps({"ts": 1771257483, "lat": 38.9, "lon": -77.0, "bearing": 90}))
    first, second = svc._pings
    assert first.vehicle == "wmata/5473" and first.time_s == 1771257482.0 and math.isnan(first.heading_deg)
    assert second.heading_deg == 90
    svc.on_counts(CNT, orjson.dumps(COUNT))
    (m,) = svc._counts
    assert (m.camera_id, m.line_id, m.direction, m.count, m.interval_s) == ("cam-1", "north", "in", 12, 60)
    assert m.mean_speed_mps == pytest.approx(10.0)


@pytest.mark.parametrize(("topic", "payload"), [
    (POS, b"not json"),
    (POS, orjson.dumps({"lat": 1, "lon": 2})),
    (POS, orjson.dumps({"ts": "2026-02-16T15:58:02Z", "lat": 91, "lon": 2})),
    (POS, orjson.dumps({"ts": "garbage", "lat": 1, "lon": 2})),
    (POS, orjson.dumps({"ts": 1771257482, "lat": 0, "lon": 0})),  # no GPS fix: once accepted here only
    ("its/v1/vehicles/wmata/position", orjson.dumps({"ts": 1, "lat": 1, "lon": 2})),
    (CNT, orjson.dumps({**COUNT, "direction": "up"})),
    (CNT, orjson.dumps({**COUNT, "count": -1})),
    (CNT, orjson.dumps({**COUNT, "count": 2.5})),  # whole vehicles only: once accepted here only
    (CNT, orjson.dumps({k: v for k, v in COUNT.items() if k != "vehicle_class"})),
])
def test_what_the_collector_dead_letters_is_not_used_live(topic: str, payload: bytes) -> None:
    route = next(r for r in (*POSITION_ROUTES, *COUNT_ROUTES) if r.matches(topic) or "/vehicles/" in topic)
    with pytest.raises(PayloadError):
        route.parse(topic, payload)  # the collector's parser refuses it (a dead letter) ...
    svc = TrafficService()
    (svc.on_counts if "/cameras/" in topic else svc.on_position)(topic, payload)
    assert svc._pings == [] and svc._counts == []  # ... and the live service ignores it

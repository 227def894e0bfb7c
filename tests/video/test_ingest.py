from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from its.db import Database, copy_rows
from its.ingest import PayloadError
from video.ingest import COUNT_COLUMNS, ROUTES, parse_counts

TOPIC = "its/v1/cameras/cam-1/counts"
GOOD = {"interval_start": "2026-01-05T08:01:00Z", "interval_s": 60, "line_id": "north", "direction": "in",
        "vehicle_class": "car", "count": 14, "mean_speed_kmh": 72.0, "occupancy": 0.12}


def test_parse_counts_row_in_si_units() -> None:
    (row,) = parse_counts(TOPIC, orjson.dumps(GOOD))
    assert row[:4] == ("cam-1", "north", "in", "car")
    assert row[4] == datetime(2026, 1, 5, 8, 1, tzinfo=UTC)
    assert row[5:7] == (60, 14) and row[7] == pytest.approx(20.0) and row[8] == 0.12
    minimal = {k: GOOD[k] for k in ("interval_start", "interval_s", "line_id", "direction", "vehicle_class", "count")}
    assert parse_counts(TOPIC, orjson.dumps(minimal))[0][7:] == (None, None)
    assert ROUTES[0].matches(TOPIC) and not ROUTES[0].matches("its/v1/cameras/cam-1/snapshot")


@pytest.mark.parametrize(("change", "field"), [
    ({"direction": "up"}, "direction"),
    ({"vehicle_class": "bicycle"}, "vehicle_class"),
    ({"count": -1}, "count"),
    ({"count": 2.5}, "count"),
    ({"interval_start": "yesterday"}, "interval_start"),
    ({"occupancy": 1.5}, "occupancy"),
    ({"line_id": ""}, "line_id"),
    ({"interval_s": None}, "interval_s"),
])
def test_bad_payloads_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(PayloadError, match=field):
        parse_counts(TOPIC, orjson.dumps({**GOOD, **change}))


def test_rows_are_stored_idempotently(db: Database) -> None:
    rows = list(parse_counts(TOPIC, orjson.dumps(GOOD)))
    rows += parse_counts("its/v1/cameras/cam-2/counts", orjson.dumps({**GOOD, "count": 3}))
    with db.connection() as conn:
        assert copy_rows(conn, "traffic_counts", COUNT_COLUMNS, rows) == 2
    with db.connection() as conn:
        assert copy_rows(conn, "traffic_counts", COUNT_COLUMNS, rows[:1]) == 0  # redelivery
    got = db.fetchall("SELECT camera_id, count, mean_speed_mps FROM traffic_counts ORDER BY camera_id")
    assert [(c, n) for c, n, _ in got] == [("cam-1", 14), ("cam-2", 3)] and got[0][2] == pytest.approx(20.0)


def test_camera_status_health_and_position_are_optional() -> None:
    from its.devices import parse_device_status
    from video.ingest import parse_camera_status

    topic = "its/v1/devices/camera/cam-1/status"
    full = {"online": True, "ts": "2026-01-05T08:01:00Z", "lat": -16.92, "lon": 145.77,
            "health": {"conditions": ["too_dark", "moved"], "brightness": 21.5, "sharpness_ratio": 0.9}}
    msg = parse_camera_status(topic, orjson.dumps(full))
    assert msg.conditions == {"too_dark", "moved"} and (msg.lat, msg.lon) == (-16.92, 145.77)
    assert msg.status == parse_device_status(topic, orjson.dumps(full))[0]  # the stored row is unchanged
    will = parse_camera_status(topic, b'{"online": false}')
    assert will.conditions is None and will.lat is None and will.status.online is False
    for bad in ({"health": "dark"}, {"health": {"conditions": ["on_fire"]}}, {"health": {}}, {"lat": 91}):
        with pytest.raises(PayloadError):
            parse_camera_status(topic, orjson.dumps({"online": True, **bad}))

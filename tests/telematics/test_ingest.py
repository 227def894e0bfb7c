"""Position payload parsing (JSON and GTFS-rt) and storage through the ingestion route."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from google.transit import gtfs_realtime_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from its.db import Database, copy_rows
from its.ingest import PayloadError, Router
from telematics.ingest import ROUTES, parse_gtfsrt_position, parse_json_position

TOPIC = "its/v1/vehicles/wmata/5473/position"


def _json(**fields: object) -> bytes:
    base: dict[str, object] = {"ts": "2026-02-16T15:58:02Z", "lat": 38.923519, "lon": -77.052109}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_json_position_full_row() -> None:
    payload = _json(speed_mps=4.57, bearing=265.0, trip_id="8428100", route_id="C53", start_date="20260216",
                    start_time="7:30:00", odometer_m=1234.5, occupancy="many_seats_available")
    [row] = parse_json_position(TOPIC, payload)
    assert row == ("wmata", "5473", datetime(2026, 2, 16, 15, 58, 2, tzinfo=UTC), 38.923519, -77.052109, 4.57,
                   265.0, "8428100", "C53", date(2026, 2, 16), 1234.5, "MANY_SEATS_AVAILABLE", "07:30:00")
    assert parse_json_position(TOPIC, _json(start_time="25:10:00"))[0][-1] == "25:10:00"  # past midnight
    assert parse_json_position(TOPIC, _json())[0][-1] is None
    for bad in ("7h30", "07:60:00", 27000, "123:00:00"):
        with pytest.raises(PayloadError, match="start_time"):
            parse_json_position(TOPIC, _json(start_time=bad))
    [epoch] = parse_json_position(TOPIC, _json(ts=1771257482000))
    assert epoch[2] == datetime(2026, 2, 16, 15, 58, 2, tzinfo=UTC)


@pytest.mark.parametrize(("payload", "field"), [
    (_json(lat=...), "lat"), (_json(lat=91.0), "lat"), (_json(lon=-180.5), "lon"), (_json(lat="38.9"), "lat"),
    (b'{"ts": "2026-02-16T15:58:02Z", "lat": NaN, "lon": 1}', "JSON"), (_json(lat=1e400), "lat"),
    (_json(ts=...), "ts"), (_json(ts="yesterday"), "ts"), (_json(ts="2099-01-01T00:00:00Z"), "ts"),
    (_json(ts=True), "ts"), (_json(speed_mps=-1), "speed_mps"), (_json(speed_mps=500), "speed_mps"),
    (_json(bearing=361), "bearing"), (_json(trip_id=17), "trip_id"), (_json(start_date="2026-02-16"), "start_date"),
    (_json(start_date="20260231"), "start_date"), (_json(occupancy="PACKED"), "occupancy"),
    (_json(odometer_m=-5), "odometer_m"), (_json(lat=0.0, lon=0.0), "lat"), (b"[1, 2]", "object"),
    (b"\xff\xfe", "UTF-8"),
])
def test_json_position_rejections_name_the_field(payload: bytes, field: str) -> None:
    with pytest.raises(PayloadError, match=field):
        parse_json_position(TOPIC, payload)


def test_bad_topic_rejected() -> None:
    with pytest.raises(PayloadError, match="topic"):
        parse_json_position("its/v1/vehicles/wmata/position", _json())


def test_gtfsrt_feed_and_bare_vehicle_position(gtfsrt_snapshots: list[Path]) -> None:
    snapshots = gtfsrt_snapshots  # real Minneapolis snapshots of 2019-06-19 when shared
    assert len(snapshots) == 3
    total = 0
    for path in snapshots:
        raw = path.read_bytes()
        msg = gtfs_realtime_pb2.FeedMessage()
        msg.ParseFromString(raw)
        rows = parse_gtfsrt_position("its/v1/vehicles/metro/gateway/position/gtfsrt", raw)
        assert len(rows) == sum(e.HasField("vehicle") for e in msg.entity) > 0
        for row, entity in zip(rows, (e for e in msg.entity if e.HasField("vehicle")), strict=True):
            assert row[1] == entity.vehicle.vehicle.id
            assert row[2].timestamp() == entity.vehicle.timestamp
            pos = entity.vehicle.position
            assert abs(row[3] - pos.latitude) < 1e-5 and abs(row[4] - pos.longitude) < 1e-5
            start = entity.vehicle.trip.start_date
            assert row[9] == (date(int(start[:4]), int(start[4:6]), int(start[6:])) if start else None)
        total += len(rows)
    assert total >= 20  # Minneapolis: 32
    vp = msg.entity[0].vehicle
    [row] = parse_gtfsrt_position("its/v1/vehicles/metro/1796/position/gtfsrt", vp.SerializeToString())
    assert row[1] == "1796" and row[7] == vp.trip.trip_id


def test_gtfsrt_rejections() -> None:
    topic = "its/v1/vehicles/metro/1796/position/gtfsrt"
    with pytest.raises(PayloadError, match="empty"):
        parse_gtfsrt_position(topic, b"")
    with pytest.raises(PayloadError, match="FeedMessage or VehiclePosition"):
        parse_gtfsrt_position(topic, b"\xff\xff\xff\xff")
    vp = gtfs_realtime_pb2.VehiclePosition()
    vp.position.latitude, vp.position.longitude, vp.timestamp = 95.0, -93.2, 1560958853
    with pytest.raises(PayloadError, match="latitude"):
        parse_gtfsrt_position(topic, vp.SerializeToString())
    vp.position.latitude = 44.9
    vp.ClearField("timestamp")
    with pytest.raises(PayloadError, match="timestamp"):
        parse_gtfsrt_position(topic, vp.SerializeToString())


def test_routes_store_positions_idempotently(db: Database) -> None:
    router = Router(ROUTES)
    json_route = router.route(TOPIC)
    rt_route = router.route(TOPIC + "/gtfsrt")
    assert json_route is not None and rt_route is not None and json_route is not rt_route
    rows = json_route.parse(TOPIC, _json(trip_id="8428100", start_date="20260216", start_time="06:05:00"))
    with db.connection() as conn:
        assert copy_rows(conn, json_route.table, json_route.columns, rows) == 1
        assert copy_rows(conn, json_route.table, json_route.columns, rows) == 0  # redelivery harmless
    stored = db.fetchall("SELECT agency, vehicle_id, trip_id, start_date, start_time FROM vehicle_positions")
    assert stored == [("wmata", "5473", "8428100", date(2026, 2, 16), "06:05:00")]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_ever_raise_payload_error(payload: bytes) -> None:
    for parse, topic in ((parse_json_position, TOPIC), (parse_gtfsrt_position, TOPIC + "/gtfsrt")):
        try:
            rows = parse(topic, payload)
        except PayloadError:
            continue
        for row in rows:  # whatever is accepted is a valid row
            assert -90 <= row[3] <= 90 and -180 <= row[4] <= 180 and row[2].tzinfo is not None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["ts", "lat", "lon", "speed_mps", "bearing", "trip_id", "start_date",
                                        "start_time", "odometer_m", "occupancy"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))))
def test_arbitrary_json_objects_only_ever_raise_payload_error(obj: dict[str, object]) -> None:
    try:
        payload = orjson.dumps(obj)
    except TypeError:
        return
    with contextlib.suppress(PayloadError):
        parse_json_position(TOPIC, payload)

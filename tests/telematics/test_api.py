"""The arrivals API through FastAPI's TestClient, on state loaded from a real database.

The WMATA feed is imported, the first 1.5 hours of its real AVL are stored in
``vehicle_positions`` through the JSON ingestion parser, and the service (its clock set
to the last stored ping) rebuilds its state from the store at start, as in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2

from its.alerts import AlertSink
from its.app.factory import create_app
from its.db import Database
from its.service import Context
from its.settings import load_settings
from telematics.board import public_view
from telematics.gtfs.database import import_feed_file
from telematics.ingest import parse_json_position
from telematics.service import ArrivalsService
from telematics.store import write_positions


def _messages(avl: pd.DataFrame) -> list[tuple[str, bytes]]:
    """AVL CSV rows as JSON position messages (topic, payload)."""
    out = []
    for r in avl.to_dict("records"):
        payload: dict[str, Any] = {"ts": r["timestamp"], "lat": float(r["lat"]), "lon": float(r["lon"]),
                                   "trip_id": r["trip_id"], "start_date": r["start_date"]}
        if r["speed_mps"]:
            payload["speed_mps"] = float(r["speed_mps"])
        out.append((f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(payload)))
    return out


@pytest.fixture(scope="module")
def loaded(module_db: Database, wmata_dir: Path, cairns_zip: Path) -> tuple[Database, float, pd.DataFrame]:
    import_feed_file(module_db, wmata_dir / "wmata_gtfs.zip", "wmata")
    import_feed_file(module_db, cairns_zip, "cairns")
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values("timestamp")
    avl = avl[avl["timestamp"] < "2026-02-16T17:30:00Z"]
    rows = []
    for topic, payload in _messages(avl):
        rows += parse_json_position(topic, payload)
    assert write_positions(module_db, rows) == len(rows)
    last = max(r[2] for r in rows).timestamp()
    return module_db, last, avl


@pytest.fixture(scope="module")
def client(loaded: tuple[Database, float, pd.DataFrame]) -> Iterator[tuple[TestClient, ArrivalsService]]:
    db, last, _avl = loaded
    settings = load_settings(database_url=db.url, mqtt_url=None)
    ctx = Context(settings=settings, db=db, read_db=db, alerts=AlertSink(db))
    from telematics.config import TelematicsSettings

    service = ArrivalsService(TelematicsSettings(recent_positions_min=95, history_days=0), clock=lambda: last,
                              background=False)
    app = create_app(settings, [service], context=ctx)
    with TestClient(app) as tc:
        deadline = time.monotonic() + 300  # a loaded CI machine can be slow to rebuild the state
        while not service.ready() and time.monotonic() < deadline:
            ready = tc.get("/readyz").json()
            assert "errors" not in ready, ready
            time.sleep(0.2)
        assert service.ready()
        yield tc, service


def test_stops_near_cairns_and_bad_coordinates(client: tuple[TestClient, ArrivalsService]) -> None:
    tc, _ = client
    res = tc.get("/v1/stops", params={"lat": -16.74359, "lon": 145.668217, "radius_m": 400})
    assert res.status_code == 200
    stops = res.json()["stops"]
    assert stops[0]["stop_id"] == "750000" and stops[0]["distance_m"] < 1.0
    assert all(s["distance_m"] <= 400 for s in stops) and len(stops) >= 2
    assert [s["distance_m"] for s in stops] == sorted(s["distance_m"] for s in stops)
    for params in ({"lat": 91, "lon": 0}, {"lat": "north", "lon": 0}, {"lat": 0}, {"lat": 0, "lon": 0, "radius_m": -1}):
        bad = tc.get("/v1/stops", params=params)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_parameter"


def test_unknown_ids_give_404_json(client: tuple[TestClient, ArrivalsService]) -> None:
    tc, _ = client
    for path in ("/v1/stops/nope", "/v1/stops/nope/arrivals", "/v1/routes/nope/vehicles", "/v1/vehicles/nope"):
        res = tc.get(path)
        assert res.status_code == 404 and res.json()["error"]["code"] == "not_found", path


def test_arrivals_predicted_and_consistent_with_vehicle(client: tuple[TestClient, ArrivalsService]) -> None:
    tc, service = client
    snap = service.snapshot
    stop_id = max(snap.arrivals, key=lambda s: sum(e["predicted"] for e in snap.arrivals[s]))
    res = tc.get(f"/v1/stops/{stop_id}/arrivals", params={"minutes": 60})
    assert res.status_code == 200
    body = res.json()
    assert body["stop"]["stop_id"] == stop_id
    items = body["arrivals"]
    predicted = [a for a in items if a["predicted"]]
    assert predicted, "a stop with vehicles approaching must have predictions"
    now = datetime.fromtimestamp(snap.now_s, UTC)
    for a in predicted:
        arrival = datetime.fromisoformat(a["predicted_arrival"].replace("Z", "+00:00"))
        assert a["fallback"] is None and a["vehicle_id"] and a["stops_away"] >= 0 and a["distance_m"] >= 0
        assert (arrival - now).total_seconds() <= 3600 + 1
        assert a["p10_arrival"] <= a["predicted_arrival"] <= a["p90_arrival"]
        assert 0 <= a["age_s"] <= service.config.stale_after_s
        veh = tc.get(f"/v1/vehicles/{a['vehicle_id']}").json()
        # the vehicle runs the trip now, or will next in its block
        assert a["trip_id"] in (veh["trip_id"], service.fleets["wmata"].block_next.get(veh["trip_id"]))
    keys = [a["predicted_arrival"] or a["scheduled_arrival"] for a in items]
    assert keys == sorted(keys)
    for a in items:
        if not a["predicted"]:
            assert a["fallback"] in ("no_vehicle", "stale_vehicle") and a["scheduled_arrival"]
    short = tc.get(f"/v1/stops/{stop_id}/arrivals", params={"minutes": 5}).json()["arrivals"]
    assert len(short) <= len(items)
    assert tc.get(f"/v1/stops/{stop_id}/arrivals", params={"minutes": 0}).status_code == 422


def test_served_arrivals_are_the_snapshot_exactly(client: tuple[TestClient, ArrivalsService]) -> None:
    """The pre-serialised answer (only ``age_s`` written per request) equals serialising the
    snapshot's entries afresh, for predicted and scheduled entries and every window."""
    tc, service = client
    snap = service.snapshot
    stops = sorted(snap.arrivals, key=lambda s: -len(snap.arrivals[s]))[:40]
    kinds = {e["fallback"] for s in stops for e in snap.arrivals[s]}
    assert {None, "no_vehicle"} <= kinds, kinds
    for stop_id in stops:
        for minutes in (5, 60):
            horizon = snap.now_s + minutes * 60.0
            expected = orjson.dumps({
                "stop": service.stops[stop_id], "generated_at": snap.generated_at,
                "arrivals": [public_view(e, service.clock()) for e in snap.arrivals[stop_id] if e["_sort"] <= horizon],
            })
            res = tc.get(f"/v1/stops/{stop_id}/arrivals", params={"minutes": minutes})
            assert res.status_code == 200 and res.content == expected, stop_id
    assert sum(len(tc.get(f"/v1/stops/{s}/arrivals").json()["arrivals"]) for s in stops) > 0


def test_stale_vehicles_fall_back_to_schedule(client: tuple[TestClient, ArrivalsService]) -> None:
    _tc, service = client
    later = service.snapshot.now_s + service.config.stale_after_s + 60
    snap = service.refresh(later)
    try:
        entries = [e for items in snap.arrivals.values() for e in items]
        assert not any(e["predicted"] for e in entries)
        assert any(e["fallback"] == "stale_vehicle" for e in entries)
        kinds = {a.kind for a in service.ctx.alerts.active()} if service.ctx else set()
        assert "stale_vehicle" in kinds
    finally:
        service.refresh(service.clock())


def test_routes_and_vehicles(client: tuple[TestClient, ArrivalsService]) -> None:
    tc, _service = client
    routes = tc.get("/v1/routes").json()["routes"]
    feed_routes = set(_service.fleets["wmata"].feed.routes["route_id"])  # WMATA: C53, D40, D96
    assert feed_routes <= {r["route_id"] for r in routes if r["agency"] == "wmata"}
    route = "C53" if "C53" in feed_routes else sorted(feed_routes)[0]
    on_route = tc.get(f"/v1/routes/{route}/vehicles").json()["vehicles"]
    assert on_route and all(v["route_id"] == route and not v["stale"] for v in on_route)


def test_gtfs_rt_feeds_parse(client: tuple[TestClient, ArrivalsService]) -> None:
    tc, service = client
    res = tc.get("/gtfs-rt/trip-updates")
    assert res.status_code == 200 and res.headers["content-type"] == "application/x-protobuf"
    msg = gtfs_realtime_pb2.FeedMessage()
    msg.ParseFromString(res.content)
    assert msg.header.gtfs_realtime_version == "2.0" and len(msg.entity) > 0
    for e in msg.entity:
        # the validator's E022: arrival and departure times increase strictly from stop to stop
        times = [t for s in e.trip_update.stop_time_update for t in (s.arrival.time, s.departure.time)]
        assert all(b > a for a, b in zip(times[1::2], times[2::2], strict=False)), times
        assert all(b >= a for a, b in zip(times[::2], times[1::2], strict=True)), times
        assert e.trip_update.trip.start_date == "20260216"
    vp = gtfs_realtime_pb2.FeedMessage()
    vp.ParseFromString(tc.get("/gtfs-rt/vehicle-positions").content)
    fresh = {vid for vid, v in service.snapshot.vehicles.items() if not v["stale"]}
    assert {e.vehicle.vehicle.id for e in vp.entity} == fresh  # stale vehicles are left out
    assert len(fresh) < len(service.snapshot.vehicles)
    js = tc.get("/gtfs-rt/vehicle-positions", params={"format": "json"}).json()
    assert len(js["entity"]) == len(vp.entity)
    assert tc.get("/gtfs-rt/trip-updates", params={"format": "xml"}).status_code == 422


def test_live_position_updates_state_and_stores_passings(client: tuple[TestClient, ArrivalsService],
                                                         loaded: tuple[Database, float, pd.DataFrame],
                                                         wmata_dir: Path) -> None:
    _tc, service = client
    db, last, _ = loaded
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values("timestamp")
    nxt = avl[avl["timestamp"] > datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")].head(300)
    found = 0
    frozen = service.clock
    try:
        for (topic, payload), stamp in zip(_messages(nxt), nxt["timestamp"], strict=True):
            arrival = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            service.clock = lambda arrival=arrival: arrival  # type: ignore[misc]  # each ping arrives at its time
            service._on_json(topic, payload)
            found = len(service._pending)
    finally:
        service.clock = frozen
    assert found > 0
    assert service.flush()[0] == found
    stored = db.fetchall("SELECT count(*), min(stop_sequence) FROM stop_arrivals")[0]
    assert stored[0] >= found


def test_live_mqtt_positions_reach_the_service(loaded: tuple[Database, float, pd.DataFrame], broker_url: str,
                                               wmata_dir: Path) -> None:
    """Positions published on the real broker (JSON and GTFS-rt) update a started service."""
    from its.mqtt import publisher
    from its.service import LiveFeed
    from telematics.config import TelematicsSettings

    db, last, _ = loaded
    live = LiveFeed(broker_url)
    ctx = Context(settings=load_settings(database_url=db.url, mqtt_url=broker_url), db=db, read_db=db,
                  alerts=AlertSink(None), live=live)
    service = ArrivalsService(TelematicsSettings(recent_positions_min=0, history_days=0), clock=lambda: last,
                              background=False)
    pub = publisher(broker_url)
    try:
        service.start(ctx)
        assert service.fleets["wmata"].vehicles == {}
        avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values("timestamp")
        r = avl[avl["timestamp"] <= datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")].iloc[-1]
        pub.publish(f"its/v1/vehicles/wmata/{r.vehicle_id}/position",
                    orjson.dumps({"ts": r.timestamp, "lat": float(r.lat), "lon": float(r.lon), "trip_id": r.trip_id}))
        vp = gtfs_realtime_pb2.VehiclePosition()
        vp.position.latitude, vp.position.longitude = float(r.lat) + 0.0001, float(r.lon)
        vp.timestamp = int(last) + 1
        vp.trip.trip_id = r.trip_id
        pub.publish("its/v1/vehicles/wmata/rt-bus/position/gtfsrt", vp.SerializeToString()).wait_for_publish(5)
        deadline = time.monotonic() + 10

        def arrived() -> bool:  # the track enters the fleet before its ping is matched to the trip (MQTT thread)
            v = service.fleets["wmata"].vehicles
            return {r.vehicle_id, "rt-bus"} <= set(v) and v["rt-bus"].trip_id is not None

        while not arrived() and time.monotonic() < deadline:
            time.sleep(0.05)
        vehicles = service.fleets["wmata"].vehicles
        assert {r.vehicle_id, "rt-bus"} <= set(vehicles)
        assert vehicles["rt-bus"].trip_id == r.trip_id
        snap = service.refresh()
        assert snap.vehicles[r.vehicle_id]["trip_id"] == r.trip_id
    finally:
        service.stop()
        pub.close()
        live.close()


def test_vehicles_list_filters_and_bad_params(client: tuple[TestClient, ArrivalsService],
                                              loaded: tuple[Database, float, pd.DataFrame]) -> None:
    tc, service = client
    _db, last, avl = loaded
    res = tc.get("/v1/vehicles")
    assert res.status_code == 200
    items = res.json()["vehicles"]
    last_ping = avl.groupby("vehicle_id").last()  # avl is sorted by time: each vehicle's latest ping
    assert {v["vehicle_id"] for v in items} == set(last_ping.index)
    assert [(v["agency"], v["vehicle_id"]) for v in items] == sorted((v["agency"], v["vehicle_id"]) for v in items)
    keys = {"vehicle_id", "agency", "route_id", "trip_id", "lat", "lon", "bearing", "delay_s", "updated_at", "age_s",
            "stale"}
    for v in items:
        assert set(v) == keys
        ping = last_ping.loc[v["vehicle_id"]]
        assert (v["lat"], v["lon"]) == (float(ping["lat"]), float(ping["lon"]))
        updated = datetime.fromisoformat(v["updated_at"].replace("Z", "+00:00")).timestamp()
        assert updated == pytest.approx(datetime.fromisoformat(ping["timestamp"].replace("Z", "+00:00")).timestamp(),
                                        abs=0.5)
        assert v["age_s"] == pytest.approx(last - updated, abs=0.6)
        assert v["stale"] == (v["age_s"] > service.config.stale_after_s)
    assert any(v["stale"] for v in items) and any(not v["stale"] for v in items)
    route = max({v["route_id"] for v in items if v["route_id"]},
                key=lambda r: sum(v["route_id"] == r for v in items))
    on_route = tc.get("/v1/vehicles", params={"route_id": route}).json()["vehicles"]
    assert on_route == [v for v in items if v["route_id"] == route] and on_route
    assert tc.get("/v1/vehicles", params={"agency": "wmata", "route_id": route}).json()["vehicles"] == on_route
    assert tc.get("/v1/vehicles", params={"agency": "cairns"}).json() == {"vehicles": []}
    for params, status in (({"agency": "nope"}, 404), ({"route_id": "nope"}, 404), ({"route_id": ""}, 422),
                           ({"agency": "x" * 300}, 422)):
        bad = tc.get("/v1/vehicles", params=params)
        assert bad.status_code == status and "error" in bad.json(), params

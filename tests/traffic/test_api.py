"""The traffic service and its routes in the real app: network and evidence from the
database, live positions and counts, GeoJSON, incidents with alerts, travel times, 422s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.db import Database
from its.service import Context
from its.settings import Settings
from maps.from_gtfs import derive_network
from maps.network import RoadNetwork
from maps.spatial import EdgeSnapper
from maps.store import save_network
from traffic.flows import attach_lines
from traffic.service import ALERT_KIND, TrafficService
from traffic.store import load_probe_observations, save_camera_links


@dataclass
class Live:
    http: TestClient
    service: TrafficService
    ctx: Context
    net: RoadNetwork
    avl: pd.DataFrame
    cam_edge: int


@pytest.fixture
def live(settings: Settings, db: Database, wmata_dir: Path) -> Iterator[Live]:
    root = wmata_dir  # the real WMATA subset, else its stand-in (tests.standins)
    net = derive_network(root / "wmata_gtfs.zip", name="wmata").network
    save_network(db, net)
    e = int(np.argmax(np.where(net.reverse_edge >= 0, net.length_m, 0)))
    mid = net.geometries_xy[e].interpolate(0.5, normalized=True)
    lon, lat = net.projector.to_lonlat(np.array([mid.x]), np.array([mid.y]))
    snapper = EdgeSnapper(net)
    c = snapper.candidates(lon, lat, 1.0)
    bearing = float(c.bearing_deg[c.edge == e][0])
    links = attach_lines(net, snapper, ["cam-1"], ["north"], lon, lat, [bearing])
    save_camera_links(db, "wmata", links, lon, lat, [bearing])
    avl = pd.read_csv(root / "wmata_avl.csv", dtype={"vehicle_id": str})
    service = TrafficService()
    ctx = build_context(settings)
    app = create_app(settings, [service], context=ctx)
    with TestClient(app) as http:
        for _ in range(200):
            if service.ready():
                break
            time.sleep(0.05)
        assert service.ready()
        yield Live(http, service, ctx, net, avl, e)
    service.stop()
    if ctx.live:
        ctx.live.close()
    ctx.db.close()


def test_congestion_geojson_and_bbox(live: Live) -> None:
    fc = live.http.get("/v1/traffic/congestion").json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == live.net.n_edges
    props = fc["features"][0]["properties"]
    assert {"speed_mps", "level", "confidence", "travel_time_s", "share_probe", "share_historical"} <= set(props)
    assert props["level"] == "free" and props["share_historical"] == pytest.approx(1.0)
    assert "age_s" in fc and "observed_at" in fc
    w, s, e, n = live.net.bbox
    box = f"{w},{s},{(w + e) / 2},{(s + n) / 2}"
    part = live.http.get("/v1/traffic/congestion", params={"bbox": box}).json()
    assert 0 < len(part["features"]) < live.net.n_edges
    bad = live.http.get("/v1/traffic/congestion", params={"bbox": "1,2,x,4"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_parameter"


def test_live_positions_become_stored_probe_speeds_and_slow_the_estimate(live: Live) -> None:
    moving = live.avl[live.avl["speed_mps"] > 3.0]["vehicle_id"].value_counts().index[0]  # 20 min of a busy bus
    bus = live.avl[live.avl["vehicle_id"] == moving].iloc[:40]
    t0 = time.time() - 40 * 30
    for k, row in enumerate(bus.itertuples()):
        payload = {"ts": t0 + 30 * k, "lat": row.lat, "lon": row.lon}
        if not pd.isna(row.bearing):
            payload["bearing"] = row.bearing
        live.service.on_position(f"its/v1/vehicles/wmata/{row.vehicle_id}/position", orjson.dumps(payload))
    live.service.on_position("its/v1/vehicles/wmata/x/position", b'{"ts": "yesterday-ish"}')  # ignored
    snap = live.service.step()
    assert snap is not None
    probed = snap.state.source_mix[:, 0] > 0.5
    assert probed.sum() >= 3
    since = datetime.fromtimestamp(t0 - 600, UTC)
    complete = load_probe_observations(live.ctx.db, "wmata", since)  # only bins no ping can change
    assert len(complete) > 0
    assert (complete.time_s + complete.bin_s <= snap.updated_at - live.service.settings.probe_max_gap_s).all()
    live.service.step(flush=True)
    stored = load_probe_observations(live.ctx.db, "wmata", since)
    assert len(stored) > len(complete) and set(np.unique(stored.edge)) >= set(np.nonzero(probed)[0])
    fc = live.http.get("/v1/traffic/congestion").json()
    shares = np.array([f["properties"]["share_probe"] for f in fc["features"]])
    assert (shares > 0.5).sum() == probed.sum()


def test_camera_jam_raises_an_incident_alert_and_slows_routes_over_it(live: Live) -> None:
    start = datetime.fromtimestamp(time.time() - 120, UTC).replace(microsecond=0)
    for cls in ("car", "truck_bus", "motorcycle"):
        live.service.on_counts("its/v1/cameras/cam-1/counts", orjson.dumps({
            "interval_start": start.isoformat(), "interval_s": 60, "line_id": "north", "direction": "in",
            "vehicle_class": cls, "count": 3, "mean_speed_kmh": 4.0}))
    snap = live.service.step()
    assert snap is not None
    assert snap.state.speed_mps[live.cam_edge] < 2.0
    incidents = live.http.get("/v1/traffic/incidents").json()["incidents"]
    assert any(i["kind"] == "edge" and live.cam_edge in i["edges"] for i in incidents)
    alerts = [a for a in live.ctx.alerts.active() if a.kind == ALERT_KIND]
    assert any(a.subject == f"wmata:{live.cam_edge}" for a in alerts)
    # a route along the jammed edge is slower than at free flow
    net, e = live.net, live.cam_edge
    a = net.coords[net.geom_offsets[e]]
    b = net.coords[net.geom_offsets[e + 1] - 1]
    r = live.http.get("/v1/traffic/travel-time", params={"from": f"{a[1]},{a[0]}", "to": f"{b[1]},{b[0]}"}).json()
    assert r["length_m"] > 0 and r["travel_time_s"] > r["freeflow_time_s"]
    assert r["geometry"]["type"] == "LineString" and len(r["edges"]) >= 1
    idx = live.http.get("/v1/traffic/indices", params={"limit": 5}).json()
    assert idx["network_tti"] > 1.0 and len(idx["areas"]) <= 5
    assert idx["areas"][0]["tti"] > 1.0  # the jammed edge's area leads the list
    assert live.http.get("/v1/traffic/indices", params={"limit": 0}).status_code == 422


def test_travel_time_matches_the_edge_times_and_rejects_bad_coordinates(live: Live) -> None:
    net = live.net
    core = np.nonzero(net.strongly_connected_edges())[0]
    e0, e1 = core[0], core[-1]
    a = net.geometries[e0].interpolate(0.5, normalized=True)
    b = net.geometries[e1].interpolate(0.5, normalized=True)
    r = live.http.get("/v1/traffic/travel-time", params={"from": f"{a.y},{a.x}", "to": f"{b.y},{b.x}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["travel_time_s"] == pytest.approx(body["freeflow_time_s"], rel=1e-3)  # no evidence yet
    assert body["length_m"] > 0 and body["edges"][0] in (e0, net.reverse_edge[e0])
    for params in ({"from": "abc", "to": "38.9,-77.0"}, {"from": "95,0", "to": "38.9,-77.0"},
                   {"from": "38.9,-77.0,1", "to": "38.9,-77.0"}, {"from": "38.9,-77.0"},
                   {"from": "nan,0", "to": "38.9,-77.0"}):
        bad = live.http.get("/v1/traffic/travel-time", params=params)
        assert bad.status_code == 422, params
        assert "error" in bad.json()
    far = live.http.get("/v1/traffic/travel-time", params={"from": "0,0", "to": "38.9,-77.0"})
    assert far.status_code == 404 and far.json()["error"]["code"] == "no_route"


def test_without_a_stored_network_routes_answer_503(settings: Settings, db: Database) -> None:
    service = TrafficService()
    ctx = build_context(settings)
    try:
        with TestClient(create_app(settings, [service], context=ctx)) as http:
            for _ in range(200):
                if service.ready():
                    break
                time.sleep(0.05)
            r = http.get("/v1/traffic/congestion")
            assert r.status_code == 503 and r.json()["error"]["code"] == "no_network"
            assert http.get("/v1/traffic/travel-time", params={"from": "x", "to": "1,1"}).status_code == 422
            assert service.step() is None
    finally:
        service.stop()
        if ctx.live:
            ctx.live.close()
        ctx.db.close()


def _jam(live: Live) -> None:
    start = datetime.fromtimestamp(time.time() - 120, UTC).replace(microsecond=0)
    for cls in ("car", "truck_bus", "motorcycle"):
        live.service.on_counts("its/v1/cameras/cam-1/counts", orjson.dumps({
            "interval_start": start.isoformat(), "interval_s": 60, "line_id": "north", "direction": "in",
            "vehicle_class": cls, "count": 3, "mean_speed_kmh": 4.0}))


def test_tti_history_of_the_network_areas_and_after_a_restart(live: Live) -> None:
    t0 = time.time()
    before = live.service.step(now=t0 - 900)  # free flow, stored with every area's TTI
    assert before is not None and before.network_tti == pytest.approx(1.0, abs=1e-6)
    _jam(live)
    jam = live.service.step(now=t0)
    assert jam is not None and jam.network_tti > before.network_tti
    r = live.http.get("/v1/traffic/indices/history", params={"hours": 1, "step_s": 60})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "network" and body["subject"] is None and body["step_s"] == 60
    pts = body["points"]
    assert len(pts) >= 2 and [p["time"] for p in pts] == sorted(p["time"] for p in pts)
    assert pts[0]["tti"] == pytest.approx(1.0, abs=1e-4) and pts[-1]["tti"] > 1.0
    assert datetime.fromisoformat(pts[0]["time"]) == datetime.fromtimestamp((t0 - 900) // 60 * 60, UTC)
    # a short window leaves the old free-flow sample out
    recent = live.http.get("/v1/traffic/indices/history", params={"hours": 0.1}).json()["points"]
    assert recent and all(p["tti"] > 1.0 for p in recent[-1:])
    # (the service's own background step may add a free-flow sample just before the jam: count by time)
    assert all(datetime.fromisoformat(p["time"]).timestamp() >= t0 - 0.1 * 3600 - 60 for p in recent)
    # the jammed edge's area leads /indices; its history comes from the store: free flow, then jammed
    area = live.http.get("/v1/traffic/indices", params={"limit": 1}).json()["areas"][0]["area"]
    a = live.http.get("/v1/traffic/indices/history", params={"area": area, "hours": 2, "step_s": 1}).json()
    assert a["scope"] == "area" and a["subject"] == area
    assert [p["tti"] > 1.0 for p in a["points"]] == [False, True]
    stored = live.ctx.db.fetchall("SELECT scope, count(*) FROM traffic_tti WHERE network = 'wmata' GROUP BY 1")
    counts = dict(stored)
    assert counts["network"] == 2 and counts["area"] == 2 * len(jam.areas.group)
    # a restarted service answers the network history from the store at once
    again = TrafficService(network=live.net)
    again.start(live.ctx)
    try:
        t, v = again.tti_history.window(t0 - 3600)
        assert len(t) >= 3 and v[0] == pytest.approx(1.0, abs=1e-6) and v[1] > 1.0
    finally:
        again.stop()


def test_tti_history_rejects_bad_input_with_json_errors(live: Live) -> None:
    for params in ({"hours": 0}, {"hours": 169}, {"hours": "abc"}, {"hours": "nan"}, {"hours": "inf"},
                   {"step_s": 0}, {"step_s": 10**6}, {"area": -1}, {"area": "1.5"},
                   {"area": 1, "corridor": "Main St"}, {"corridor": ""}, {"corridor": "x" * 201}, {"corridor": "a\u0000b"}):
        bad = live.http.get("/v1/traffic/indices/history", params=params)
        assert bad.status_code == 422, params
        assert bad.json()["error"]["code"], params
    for params in ({"area": 10**15}, {"corridor": "No Such Street"}, {"corridor": "x'; DROP TABLE traffic_tti; --"}):
        missing = live.http.get("/v1/traffic/indices/history", params=params)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_tti_history_of_a_corridor_from_the_store(settings: Settings, db: Database) -> None:
    from maps.synthetic import grid_network

    net = grid_network(4, 4, name="named-grid")
    net.street_name = np.where(np.arange(net.n_edges) < net.n_edges // 2, "Esplanadi", "")
    service = TrafficService(network=net)
    ctx = build_context(settings)
    try:
        with TestClient(create_app(settings, [service], context=ctx)) as http:
            for _ in range(200):
                if service.ready():
                    break
                time.sleep(0.05)
            t0 = time.time()
            service.step(now=t0 - 600)
            named = np.nonzero(net.street_name == "Esplanadi")[0]
            assert service.estimator is not None
            service.estimator.observe(named, np.full(len(named), t0), net.freeflow_mps[named] / 3, weight=5.0,
                                      source="probe")
            service.step(now=t0)
            body = http.get("/v1/traffic/indices/history",
                            params={"corridor": "Esplanadi", "hours": 1, "step_s": 1}).json()
            assert body["scope"] == "corridor" and body["subject"] == "Esplanadi" and body["network"] == "named-grid"
            tti = [p["tti"] for p in body["points"]]
            assert len(tti) == 2 and tti[0] == pytest.approx(1.0, abs=1e-4) and tti[1] > 2.0
    finally:
        service.stop()
        if ctx.live:
            ctx.live.close()
        ctx.db.close()

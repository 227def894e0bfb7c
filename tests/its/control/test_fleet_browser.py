"""Buses move on the control-centre map as positions are published over MQTT, over the road
network coloured by the congestion service.

Real data: the WMATA GTFS feed is imported and its recorded AVL is replayed on the broker
(20x faster than recorded, the arrivals service's clock following the replay); the arrivals
service matches the positions and the UI polls its routes (``/gtfs-rt/vehicle-positions``,
``/v1/routes/{route_id}/vehicles``) and draws the buses. The road network derived from the
WMATA shapes is stored and served by the traffic service (``/v1/traffic/congestion``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from its.db import Database
from its.mqtt import connect
from its.settings import Settings

from .browser import PageOpener, log_in, screenshot
from .server import LiveServer, close_server, start_server

telematics_service = pytest.importorskip("telematics.service", reason="telematics service not landed yet")
telematics_store = pytest.importorskip("telematics.store")
telematics_config = pytest.importorskip("telematics.config")
traffic_service = pytest.importorskip("traffic.service", reason="traffic service not landed yet")
maps_from_gtfs = pytest.importorskip("maps.from_gtfs")
maps_store = pytest.importorskip("maps.store")

pytestmark = pytest.mark.browser
SPEEDUP = 20.0


class Replay:
    """Publishes recorded AVL rows when the replay clock reaches their timestamps."""

    def __init__(self, avl: pd.DataFrame, broker_url: str) -> None:
        self.rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in avl.to_dict("records")]
        self.t0 = float(self.rows[0]["epoch"]) + 60.0
        self.wall0 = time.time()
        self.url = broker_url
        self.stop = threading.Event()
        self.published = 0
        self.thread = threading.Thread(target=self.run, name="avl-replay", daemon=True)

    def clock(self) -> float:
        return self.t0 + (time.time() - self.wall0) * SPEEDUP

    def run(self) -> None:
        pub = connect(self.url, f"ui-test-replay-{time.time_ns()}")
        try:
            for r in self.rows:
                while r["epoch"] > self.clock():
                    if self.stop.wait(0.05):
                        return
                payload: dict[str, Any] = {"ts": r["timestamp"], "lat": float(r["lat"]), "lon": float(r["lon"]),
                                           "trip_id": r["trip_id"], "start_date": r["start_date"]}
                for field in ("bearing", "speed_mps"):
                    if r[field]:
                        payload[field] = float(r[field])
                pub.client.publish(f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(payload), qos=1)
                self.published += 1
        finally:
            pub.close()


@pytest.fixture
def fleet_server(settings: Settings, db: Database, broker_url: str, shared_data: Path) -> Iterator[tuple[LiveServer, Replay]]:
    wmata = shared_data / "avl" / "wmata"
    telematics_store.import_feed_file(db, wmata / "wmata_gtfs.zip", "wmata")
    avl = pd.read_csv(wmata / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values("timestamp")
    avl["epoch"] = pd.to_datetime(avl["timestamp"], utc=True).astype("int64") / 1e9
    avl = avl[avl["epoch"] <= avl["epoch"].iloc[0] + 1800]  # the first half hour
    replay = Replay(avl.reset_index(drop=True), broker_url)
    config = telematics_config.TelematicsSettings(history_days=0, recent_positions_min=0, board_refresh_s=1.0)
    service = telematics_service.ArrivalsService(config, clock=replay.clock)
    maps_store.save_network(db, maps_from_gtfs.derive_network(wmata / "wmata_gtfs.zip", name="wmata").network)
    traffic = traffic_service.TrafficService()
    server = start_server(settings, db, [service, traffic])
    deadline = time.monotonic() + 120
    while not (service.ready() and traffic.ready()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.ready(), "arrivals service did not load the WMATA feed"
    assert traffic.ready(), "traffic service did not load the WMATA network"
    replay.thread.start()
    yield server, replay
    replay.stop.set()
    replay.thread.join(timeout=5)
    close_server(server)


def vehicle_positions(page: Page) -> dict[str, tuple[float, float]]:
    rows = page.evaluate("() => window.itsControl.map.layers.vehicles.map(v => [v.id, v.lon, v.lat])")
    return {vid: (lon, lat) for vid, lon, lat in rows}


def test_buses_move_on_the_map(fleet_server: tuple[LiveServer, Replay], open_page: PageOpener) -> None:
    server, replay = fleet_server
    page, console = open_page(1920, 1080)
    log_in(page, server.url)
    page.wait_for_function("() => window.itsControl && window.itsControl.map.layers.vehicles.length >= 3",
                           timeout=60_000)
    first = vehicle_positions(page)
    assert all(-77.6 < lon < -76.6 and 38.6 < lat < 39.2 for lon, lat in first.values())  # Washington, DC
    # the fleet panel lists them by route with delay and last update
    rows = page.locator("#fleet tr[data-vehicle-id]")
    assert rows.count() >= 3
    assert page.locator("#fleet tr.route-head").count() >= 1
    # some bus seen before is drawn somewhere else a few polls later
    deadline = time.monotonic() + 45
    moved: list[str] = []
    while time.monotonic() < deadline and not moved:
        page.wait_for_timeout(2000)
        now = vehicle_positions(page)
        moved = [v for v in first if v in now and now[v] != first[v]]
    assert moved, f"no bus moved on the map ({replay.published} positions published)"
    summary = page.locator("#map-summary").text_content() or ""
    assert "buses" in summary
    # the road network from the congestion route, every edge drawn with its level
    edges = httpx.get(f"{server.url}/v1/traffic/congestion", timeout=30).json()["features"]
    page.wait_for_function(f"() => window.itsControl.map.layers.roads.length === {len(edges)}", timeout=40_000)
    levels = page.evaluate("() => [...new Set(window.itsControl.map.layers.roads.map(r => r.level))]")
    assert set(levels) <= {"free", "moderate", "heavy", "jammed"} and levels
    expect(page.locator("#traffic")).to_contain_text("Travel time index now")
    # zoomed in on a bus, the stops around it are fetched (/v1/stops near the centre) and drawn;
    # treated as a large network, only the roads around the view are fetched (bbox)
    page.evaluate("() => { window.itsControl.panels[3].large = true; }")
    page.evaluate("() => { const m = window.itsControl.map, v = m.layers.vehicles[0]; m.flyTo(v.lon, v.lat, 16); }")
    page.wait_for_function(f"() => {{ const n = window.itsControl.map.layers.roads.length; return n > 0 && n < {len(edges)}; }}",
                           timeout=10_000)
    page.wait_for_function("() => window.itsControl.map.layers.stops.length > 0", timeout=10_000)
    stop = page.evaluate("() => window.itsControl.map.layers.stops[0]")
    assert stop["kind"] == "stop" and 38.6 < stop["lat"] < 39.2
    screenshot(page, "fleet-1920x1080")
    assert console.errors == []

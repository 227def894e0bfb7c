"""A dispatcher's shift, end to end, in Chromium and in Firefox: buses move on the map as
positions are published over MQTT, over the road network coloured by the congestion service,
the travel time index is charted over the day, a car park fills and its alert is acknowledged
from the keyboard, then the dispatcher logs out.

Real data: the WMATA GTFS feed is imported and its recorded AVL is replayed on the broker
(20x faster than recorded, the arrivals service's clock following the replay); the arrivals
service matches the positions and the UI polls its routes (``/v1/vehicles``, or route by route)
and draws the buses. The road network derived from the WMATA shapes is stored and served by
the traffic service (``/v1/traffic/congestion``, ``/v1/traffic/indices/history``). The car park
is a made-up test site next to Washington Union Station, counted over MQTT like a barrier
counter would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import orjson
import pytest
from playwright.sync_api import Locator, Page, expect

from its.db import Database
from its.mqtt import connect
from its.settings import Settings

from .browser import PageOpener, log_in, screenshot
from .replay import Replay, read_avl
from .server import LiveServer, close_server, start_server

telematics_service = pytest.importorskip("telematics.service", reason="telematics service not landed yet")
telematics_store = pytest.importorskip("telematics.gtfs.database")
telematics_config = pytest.importorskip("telematics.config")
traffic_service = pytest.importorskip("traffic.service", reason="traffic service not landed yet")
parking_service = pytest.importorskip("parking.service", reason="parking service not landed yet")
parking_sites = pytest.importorskip("parking.sites")
parking_store = pytest.importorskip("parking.store")
maps_from_gtfs = pytest.importorskip("maps.from_gtfs")
maps_store = pytest.importorskip("maps.store")

pytestmark = pytest.mark.browser
SITE = "TEST-UNION-STATION"
SITE_LAT, SITE_LON = 38.8968, -77.0063
CAPACITY = 40


def write_site_file(path: Path) -> Path:
    """A made-up 40-space car park at Washington Union Station (test data, not a real site)."""
    d = 0.0005
    ring = [[SITE_LON - d, SITE_LAT - d], [SITE_LON + d, SITE_LAT - d], [SITE_LON + d, SITE_LAT + d],
            [SITE_LON - d, SITE_LAT + d], [SITE_LON - d, SITE_LAT - d]]
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"id": SITE, "name": "Union Station garage (test site)", "kind": "off-street",
                       "capacity": {"total": CAPACITY}, "opening_hours": "24/7", "timezone": "America/New_York"}}]}))
    return path


@pytest.fixture
def city_server(settings: Settings, db: Database, broker_url: str, wmata_dir: Path,
                tmp_path: Path) -> Iterator[tuple[LiveServer, Replay]]:
    wmata = wmata_dir  # the real WMATA day, else its stand-in
    telematics_store.import_feed_file(db, wmata / "wmata_gtfs.zip", "wmata")
    # 90 recorded minutes = 270 s of replay: still running when a slow machine reaches the "moved" check
    replay = Replay(read_avl(wmata / "wmata_avl.csv", minutes=90), broker_url)
    config = telematics_config.TelematicsSettings(history_days=0, recent_positions_min=0, board_refresh_s=1.0)
    service = telematics_service.ArrivalsService(config, clock=replay.clock)
    maps_store.save_network(db, maps_from_gtfs.derive_network(wmata / "wmata_gtfs.zip", name="wmata").network)
    traffic = traffic_service.TrafficService()
    sites = parking_sites.read_sites(write_site_file(tmp_path / "sites.geojson"))
    parking_store.upsert_sites(db, sites, datetime.now(UTC))
    parking = parking_service.create_service()
    server = start_server(settings, db, [service, traffic, parking])
    deadline = time.monotonic() + 120
    while not (service.ready() and traffic.ready() and parking.ready()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.ready(), "arrivals service did not load the WMATA feed"
    assert traffic.ready(), "traffic service did not load the WMATA network"
    assert parking.ready(), "parking service did not start"
    replay.thread.start()
    yield server, replay
    replay.stop.set()
    replay.thread.join(timeout=5)
    close_server(server)


def publish_count(broker_url: str, site: str, occupied: int) -> None:
    pub = connect(broker_url, f"ui-test-counter-{time.time_ns()}")
    pub.client.publish(f"its/v1/parking/{site}/counts", orjson.dumps({"ts": time.time(), "occupied": occupied}),
                       qos=1).wait_for_publish(10)
    pub.close()


def right_edge_brightness(page: Page, panel: Locator) -> float:
    """Mean brightness (0-255) of the 12 px inside a panel's right edge, where its scrollbar is drawn."""
    box = panel.bounding_box()
    assert box is not None
    png = page.screenshot(clip={"x": box["x"] + box["width"] - 13, "y": box["y"] + 4, "width": 12,
                                "height": min(box["height"], 300) - 8})
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return float(image.mean())


def vehicle_positions(page: Page) -> dict[str, tuple[float, float]]:
    rows = page.evaluate("() => window.itsControl.map.layers.vehicles.map(v => [v.id, v.lon, v.lat])")
    return {vid: (lon, lat) for vid, lon, lat in rows}


FOCUS_PLACE = """() => { const a = document.activeElement;
    if (!a || a === document.body) return null;
    const box = a.closest('#fleet, #parking, #cameras, #traffic, #alerts, .map-wrap, .topbar');
    return [box ? (box.id || box.className) : null, a.id || a.getAttribute('data-focus-key') || a.tagName]; }"""


def tab_until(page: Page, target: str, presses: int = 400) -> list[tuple[str | None, str]]:
    """Press Tab until the focused element matches the CSS selector ``target``; the places visited."""
    visited: list[tuple[str | None, str]] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        place = page.evaluate(FOCUS_PLACE)
        visited.append(tuple(place) if place else (None, "body"))  # type: ignore[arg-type]
        if page.evaluate(f"() => document.activeElement.matches({target!r})"):
            return visited
    raise AssertionError(f"Tab never reached {target}: {visited[-20:]}")


CASES = [pytest.param("chromium", (1920, 1080), id="chromium-1920x1080"),
         pytest.param("firefox", (1366, 768), id="firefox-1366x768")]


@pytest.mark.parametrize(("browser", "size"), CASES, indirect=["browser"])
def test_dispatcher_follows_the_city(city_server: tuple[LiveServer, Replay], broker_url: str,
                                     open_page: PageOpener, size: tuple[int, int]) -> None:
    server, replay = city_server
    width, height = size
    page, console = open_page(width, height)
    publish_count(broker_url, SITE, 10)
    log_in(page, server.url)

    # buses from the live feed, listed by route in the fleet panel
    page.wait_for_function("() => window.itsControl && window.itsControl.map.layers.vehicles.length >= 3",
                           timeout=60_000)
    first = vehicle_positions(page)
    lats = [float(r["lat"]) for r in replay.rows]
    lons = [float(r["lon"]) for r in replay.rows]
    # drawn where the recorded buses ran (Washington DC, or Cairns on the stand-in), not at 0,0
    assert all(min(lons) - 0.01 <= lon <= max(lons) + 0.01 and min(lats) - 0.01 <= lat <= max(lats) + 0.01
               for lon, lat in first.values()), first
    assert page.locator("#fleet tr[data-vehicle-id]").count() >= 3
    assert page.locator("#fleet tr.route-head").count() >= 1
    # the whole fleet in one call when the API has it, every vehicle it lists in the panel
    assert page.evaluate("() => window.itsControl.panels[0].whole") is True
    listed = {v["vehicle_id"] for v in httpx.get(f"{server.url}/v1/vehicles", timeout=10).json()["vehicles"]}
    page.wait_for_function("""(ids) => { const shown = new Set([...document.querySelectorAll('#fleet tr[data-vehicle-id]')]
        .map(r => r.dataset.vehicleId)); return ids.every(id => shown.has(id)); }""", arg=sorted(listed), timeout=15_000)
    # some bus seen before is drawn somewhere else a few polls later
    deadline = time.monotonic() + 45
    moved: list[str] = []
    while time.monotonic() < deadline and not moved:
        page.wait_for_timeout(2000)
        now = vehicle_positions(page)
        moved = [v for v in first if v in now and now[v] != first[v]]
    assert moved, f"no bus moved on the map ({replay.published} positions published)"
    assert re.search(r"\d+ bus(es)? ", page.locator("#map-summary").text_content() or "")

    # the road network from the congestion route, every edge drawn with its level
    edges = httpx.get(f"{server.url}/v1/traffic/congestion", timeout=30).json()["features"]
    page.wait_for_function(f"() => window.itsControl.map.layers.roads.length === {len(edges)}", timeout=40_000)
    levels = page.evaluate("() => [...new Set(window.itsControl.map.layers.roads.map(r => r.level))]")
    assert set(levels) <= {"free", "moderate", "heavy", "jammed"} and levels
    traffic = page.locator("#traffic")
    expect(traffic).to_contain_text("Travel time index now", timeout=40_000)
    # the index over the day comes from the traffic service's record (not this screen's samples)
    page.wait_for_function("() => (window.itsControl.panels[3].history || []).length >= 1", timeout=70_000)
    history = httpx.get(f"{server.url}/v1/traffic/indices/history?hours=24", timeout=10).json()["points"]
    assert history and all(p["tti"] > 0 for p in history)
    expect(traffic.locator(".tti-caption")).to_contain_text("over the last 24 h")

    # the test car park, then full: its alert appears live, on the map too
    row = page.locator(f'#parking tr[data-site-id="{SITE}"]')
    expect(row).to_contain_text(f"{CAPACITY - 10}/{CAPACITY}", timeout=20_000)
    publish_count(broker_url, SITE, CAPACITY)
    alert = page.locator(f'li[data-alert-id="parking_full:{SITE}"]')
    expect(alert).to_be_visible(timeout=10_000)
    expect(alert).to_contain_text("is full")
    page.wait_for_function(f"() => window.itsControl.map.layers.alerts.some(a => a.id === 'parking_full:{SITE}')")
    expect(row).to_contain_text(f"0/{CAPACITY}", timeout=10_000)

    # the page fits the screen's width; the map is above the fold
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    map_box = page.locator("#map").bounding_box()
    assert map_box is not None and map_box["y"] + map_box["height"] <= height
    # panels that overflow scroll inside themselves, with scrollbars in the page's dark theme
    fleet_panel = page.locator("section.panel", has=page.locator("#fleet"))
    assert page.evaluate("() => { const p = document.getElementById('fleet').parentElement;"
                         " return p.scrollHeight > p.clientHeight; }")
    assert right_edge_brightness(page, fleet_panel) < 128
    screenshot(page, f"city-{width}x{height}")

    # keyboard only: from the top bar, Tab reaches the alert's Acknowledge button; Enter acknowledges it
    page.focus("#logout")
    tab_until(page, f'li[data-alert-id="parking_full:{SITE}"] button.ack')
    page.keyboard.press("Enter")
    expect(alert).to_contain_text("acknowledged by dana")
    found = server.ctx.alerts.get(f"parking_full:{SITE}")
    assert found is not None and found.acked_by == "dana"
    # ... and, further on, the buses of the fleet panel, then the car parks; Enter on one shows it on the map
    visited = tab_until(page, f'#parking button[data-focus-key="p:{SITE}"]')
    assert "fleet" in {p for p, _ in visited}, visited
    page.keyboard.press("Enter")
    expect(page.locator("#map-details")).to_contain_text("Union Station garage (test site)")
    assert page.evaluate("() => window.itsControl.map.zoom") >= 16

    # zoomed in on a bus, the stops around it are fetched (/v1/stops near the centre) and drawn;
    # treated as a large network, only the roads around the view are fetched (bbox)
    page.evaluate("() => { window.itsControl.panels[3].large = true; }")
    page.evaluate("() => { const m = window.itsControl.map, v = m.layers.vehicles[0]; m.flyTo(v.lon, v.lat, 16); }")
    page.wait_for_function(f"() => {{ const n = window.itsControl.map.layers.roads.length; return n > 0 && n < {len(edges)}; }}",
                           timeout=10_000)
    page.wait_for_function("() => window.itsControl.map.layers.stops.length > 0", timeout=10_000)
    stop = page.evaluate("() => window.itsControl.map.layers.stops[0]")
    assert stop["kind"] == "stop" and min(lats) - 0.05 < stop["lat"] < max(lats) + 0.05  # a stop of the city shown
    screenshot(page, f"city-zoomed-{width}x{height}")

    # log out: back to the login page, the session no longer opens the API
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{server.url}/control/login")
    assert page.request.get(f"{server.url}/v1/control/config").status == 401
    assert console.errors == []

"""A city in `incident` mode for the playbook tests, on real data, served by a real API.

* Buses: the WMATA feed of the recorded day and its recorded positions up to 19:08 UTC, when
  C53 buses are bunched (`tests.telematics.holding_fixtures`; without ``../shared`` the
  `wmata_dir` stand-in: Cairns routes with simulated AVL on the same day); the arrivals
  service's clock stops there and it advises holds.
* Roads: the road network derived from the same feed; a camera on an edge next to an
  advised stop (the first with an edge that has a detour within 1.5 km) reports traffic
  crawling at 4 km/h, the traffic service raises an incident alert there: the network is in
  `incident` mode.
* Car parks: the eight Birmingham car parks with their real history (else its stand-in),
  moved so that the often-full Town Hall car park stands at the advised stop; it reports
  full, the others 60 % occupied.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from its.db import Database
from its.playbook import AFFECTED_RADIUS_M
from its.settings import Settings
from tests.its.helpers import wait_for

from .server import LiveServer, close_server, start_server

telematics_service = pytest.importorskip("telematics.service")
telematics_config = pytest.importorskip("telematics.config")
telematics_db = pytest.importorskip("telematics.gtfs.database")
telematics_store = pytest.importorskip("telematics.store")
fixtures = pytest.importorskip("tests.telematics.holding_fixtures")

from maps.from_gtfs import derive_network  # noqa: E402
from maps.network import RoadNetwork  # noqa: E402
from maps.spatial import EdgeSnapper  # noqa: E402
from maps.store import save_network  # noqa: E402
from parking.config import ParkingSettings  # noqa: E402
from parking.history import backfill_history  # noqa: E402
from parking.ingest import count_topic  # noqa: E402
from parking.service import ParkingService  # noqa: E402
from parking.sites import Site, read_sites  # noqa: E402
from parking.store import upsert_sites  # noqa: E402
from traffic.flows import attach_lines  # noqa: E402
from traffic.service import ALERT_KIND, TrafficService  # noqa: E402
from traffic.store import load_camera_links, save_camera_links  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
DEMO_SITES = ROOT / "parking" / "data" / "demo_sites.geojson"
SITES = ("BHMBCCTHL01", "BHMBCCMKT01", "BHMBCCPST01", "BHMBCCSNH01", "BHMEURBRD01", "BHMEURBRD02",
         "BHMMBMMBX01", "BHMNCPNST01")
FULL = "BHMBCCTHL01"
JAM_KMH = 4.0


@dataclass
class City:
    server: LiveServer
    arrivals: Any
    traffic: TrafficService
    parking: ParkingService
    net: RoadNetwork
    jam_edge: int
    stop: dict[str, Any]
    sites: list[Site]


def _birmingham_csv(sample_data: Path) -> Path:
    from tests.conftest import shared_data_path
    from tests.standins import birmingham_standin

    path = shared_data_path() / "parking" / "birmingham" / "birmingham_occupancy.csv"
    return path if path.is_file() else birmingham_standin(sample_data, DEMO_SITES)


def _moved(site: Site, lat: float, lon: float, zone: str) -> Site:
    geometry = {"type": "Point", "coordinates": [lon, lat]} if site.geometry.get("type") == "Point" else site.geometry
    return site.model_copy(update={"lat": lat, "lon": lon, "geometry": geometry, "timezone": zone})


def _edge_with_detour(net: RoadNetwork, traffic: TrafficService, lat: float, lon: float,
                      within_m: float = 5000.0) -> int | None:
    """An edge within ``within_m`` (m) of (lat, lon) that the router can bypass at free flow in under half
    the jam's time, the nearest (the network derived from the few routes of the WMATA subset is small: its
    edges near a stop are short; the stand-in's Cairns routes seldom run side by side, so the nearest such
    edge may lie a few km away); None when there is none."""
    mid = net.geom_offsets[:-1] + np.diff(net.geom_offsets) // 2
    d = np.hypot((net.coords[mid, 1] - lat) * 111_320.0, (net.coords[mid, 0] - lon) * 111_320.0 * np.cos(np.radians(lat)))
    router = traffic.router_
    assert router is not None
    for e in np.argsort(d)[:2000].tolist():
        if net.length_m[e] < 10.0 or d[e] > within_m:
            continue
        closed = net.freeflow_time_s.astype(float).copy()
        closed[e] = np.inf
        try:
            alt = router.route_nodes(int(net.u[e]), int(net.v[e]), weights=closed)
        except Exception:
            continue
        if alt.time_s < 0.5 * net.length_m[e] / (JAM_KMH / 3.6):
            return int(e)
    return None


def _advised_stop_with_detour(arrivals: Any, advice: list[dict[str, Any]], net: RoadNetwork,
                              traffic: TrafficService) -> tuple[dict[str, Any], int]:
    """The first advised stop with a detour edge close enough for its car parks to be affected by the
    jam there (`its.playbook.AFFECTED_RADIUS_M`, with a margin), and that edge; else the first advised
    stop and the nearest edge with a detour up to 5 km away."""
    for entry in advice:
        stop = arrivals.stops[entry["stop_id"]]
        e = _edge_with_detour(net, traffic, float(stop["lat"]), float(stop["lon"]), 0.75 * AFFECTED_RADIUS_M)
        if e is not None:
            return stop, e
    stop = arrivals.stops[advice[0]["stop_id"]]
    e = _edge_with_detour(net, traffic, float(stop["lat"]), float(stop["lon"]))
    assert e is not None, "no edge with a detour near the advised stop"
    return stop, e


def jam(city_db: Database, net: RoadNetwork, traffic: TrafficService, e: int) -> None:
    """A camera on edge ``e`` counts vehicles crawling at `JAM_KMH`; the traffic service updates."""
    mid = net.geometries_xy[e].interpolate(0.5, normalized=True)
    lon, lat = net.projector.to_lonlat(np.array([mid.x]), np.array([mid.y]))
    snapper = EdgeSnapper(net)
    c = snapper.candidates(lon, lat, 1.0)
    bearing = float(c.bearing_deg[c.edge == e][0])
    links = attach_lines(net, snapper, ["cam-pb"], ["north"], lon, lat, [bearing])
    save_camera_links(city_db, net.name, links, lon, lat, [bearing])
    traffic.links = load_camera_links(city_db, net.name)
    start = datetime.fromtimestamp(time.time() - 120, UTC).replace(microsecond=0)
    for cls in ("car", "truck_bus", "motorcycle"):
        traffic.on_counts("its/v1/cameras/cam-pb/counts", orjson.dumps({
            "interval_start": start.isoformat(), "interval_s": 60, "line_id": "north", "direction": "in",
            "vehicle_class": cls, "count": 3, "mean_speed_kmh": JAM_KMH}))
    traffic.step()


def build_city(settings: Settings, db: Database, wmata: Path, sample_data: Path, tmp_path: Path) -> City:
    """The city in `incident` mode, served; ``wmata`` is the WMATA folder (real or stand-in)."""
    day_zip = fixtures.day_feed(wmata / "wmata_gtfs.zip", fixtures.DAY, tmp_path / "day.zip")
    telematics_db.import_feed_file(db, day_zip, "wmata")
    rows = fixtures.avl_rows(wmata / "wmata_avl.csv", fixtures.T_ADVICE, fixtures.REPLAY_FROM)
    assert telematics_store.write_positions(db, rows) == len(rows)
    net = derive_network(day_zip, name="wmata").network
    save_network(db, net)
    bus_now = fixtures.epoch(fixtures.T_ADVICE)
    arrivals = telematics_service.ArrivalsService(
        telematics_config.TelematicsSettings(history_days=0, recent_positions_min=30, board_refresh_s=1.0),
        clock=lambda: bus_now)
    traffic = TrafficService()
    parking = ParkingService(ParkingSettings())
    server = start_server(settings, db, [arrivals, traffic, parking])
    try:
        assert wait_for(lambda: arrivals.ready() and traffic.ready() and parking.ready(), 180)
        advice = arrivals.advice.entries(bus_now)
        assert advice, "no holding advice at the recorded moment"
        stop, e = _advised_stop_with_detour(arrivals, advice, net, traffic)
        # car parks around the advised stop, in a zone where it is now 11:xx (hours the history covers)
        now = datetime.now(UTC)
        offset_h = 11 - now.hour
        zone = "Etc/GMT" if offset_h == 0 else f"Etc/GMT{'-' if offset_h > 0 else '+'}{abs(offset_h)}"
        demo = {s.site_id: s for s in read_sites(DEMO_SITES) if s.site_id in SITES}
        ref = demo[FULL]
        sites = [_moved(s, stop["lat"] + (s.lat - ref.lat), stop["lon"] + (s.lon - ref.lon), zone)
                 for s in demo.values()]
        upsert_sites(db, sites, now)
        assert backfill_history(db, sites, _birmingham_csv(sample_data), now - timedelta(minutes=1)) > 5000
        parking.reload_sites()
        parking.fit_forecaster(now)
        for s in sorted(sites, key=lambda s: s.site_id == FULL):
            occupied = s.capacity if s.site_id == FULL else int(0.6 * s.capacity)
            parking._on_count(count_topic(s.site_id), orjson.dumps({"ts": now.timestamp(), "occupied": occupied}))
        jam(db, net, traffic, e)
        ctx = server.ctx
        assert any(a.kind == ALERT_KIND and a.subject == f"wmata:{e}" for a in ctx.alerts.active())
        return City(server, arrivals, traffic, parking, net, e, stop, sites)
    except BaseException:
        close_server(server)
        raise


@pytest.fixture(name="incident_city")
def incident_city_fixture(settings: Settings, db: Database, wmata_dir: Path, sample_data: Path,
                          tmp_path: Path) -> Iterator[City]:
    """`build_city`, closed after the test."""
    city = build_city(settings, db, wmata_dir, sample_data, tmp_path)
    yield city
    close_server(city.server)

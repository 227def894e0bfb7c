"""WMATA data for the live holding-advice tests: the feed cut to the recorded day, the AVL as rows,
the routes' roles.

The shared WMATA feed spans weeks (232k stop times); the tests import only the trips running
on the recorded service day (2026-02-16, 462 trips), copied into a temporary GTFS zip, so a
test database is loaded in seconds. The recorded AVL is parsed by the platform's JSON
position parser, as the live service receives it over MQTT. Without the shared data the
same comes from the stand-in (`tests.standins.wmata_standin`); the tests name no route but
take the frequent and the timetabled ones from the day's schedule (`route_roles`: C53, and
D40 and D96 on the real data).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from telematics.fleet import Fleet
from telematics.gtfs import read_feed, service_day_start, service_ids_on
from telematics.ingest import PositionRow, parse_json_position

__all__ = ["DAY", "REPLAY_FROM", "T_ADVICE", "avl_rows", "day_feed", "epoch", "route_headways", "route_roles",
           "wmata_day_zip_fixture"]

DAY = dt.date(2026, 2, 16)
#: A moment of the recorded day when several C53 buses (frequent) and D40/D96 buses (timetabled)
#: run (on the stand-in: the six thickened Cairns routes and the two timetabled ones).
T_ADVICE = "2026-02-16T19:08:00Z"
#: Scheduled departures this far either side of a moment (s) give a route's headway then.
HEADWAY_WINDOW_S = 3600.0
#: The replay starts here: 28 recorded minutes put every bus on its trip, with its recent passings.
REPLAY_FROM = "2026-02-16T18:40:00Z"


def epoch(iso: str) -> float:
    """ISO 8601 (``Z``) as epoch seconds."""
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def day_feed(source: Path, day: dt.date, dest: Path) -> Path:
    """A copy of the GTFS zip ``source`` keeping only the trips (and their stop times) running on ``day``."""
    services = service_ids_on(read_feed(source), day)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        trips = pd.read_csv(io.BytesIO(src.read("trips.txt")), dtype=str, keep_default_na=False)
        trips = trips[trips["service_id"].isin(services)]
        for name in src.namelist():
            raw = src.read(name)
            if name == "trips.txt":
                raw = trips.to_csv(index=False).encode()
            elif name == "stop_times.txt":
                st = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
                raw = st[st["trip_id"].isin(set(trips["trip_id"]))].to_csv(index=False).encode()
            out.writestr(name, raw)
    return dest


def avl_rows(avl_csv: Path, until: str, since: str = "") -> list[PositionRow]:
    """The recorded positions in ``(since, until]`` (ISO 8601 ``Z``), time-ordered, parsed as live messages."""
    avl = pd.read_csv(avl_csv, dtype=str, keep_default_na=False).sort_values("timestamp", kind="stable")
    avl = avl[(avl["timestamp"] <= until) & (avl["timestamp"] > since)]
    rows: list[PositionRow] = []
    for r in avl.to_dict("records"):
        payload: dict[str, Any] = {"ts": r["timestamp"], "lat": float(r["lat"]), "lon": float(r["lon"]),
                                   "trip_id": r["trip_id"], "start_date": r["start_date"]}
        if r["speed_mps"]:
            payload["speed_mps"] = float(r["speed_mps"])
        rows += parse_json_position(f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(payload))
    return rows


def route_headways(fleet: Fleet, day: dt.date, now_s: float) -> dict[str, float]:
    """Scheduled headway (s) of each route of ``fleet`` on ``day`` around ``now_s`` (epoch s):
    the `HEADWAY_WINDOW_S` either side of it over the median number of the route's departures
    from one of its stops in that window (so 3600 s over its buses an hour there)."""
    t = now_s - service_day_start(day, fleet.timezone)
    running = np.isin(fleet.st_service, np.array(sorted(fleet.services_on(day)), dtype=str))
    near = running & (fleet.st_dep >= t - HEADWAY_WINDOW_S) & (fleet.st_dep < t + HEADWAY_WINDOW_S)
    frame = pd.DataFrame({"route": [fleet.trip_route[x] for x in fleet.st_trip[near]], "stop": fleet.st_stop[near]})
    per_stop = frame.groupby(["route", "stop"]).size()
    return {str(r): 2 * HEADWAY_WINDOW_S / float(n) for r, n in per_stop.groupby(level="route").median().items()}


def route_roles(fleet: Fleet, day: dt.date, now_s: float, frequent_headway_s: float
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The frequent routes (scheduled headway at most ``frequent_headway_s``, s) and the
    timetabled ones running around ``now_s`` (`route_headways`), each sorted."""
    headways = route_headways(fleet, day, now_s)
    frequent = tuple(sorted(r for r, h in headways.items() if h <= frequent_headway_s))
    return frequent, tuple(sorted(r for r, h in headways.items() if h > frequent_headway_s))


@pytest.fixture(scope="session", name="wmata_day_zip")
def wmata_day_zip_fixture(wmata_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The WMATA feed cut to the recorded day (`day_feed`), once per session."""
    return day_feed(wmata_dir / "wmata_gtfs.zip", DAY, tmp_path_factory.mktemp("wmata-day") / "wmata_day.zip")

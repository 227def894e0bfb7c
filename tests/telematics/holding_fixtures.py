"""Real WMATA data for the live holding-advice tests: the feed cut to the recorded day, the AVL as rows.

The shared WMATA feed spans weeks (232k stop times); the tests import only the trips running
on the recorded service day (2026-02-16, 462 trips), copied into a temporary GTFS zip, so a
test database is loaded in seconds. The recorded AVL is parsed by the platform's JSON
position parser, as the live service receives it over MQTT.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from telematics.gtfs import read_feed, service_ids_on
from telematics.ingest import PositionRow, parse_json_position

__all__ = ["DAY", "REPLAY_FROM", "T_ADVICE", "avl_rows", "day_feed", "epoch", "wmata_day_zip_fixture"]

DAY = dt.date(2026, 2, 16)
#: A moment of the recorded day when several C53 buses (frequent) and D40/D96 buses (timetabled) run.
T_ADVICE = "2026-02-16T19:08:00Z"
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


@pytest.fixture(scope="session", name="wmata_day_zip")
def wmata_day_zip_fixture(wmata_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The WMATA feed cut to the recorded day (`day_feed`), once per session."""
    return day_feed(wmata_dir / "wmata_gtfs.zip", DAY, tmp_path_factory.mktemp("wmata-day") / "wmata_day.zip")

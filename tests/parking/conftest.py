"""Fixtures of the parking tests: the real Birmingham history, the parking service serving the
demo sites over a real database and broker, and the official DATEX II Parking Publication
Light schema."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.db import Database, copy_rows
from its.service import Context
from its.settings import Settings
from parking.config import ParkingSettings
from parking.service import ParkingService
from parking.sites import read_sites
from parking.store import upsert_sites
from tests.its.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "parking" / "data" / "demo_sites.geojson"
COUNT_COLUMNS = ("site_id", "time", "occupied", "entries", "exits")
LIGHT_SCHEMAS = ("DATEXII_3_D2Payload.json", "DATEXII_3_Common.json", "DATEXII_3_ParkingPublicationLight.json",
                 "DATEXII_3_LocationReferencing.json")

Served = tuple[TestClient, ParkingService, Context]


@pytest.fixture(scope="session")
def birmingham_csv(sample_data: Path) -> Path:
    """The UCI Parking Birmingham occupancy history (real data), else its stand-in: the same
    car parks, dates and reading times with a generated occupancy (tests.standins)."""
    from tests.conftest import shared_data_path
    from tests.standins import birmingham_standin

    path = shared_data_path() / "parking" / "birmingham" / "birmingham_occupancy.csv"
    return path if path.is_file() else birmingham_standin(sample_data, DEMO)


@pytest.fixture(scope="session")
def real_birmingham_csv(shared_data: Path) -> Path:
    """The real Birmingham history only (evaluations; skips without it)."""
    path = shared_data / "parking" / "birmingham" / "birmingham_occupancy.csv"
    if not path.is_file():
        pytest.skip(f"Birmingham parking history not found at {path}")
    return path


@contextmanager
def serve_parking(settings: Settings, db: Database, tmp_path: Path,
                  counts: Sequence[tuple[Any, ...]] = ()) -> Iterator[Served]:
    """The parking service and API over the demo sites, open around the clock except
    CNS-SHERIDAN (always closed) so that tests do not depend on the time of day; ``counts``
    (rows of ``parking_counts``) are stored before it starts and rebuilt at start."""
    doc = orjson.loads(DEMO.read_bytes())
    for feature in doc["features"]:
        feature["properties"]["opening_hours"] = "off" if feature["properties"]["id"] == "CNS-SHERIDAN" else "24/7"
    sites = tmp_path / "sites.geojson"
    sites.write_bytes(orjson.dumps(doc))
    upsert_sites(db, read_sites(sites), datetime.now(UTC))
    if counts:
        with db.connection() as conn:
            copy_rows(conn, "parking_counts", COUNT_COLUMNS, list(counts))
    ctx = build_context(settings)
    service = ParkingService(ParkingSettings(sensor_stale_s=600, timezone="UTC"))
    app = create_app(settings, [service], context=ctx)
    try:
        with TestClient(app) as client:
            assert wait_for(service.ready)
            yield client, service, ctx
    finally:
        if ctx.live:
            ctx.live.close()
        ctx.db.close()


@pytest.fixture
def parking(settings: Settings, db: Database, tmp_path: Path) -> Iterator[Served]:
    """:func:`serve_parking` with one CNS-HOSPITAL count (100 occupied) stored 5 min ago."""
    with serve_parking(settings, db, tmp_path,
                       [("CNS-HOSPITAL", datetime.now(UTC) - timedelta(minutes=5), 100, None, None)]) as served:
        yield served


def specs_dir() -> Path:
    """The shared specifications folder: ``ITS_SHARED_DATA/../specs``, else ``../shared/specs``."""
    shared = os.environ.get("ITS_SHARED_DATA")
    return Path(shared).parent / "specs" if shared else REPO.parent / "shared" / "specs"


@pytest.fixture(scope="session")
def light_schema_dir() -> Path:
    """The official DATEX II Parking Publication Light 02-00-00 JSON schemas (skips when absent)."""
    path = specs_dir() / "datex2-parking-light"
    missing = [n for n in LIGHT_SCHEMAS if not (path / n).is_file()]
    if missing:
        pytest.skip(f"DATEX II Parking Publication Light schemas not found at {path} (missing {missing})")
    return path


@pytest.fixture(scope="session")
def light_validator(light_schema_dir: Path) -> Any:
    """A ``jsonschema`` Draft 4 validator of the official ``DATEXII_3_D2Payload.json``, its
    references resolved from a registry holding the four schema files by file name."""
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schemas = {n: json.loads((light_schema_dir / n).read_text(encoding="utf-8")) for n in LIGHT_SCHEMAS}
    registry: Registry[Any] = Registry().with_resources(
        (name, Resource.from_contents(schema, default_specification=DRAFT4)) for name, schema in schemas.items())
    Draft4Validator.check_schema(schemas[LIGHT_SCHEMAS[0]])
    return Draft4Validator(schemas[LIGHT_SCHEMAS[0]], registry=registry, format_checker=Draft4Validator.FORMAT_CHECKER)


#: Hostile re-writings of a parking history CSV that :func:`hostile_history` makes.
HOSTILE = ("utc_z", "plus0530", "epoch_s", "epoch_ms", "naive_local", "shuffled", "duplicated", "bom_crlf",
           "extra_columns", "reordered", "header_case", "semicolon", "blank_lines")


def write_hostile(source: Path, kind: str, out: Path) -> Path:
    """Write ``source`` (a ``site_id,timestamp,capacity,occupied`` CSV with ISO 8601 offsets; only
    read) rewritten as a new city might deliver the same readings (:data:`HOSTILE`) to ``out``."""
    import pandas as pd

    raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    instant = pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601")
    seconds = (instant - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    frames = {
        "utc_z": lambda: raw.assign(timestamp=instant.dt.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "plus0530": lambda: raw.assign(timestamp=instant.dt.tz_convert("Asia/Kolkata").dt.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "epoch_s": lambda: raw.assign(timestamp=seconds.astype(str)),
        "epoch_ms": lambda: raw.assign(timestamp=(seconds * 1000).astype(str)),
        "naive_local": lambda: raw.assign(timestamp=raw["timestamp"].str[:19]),
        "shuffled": lambda: raw.sample(frac=1.0, random_state=7),
        "duplicated": lambda: pd.concat([raw, raw]).sort_index(kind="stable"),
        "extra_columns": lambda: raw.assign(name="car park, level 1", lat="52.48"),
        "reordered": lambda: raw[["occupied", "capacity", "timestamp", "site_id"]],
        "header_case": lambda: raw.rename(columns={"site_id": " Site_ID", "timestamp": "TIMESTAMP ",
                                                   "capacity": "Capacity", "occupied": " OCCUPIED "}),
    }
    if kind in frames:
        frames[kind]().to_csv(out, index=False)
    elif kind == "bom_crlf":
        out.write_bytes(b"\xef\xbb\xbf" + source.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    elif kind == "semicolon":
        raw.to_csv(out, index=False, sep=";")
    elif kind == "blank_lines":
        lines = source.read_text(encoding="utf-8").splitlines()
        out.write_text("\n" + "\n".join([*lines[:100], "", "  ", *lines[100:]]) + "\n\n", encoding="utf-8")
    else:
        raise ValueError(f"unknown hostile variant {kind!r}")
    return out

"""Site import: the shipped demo file, CSV, upsert on re-import, bad rows named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from its.db import Database
from parking.sites import SitesFileError, read_sites
from parking.store import load_sites, upsert_sites

DEMO = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"

CSV_GOOD = """# demo rows
id,name,kind,lat,lon,capacity,capacity_disabled,capacity_ev,opening_hours,tariff,timezone,wkt
LOT1,Lot one,off-street,-16.92,145.77,100,4,2,Mo-Fr 08:00-18:00,AUD 2/h,Australia/Brisbane,
LOT2,Lot two,off-street,,,50,,,24/7,,,"POLYGON ((145.770 -16.930, 145.771 -16.930, 145.771 -16.931, 145.770 -16.931, 145.770 -16.930))"
"""


def test_demo_file_is_valid_and_says_it_is_demo_data(birmingham_csv: Path) -> None:
    doc = json.loads(DEMO.read_text())
    assert "DEMO DATA" in doc["description"]
    sites = read_sites(DEMO)
    by_id = {s.site_id: s for s in sites}
    cairns = [s for s in sites if s.site_id.startswith("CNS-")]
    assert len(cairns) >= 5
    assert all(-17.0 < s.lat < -16.85 and 145.7 < s.lon < 145.8 for s in sites)
    assert {s.kind for s in cairns} == {"off-street", "on-street"}
    zone = by_id["CNS-ABBOTT"]
    assert len(zone.spaces) == zone.capacity == 12
    assert zone.capacity_for("disabled") == 1
    # the replay sites carry the ids and capacities of the real history
    import pandas as pd

    caps = pd.read_csv(birmingham_csv).groupby("site_id")["capacity"].last()
    assert len(caps) == 30
    for site_id, cap in caps.items():
        assert by_id[str(site_id)].capacity == cap


def test_import_then_reimport_updates(db: Database, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    first = upsert_sites(db, read_sites(DEMO), now)
    assert (first.inserted, first.updated) == (36, 0)
    assert first.spaces == 12 + 10 + 8
    doc = json.loads(DEMO.read_text())
    doc["features"][0]["properties"]["name"] = "Renamed"
    doc["features"][3]["properties"]["spaces"] = doc["features"][3]["properties"]["spaces"][:10]
    doc["features"][3]["properties"]["capacity"] = {"total": 10, "car": 9, "disabled": 1}
    changed = tmp_path / "sites.geojson"
    changed.write_text(json.dumps(doc))
    second = upsert_sites(db, read_sites(changed), now)
    assert (second.inserted, second.updated) == (0, 36)
    loaded = {s.site_id: s for s in load_sites(db)}
    assert len(loaded) == 36
    assert loaded["CNS-CENTRAL"].name == "Renamed"
    assert len(loaded["CNS-ABBOTT"].spaces) == 10
    assert loaded["CNS-CENTRAL"].geometry["type"] == "Polygon"
    assert loaded["CNS-CENTRAL"].capacity_for("ev") == 12


def test_csv_sites(tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text(CSV_GOOD)
    lot1, lot2 = read_sites(path)
    assert lot1.capacity_for("car") == 94
    assert lot2.geometry["type"] == "Polygon"
    assert lot2.lat == pytest.approx(-16.9305, abs=1e-3)


def test_bad_csv_rows_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "id,name,kind,lat,lon,capacity,opening_hours\n"
        "A,ok,off-street,-16.9,145.7,10,\n"
        "B,bad kind,garage,-16.9,145.7,10,\n"
        "C,bad cap,off-street,-16.9,145.7,-5,\n"
        "D,bad hours,off-street,-16.9,145.7,5,Mo-Fx 25:00\n"
        "E,bad lat,off-street,x,145.7,5,\n"
        "A,dup,off-street,-16.9,145.7,10,\n"
    )
    with pytest.raises(SitesFileError) as err:
        read_sites(path)
    text = str(err.value)
    assert "bad.csv: line 3: field 'kind'" in text
    assert "line 4: field 'capacity'" in text
    assert "line 5: field 'opening_hours'" in text
    assert "line 6: field 'lat/lon'" in text
    assert "duplicate id" in text
    assert len(err.value.problems) == 5


def test_bad_geojson_features_are_named(tmp_path: Path) -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [145.7, -16.9]},
         "properties": {"id": "Z", "name": "zone", "kind": "on-street", "capacity": 2,
                        "spaces": [{"id": "1", "vehicle_type": "bus"}, {"id": "2"}]}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[145.7, -16.9], [145.8, -16.9]]},
         "properties": {"id": "L", "name": "line", "kind": "off-street", "capacity": 3}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [145.7, -16.9]},
         "properties": {"id": "T", "name": "types", "kind": "off-street", "capacity": {"total": 3, "car": 3, "ev": 1}}},
    ]}
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(doc))
    with pytest.raises(SitesFileError) as err:
        read_sites(path)
    text = str(err.value)
    assert "feature 1 (id 'Z'): field 'spaces.0.vehicle_type'" in text
    assert "feature 2 (id 'L'): field 'geometry'" in text
    assert "feature 3 (id 'T')" in text and "more than capacity 3" in text
    path.write_text("[1, 2]")
    with pytest.raises(SitesFileError, match="FeatureCollection"):
        read_sites(path)


def _its(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "its.app.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, **env})


def test_cli_import_and_reimport(db_url: str, db: Database, tmp_path: Path) -> None:
    env = {"ITS_DATABASE_URL": db_url, "ITS_DATA_DIR": str(tmp_path / "data")}
    first = _its(["parking", "import", str(DEMO)], env)
    assert first.returncode == 0, first.stderr
    assert "36 sites (36 new, 0 updated), 30 sensor spaces" in first.stdout
    again = _its(["parking", "import", str(DEMO)], env)
    assert "(0 new, 36 updated)" in again.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,kind,lat,lon,capacity\nX,x,off-street,-16.9,145.7,many\n")
    failed = _its(["parking", "import", str(bad)], env)
    assert failed.returncode == 2
    assert "bad.csv: line 2: field 'capacity'" in failed.stderr
    assert db.fetchall("SELECT count(*) FROM parking_sites") == [(36,)]

"""Road-network indicators over real WMATA AVL map-matched to the network derived from the
WMATA shapes and stored as probe speeds (the traffic domain's own path), plus incident alerts
as the alert sink stores them; each indicator checked against an independent computation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from its.db import Database, migrate
from maps.from_gtfs import derive_network
from maps.store import save_network
from tests.conftest import create_database, drop_database
from traffic.kpi import section
from traffic.probes import Pings, ProbeMatcher, aggregate_traversals
from traffic.store import write_probe_observations

START = datetime(2026, 2, 16, 15, 0, tzinfo=UTC)
END = datetime(2026, 2, 16, 22, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def kdb(wmata_dir: Path) -> Iterator[dict[str, Any]]:
    root = wmata_dir  # the real WMATA subset, else its stand-in (tests.standins)
    if not (root / "wmata_avl.csv").is_file():
        pytest.skip(f"WMATA AVL not found under {root}")
    url = create_database()
    db = Database(url)
    migrate(db)
    net = derive_network(root / "wmata_gtfs.zip").network
    save_network(db, net)
    # GTFS-derived networks carry no street names: name three corridors so they can be grouped
    db.execute("UPDATE road_edges SET name = 'corridor-' || (edge % 3) WHERE edge % 4 <> 0")
    avl = pd.read_csv(root / "wmata_avl.csv", dtype={"trip_id": str, "vehicle_id": str})
    pings = Pings.from_frame(avl)
    matcher = ProbeMatcher(net)
    obs = aggregate_traversals(matcher.traversals(pings, matcher.match(pings)), bin_s=300)
    assert write_probe_observations(db, net.name, obs) == len(obs)
    db.execute(
        "INSERT INTO alerts (alert_id, kind, severity, subject, message, raised_at, cleared_at) VALUES"
        " ('traffic_incident:e1', 'traffic_incident', 'warning', 'e1', 'edge e1 slow', '2026-02-16 17:10Z',"
        "  '2026-02-16 17:40Z'),"
        " ('traffic_incident:e2', 'traffic_incident', 'critical', 'e2', 'edge e2 jammed', '2026-02-16 20:30Z', NULL),"
        " ('parking_full:x', 'parking_full', 'info', 'x', 'not traffic', '2026-02-16 16:00Z', NULL)")
    rows = pd.DataFrame.from_records(db.fetchall(
        "SELECT p.network, p.edge, p.time, p.speed_mps, p.covered_m, e.length_m, e.freeflow_mps, e.name"
        " FROM traffic_probe_speeds p JOIN road_edges e USING (network, edge)"),
        columns=["network", "edge", "time", "speed_mps", "covered_m", "length_m", "freeflow_mps", "name"])
    yield {"db": db, "rows": rows, "network": net.name, "kpi": section(db, START, END)}
    db.close()
    drop_database(url)


def _hour(rows: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(rows["time"], utc=True).dt.floor("h")


def test_mean_speed_and_tti_by_area_and_corridor(kdb: dict[str, Any]) -> None:
    rows = kdb["rows"]
    for group, key, frame in (("network", "speed_tti_by_area_hour", rows),
                              ("name", "speed_tti_by_corridor_hour", rows[rows["name"] != ""])):
        got = kdb["kpi"][key]["rows"]
        got = got.set_index([got.columns[0], "hour"])
        n = 0
        for (g, hour), part in frame.groupby([group, _hour(frame)]):
            speed = part["covered_m"].sum() / (part["covered_m"] / part["speed_mps"]).sum()
            tti = (part["length_m"] / part["speed_mps"]).sum() / (part["length_m"] / part["freeflow_mps"]).sum()
            assert got.loc[(g, hour), "mean_speed_mps"] == pytest.approx(speed)
            assert got.loc[(g, hour), "tti"] == pytest.approx(tti)
            n += 1
        assert len(got) == n >= 5
    assert set(kdb["kpi"]["speed_tti_by_corridor_hour"]["rows"]["corridor"]) == {"corridor-0", "corridor-1", "corridor-2"}


def test_share_of_length_heavy_or_jammed(kdb: dict[str, Any]) -> None:
    rows = kdb["rows"]
    got = kdb["kpi"]["congested_length_share"]["rows"].set_index("hour")["congested_share"]
    for hour, part in rows.groupby(_hour(rows)):
        per_edge = part.groupby("edge").apply(
            lambda e: pd.Series({"v": e["covered_m"].sum() / (e["covered_m"] / e["speed_mps"]).sum(),
                                 "f": e["freeflow_mps"].iloc[0], "L": e["length_m"].iloc[0]}))
        slow = per_edge["v"] / per_edge["f"] < 0.5  # ITS_TRAFFIC_LEVEL_MODERATE_RATIO: below it heavy or jammed
        assert got[hour] == pytest.approx(per_edge["L"][slow].sum() / per_edge["L"].sum())
    assert 0 < got.max() <= 1


def test_incidents_and_operating_mode(kdb: dict[str, Any]) -> None:
    inc = kdb["kpi"]["incidents"]["rows"].set_index("subject")
    assert list(inc.index) == ["e1", "e2"]
    assert inc.loc["e1", "duration_s"] == 1800 and not inc.loc["e1", "active"]
    assert inc.loc["e2", "duration_s"] == (END - datetime(2026, 2, 16, 20, 30, tzinfo=UTC)).total_seconds()
    mode = kdb["kpi"]["operating_mode"]["rows"].set_index("hour")
    tti = kdb["kpi"]["speed_tti_by_area_hour"]["rows"].set_index("hour")["tti"]
    assert len(mode) == 7
    for hour, row in mode.iterrows():
        if hour.hour in (17, 20, 21):
            assert row["mode"] == "incident"
        elif hour in tti.index:
            assert row["mode"] == ("peak" if tti[hour] >= 1.3 else "normal")
        else:
            assert row["mode"] is None
    assert {"incident", "normal"} <= set(mode["mode"].dropna()) or {"incident", "peak"} <= set(mode["mode"].dropna())


def test_empty_period_gives_reasons(kdb: dict[str, Any]) -> None:
    kpi = section(kdb["db"], datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    for name, entry in kpi.items():
        assert entry["rows"] is None and entry["reason"], name
    other = section(kdb["db"], START, END, network="nowhere")
    assert other["speed_tti_by_area_hour"]["rows"] is None
    assert np.isfinite(kdb["kpi"]["speed_tti_by_area_hour"]["rows"]["tti"]).all()

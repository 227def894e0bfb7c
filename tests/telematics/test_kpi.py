"""Public-transport indicators on real WMATA AVL replayed into a fresh database: positions
stored as the collector stores them, stop arrivals detected by the live fleet model, each
indicator checked against an independent pandas computation of its definition."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from its.db import Database
from telematics.fleet import Fleet
from telematics.gtfs import read_feed, service_ids_on
from telematics.gtfs.database import import_feed_file
from telematics.kpi import section
from telematics.store import write_positions, write_stop_arrivals

START = datetime(2026, 2, 16, 15, 0, tzinfo=UTC)
END = datetime(2026, 2, 16, 21, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def loaded(module_db: Database, wmata_dir: Path) -> dict[str, Any]:
    import_feed_file(module_db, wmata_dir / "wmata_gtfs.zip", "wmata")
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    fleet = Fleet("wmata", feed)
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    avl = avl.sort_values("timestamp", kind="stable")
    positions, passings = [], []
    for r in avl.to_dict("records"):
        t = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
        row = ("wmata", r["vehicle_id"], t, float(r["lat"]), float(r["lon"]), None, None, r["trip_id"] or None,
               r["route_id"] or None, None, None, None)
        positions.append(row)
        passings.extend(fleet.observe(row))
    assert write_positions(module_db, positions) == len(positions)
    assert write_stop_arrivals(module_db, passings) > 1000
    arrivals = pd.DataFrame.from_records(module_db.fetchall(
        "SELECT service_date, trip_id, stop_id, route_id, time, delay_s FROM stop_arrivals"),
        columns=["service_date", "trip_id", "stop_id", "route_id", "time", "delay_s"])
    return {"feed": feed, "avl": avl, "arrivals": arrivals,
            "kpi": section(module_db, START, END, timezone="America/New_York")}


def test_on_time_performance_by_route_and_stop(loaded: dict[str, Any]) -> None:
    a = loaded["arrivals"].dropna(subset=["delay_s"])
    for by, key in (("route_id", "on_time_by_route"), ("stop_id", "on_time_by_stop")):
        got = loaded["kpi"][key]["rows"].set_index(by)
        want = a.groupby(by)["delay_s"].apply(lambda d: ((d >= -60) & (d <= 300)).mean())
        assert set(got.index) == set(want.index)
        np.testing.assert_allclose(got.loc[want.index, "on_time_share"], want.to_numpy())
    assert len(loaded["kpi"]["on_time_by_route"]["rows"]) == a["route_id"].nunique()  # WMATA: C53, D40, D96


def test_delay_by_route_and_local_hour(loaded: dict[str, Any]) -> None:
    a = loaded["arrivals"].dropna(subset=["delay_s"]).copy()
    a["hour"] = pd.to_datetime(a["time"], utc=True).dt.tz_convert("America/New_York").dt.hour
    want = a.groupby(["route_id", "hour"])["delay_s"].agg(["mean", lambda d: d.quantile(0.9)])
    got = loaded["kpi"]["delay_by_route_hour"]["rows"].set_index(["route_id", "hour"]).loc[want.index]
    np.testing.assert_allclose(got["mean_delay_s"], want.iloc[:, 0])
    np.testing.assert_allclose(got["p90_delay_s"], want.iloc[:, 1])
    assert set(got.reset_index()["hour"]) <= set(range(10, 17))  # 15:58-20:59 UTC is 10-15 h EST


def _epoch(values: pd.Series) -> pd.Series:
    return (pd.to_datetime(values, utc=True) - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()


def _scheduled(feed: Any) -> pd.DataFrame:
    """Scheduled departures of 2026-02-16 in the period, from the feed file (not the database)."""
    services = service_ids_on(feed, datetime(2026, 2, 16).date())
    trips = feed.trips[feed.trips["service_id"].isin(services)][["trip_id", "route_id"]]
    st = feed.stop_times.merge(trips, on="trip_id")
    midnight = pd.Timestamp("2026-02-16 12:00", tz="America/New_York").timestamp() - 43200
    st = st.assign(time_s=midnight + st["departure_time"].astype(float))
    st["trip_start_s"] = st.groupby("trip_id")["time_s"].transform("min")
    return st[(st["time_s"] >= START.timestamp()) & (st["time_s"] < END.timestamp())]


def _awt(times: np.ndarray) -> tuple[float, int, np.ndarray]:
    h = np.diff(np.sort(times))
    return float((h ** 2).sum() / (2 * h.sum())) if len(h) else np.nan, len(h), h


def test_headway_regularity_matches_a_per_stop_loop(loaded: dict[str, Any]) -> None:
    sched = _scheduled(loaded["feed"])
    a = loaded["arrivals"].assign(time_s=lambda f: _epoch(f["time"]))
    want = {}
    for route, rs in sched.groupby("route_id"):
        num_s = num_a = n = 0.0
        hs_all, ha_all = [], []
        for stop, ss in rs.groupby("stop_id"):
            acts = a[(a["route_id"] == route) & (a["stop_id"] == stop)]["time_s"].to_numpy()
            swt, ns, hs = _awt(ss["time_s"].to_numpy())
            awt, na, ha = _awt(acts)
            if ns < 2 or na < 2:
                continue
            num_s += swt * ns
            num_a += awt * ns
            n += ns
            hs_all.append(hs)
            ha_all.append(ha)
        if n and np.concatenate(hs_all).mean() <= 720:
            h = np.concatenate(ha_all)
            want[route] = (num_a / n - num_s / n, h.std() / h.mean())
    rows = loaded["kpi"]["headway_regularity"]["rows"]
    got = {} if rows is None else {r.route_id: (r.ewt_s, r.headway_cv) for r in rows.itertuples()}
    assert want  # WMATA: C53, the one route scheduled every 12 min or better
    assert got.keys() == want.keys()
    for route, (ewt, cv) in want.items():
        assert got[route] == pytest.approx((ewt, cv), rel=1e-9)


def test_service_delivered(loaded: dict[str, Any]) -> None:
    sched = _scheduled(loaded["feed"])
    trips = sched[sched["trip_start_s"] >= START.timestamp()].drop_duplicates("trip_id")
    ran = set(loaded["arrivals"]["trip_id"])
    want = trips.assign(ran=trips["trip_id"].isin(ran)).groupby("route_id")["ran"].agg(["size", "sum"])
    got = loaded["kpi"]["service_delivered"]["rows"].set_index("route_id").loc[want.index]
    assert got["scheduled"].tolist() == want["size"].tolist()
    assert got["run"].tolist() == want["sum"].tolist()
    assert ((got["delivered_share"] > 0) & (got["delivered_share"] <= 1)).all()


def test_vehicle_km_against_geodesic_distances(loaded: dict[str, Any]) -> None:
    avl = loaded["avl"]
    p = avl[avl["trip_id"] != ""].copy()
    p["t"] = _epoch(p["timestamp"])
    p = p.sort_values(["vehicle_id", "t"])
    geod = Geod(ellps="WGS84")
    total = {}
    for _, g in p.groupby(["vehicle_id", "trip_id"]):
        lat, lon, t = g["lat"].astype(float).to_numpy(), g["lon"].astype(float).to_numpy(), g["t"].to_numpy()
        _, _, d = geod.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
        ok = np.diff(t) <= 300
        route = g["route_id"].iloc[0]
        total[route] = total.get(route, 0.0) + float(np.asarray(d)[ok].sum()) / 1000
    got = loaded["kpi"]["vehicle_km"]["rows"].set_index("route_id")["vehicle_km"]
    for route, km in total.items():
        assert got[route] == pytest.approx(km, rel=3e-3)  # sphere vs ellipsoid
    assert sum(total.values()) > 100


def test_avl_completeness(loaded: dict[str, Any]) -> None:
    avl = loaded["avl"]
    p = avl[avl["trip_id"] != ""].copy()
    p["t"] = _epoch(p["timestamp"])
    got = loaded["kpi"]["avl_completeness"]["rows"].set_index("vehicle_id")
    for vid, g in p.groupby("vehicle_id"):
        received = expected = 0.0
        for _, e in g.groupby("trip_id"):
            exp = np.floor((e["t"].max() - e["t"].min()) / 30) + 1
            received += min(len(e), exp)
            expected += exp
        assert got.loc[vid, "completeness"] == pytest.approx(received / expected)
    assert 0.5 < got["received"].sum() / got["expected"].sum() <= 1.0


def test_prediction_accuracy_without_stored_predictions(loaded: dict[str, Any]) -> None:
    entry = loaded["kpi"]["prediction_accuracy"]  # arrivals detected, but no live service stored predictions
    assert entry["rows"] is None and entry["reason"] == "no prediction stored in the period"


def test_empty_period_gives_null_with_reason(module_db: Database, loaded: dict[str, Any]) -> None:
    kpi = section(module_db, datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    for name, entry in kpi.items():
        assert entry.get("rows", entry.get("value")) is None, name  # tables and values alike
        assert entry["reason"], name
    assert kpi["eta_benchmark"]["value"] is None and kpi["prediction_completeness"]["value"] is None

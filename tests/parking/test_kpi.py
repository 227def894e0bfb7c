"""Parking indicators over the real Birmingham history replayed as counter messages through
the parking ingest parser and availability state (as the collector and service store them),
plus simulated per-space sensor messages; each indicator checked against an independent
computation of its definition over the stored rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd
import pytest

from its.alerts import AlertSink
from its.db import Database, copy_rows, migrate
from its.devices import DEVICE_STATUS_ROUTE
from its.ingest import PayloadError
from its.service import Context
from its.settings import load_settings
from parking.cleaning import read_history_csv
from parking.config import ParkingSettings
from parking.ingest import COUNT_COLUMNS, SPACE_COLUMNS, count_topic, parse_count, parse_space
from parking.kpi import section
from parking.service import ParkingService
from parking.simulator import SiteSimulator
from parking.sites import read_sites
from parking.state import ParkingState
from parking.store import OCCUPANCY_COLUMNS, save_occupancy, upsert_sites
from tests.conftest import create_database, drop_database

DEMO = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"
START = datetime(2016, 11, 7, tzinfo=UTC)
END = datetime(2016, 11, 14, tzinfo=UTC)
SIM_START = datetime(2016, 11, 8, 0, 0, tzinfo=UTC)
ON_STREET = ("CNS-ABBOTT", "CNS-SPENCE", "CNS-HOSPITAL-ST")


@pytest.fixture(scope="module")
def kdb(birmingham_csv: Path) -> Iterator[dict[str, Any]]:
    url = create_database()
    db = Database(url)
    migrate(db)
    settings = ParkingSettings()
    sites = read_sites(DEMO)
    upsert_sites(db, sites, START)
    state = ParkingState(settings)
    state.set_sites(sites)
    history = read_history_csv(birmingham_csv)
    history = history[(history["time"] >= pd.Timestamp(START)) & (history["time"] < pd.Timestamp(END))]
    counts, occupancy, spaces, status = [], {}, [], []

    def record(site_id: str, now: datetime) -> None:
        for ch in state.refresh(now, [site_id]):
            a = ch.after
            if a.observed_at is not None:
                occupancy[(a.site_id, a.observed_at)] = (a.site_id, a.observed_at, a.capacity, a.occupied, a.free,
                                                         a.unknown, a.status.value)

    for r in history.sort_values("time").itertuples():
        ts = r.time.to_pydatetime()
        try:
            rows = parse_count(count_topic(r.site_id), orjson.dumps({"ts": ts.isoformat(), "occupied": int(r.occupied)}))
        except PayloadError:  # the collector dead-letters these (site ids with spaces, e.g. "NIA North")
            continue
        counts.extend(rows)
        for site_id, t, occ, ent, ex in rows:
            state.apply_count(site_id, t, occ, ent, ex)
            record(site_id, t)
    sims = [SiteSimulator(s, "retail", np.random.default_rng(i)) for i, s in enumerate(sites) if s.site_id in ON_STREET]
    zone = ZoneInfo("Australia/Brisbane")
    for k in range(6 * 60):
        now = SIM_START + timedelta(minutes=k)
        for sim in sims:
            for topic, payload, _ in sim.step(now, zone):
                if "/spaces/" in topic:
                    rows = parse_space(topic, payload)
                    spaces.extend(rows)
                    site_id, space_id, t, occupied = rows[0][:4]
                    state.apply_space(site_id, space_id, t, occupied)
                    record(site_id, now)
                else:
                    status.extend(DEVICE_STATUS_ROUTE.parse(topic, payload))
    with db.connection() as conn:
        copy_rows(conn, "parking_counts", COUNT_COLUMNS, counts)
        copy_rows(conn, "parking_space_events", SPACE_COLUMNS, spaces)
        copy_rows(conn, "device_status", DEVICE_STATUS_ROUTE.columns, status)
        copy_rows(conn, "parking_occupancy", OCCUPANCY_COLUMNS, list(occupancy.values()))
    occ = pd.DataFrame.from_records(db.fetchall("SELECT site_id, time, capacity, occupied, status FROM"
                                                " parking_occupancy"), columns=["site_id", "time", "capacity",
                                                                                "occupied", "status"])
    ev = pd.DataFrame.from_records(db.fetchall("SELECT site_id, space_id, time, occupied FROM parking_space_events"),
                                   columns=["site_id", "space_id", "time", "occupied"])
    yield {"db": db, "occ": occ, "events": ev, "counts": counts, "sites": sites, "settings": settings,
           "kpi": section(db, START, END, settings)}
    db.close()
    drop_database(url)


def test_occupancy_rate_by_site_and_hour(kdb: dict[str, Any]) -> None:
    o = kdb["occ"].dropna(subset=["occupied"])
    o = o[o["capacity"] > 0]
    o = o.assign(hour=pd.to_datetime(o["time"], utc=True).dt.floor("h"), rate=o["occupied"] / o["capacity"])
    want = o.groupby(["site_id", "hour"])["rate"].mean()
    got = kdb["kpi"]["occupancy_by_site_hour"]["rows"].set_index(["site_id", "hour"])["occupancy_rate"]
    assert len(got) == len(want) > 500
    np.testing.assert_allclose(got.loc[want.index], want.to_numpy())
    assert kdb["occ"]["site_id"].nunique() >= 25


def test_peak_occupancy(kdb: dict[str, Any]) -> None:
    o = kdb["occ"].dropna(subset=["occupied"])
    want = (o["occupied"] / o["capacity"]).groupby(o["site_id"]).max()
    got = kdb["kpi"]["peak_occupancy"]["rows"].set_index("site_id")["peak_rate"]
    np.testing.assert_allclose(got.loc[want.index], want.to_numpy())
    assert (got <= 1.0).all()  # clamped by the availability state


def test_hours_full(kdb: dict[str, Any]) -> None:
    end_s = END.timestamp()
    want = {}
    for site, g in kdb["occ"].sort_values("time").groupby("site_id"):
        times = [t.timestamp() for t in g["time"]]
        full = 0.0
        for i, (t, st) in enumerate(zip(times, g["status"], strict=True)):
            nxt = times[i + 1] if i + 1 < len(times) else float("inf")
            if st == "full":
                full += min(nxt, t + kdb["settings"].counter_stale_s, end_s) - t
        want[site] = full / 3600
    got = kdb["kpi"]["hours_full"]["rows"].set_index("site_id")["full_h"]
    for site, h in want.items():
        assert got[site] == pytest.approx(h)
    assert max(want.values()) > 0  # some Birmingham car park fills up that week


def test_turnover_and_mean_stay(kdb: dict[str, Any]) -> None:
    ev = kdb["events"].sort_values("time")
    period_days = (END - START).total_seconds() / 86400
    n_spaces = {s.site_id: len(s.spaces) for s in kdb["sites"]}
    got = kdb["kpi"]["turnover_and_stay"]["rows"].set_index("site_id")
    assert set(got.index) == set(ON_STREET)
    for site, g in ev.groupby("site_id"):
        sessions, stays = 0, []
        for _, s in g.groupby("space_id"):
            prev, began = None, None
            for t, occ in zip(s["time"], s["occupied"], strict=True):
                if prev is False and occ:
                    sessions += 1
                    began = t
                if prev is True and not occ and began is not None:
                    stays.append((t - began).total_seconds())
                    began = None
                prev = bool(occ)
        assert got.loc[site, "sessions"] == sessions > 0
        assert got.loc[site, "turnover_per_space_day"] == pytest.approx(sessions / n_spaces[site] / period_days)
        assert got.loc[site, "mean_stay_s"] == pytest.approx(np.mean(stays))


def test_paid_spaces_connected(kdb: dict[str, Any]) -> None:
    s = kdb["settings"]
    sites = [x for x in kdb["sites"] if x.tariff]
    counts = pd.DataFrame(kdb["counts"], columns=["site_id", "time", "occupied", "entries", "exits"])
    ev = kdb["events"]
    units = []
    for site in sites:
        if site.spaces:
            units += [(ev[(ev["site_id"] == site.site_id) & (ev["space_id"] == sp.space_id)]["time"], 1,
                       s.sensor_stale_s) for sp in site.spaces]
        else:
            units += [(counts[counts["site_id"] == site.site_id]["time"], site.capacity, s.counter_stale_s)]
    first = min(pd.to_datetime(times, utc=True).min() for times, _, _ in units if len(times))
    checkpoints = [START + timedelta(hours=h) for h in range(1, 7 * 24 + 1)]
    checkpoints = [c for c in checkpoints if pd.Timestamp(c) >= first]  # no paid unit reported before
    assert 0 < len(checkpoints) < 7 * 24
    connected = total = 0.0
    for times, n, stale in units:
        t = pd.to_datetime(times, utc=True)
        for c in checkpoints:
            ok = ((t <= pd.Timestamp(c)) & (t > pd.Timestamp(c - timedelta(seconds=stale)))).any()
            connected += n * ok
            total += n
    value = kdb["kpi"]["paid_spaces_connected"]["value"]
    assert value == pytest.approx(connected / total)
    assert 0 < value < 1
    assert kdb["kpi"]["paid_spaces_connected"]["basis"] == "sites with a tariff"


def test_empty_period_and_missing_forecasts(kdb: dict[str, Any]) -> None:
    kpi = section(kdb["db"], datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    for name in ("occupancy_by_site_hour", "peak_occupancy", "hours_full", "turnover_and_stay",
                 "paid_spaces_connected_by_site"):
        assert kpi[name]["rows"] is None and kpi[name]["reason"], name
    assert kpi["paid_spaces_connected"]["value"] is None
    assert kpi["paid_spaces_connected"]["reason"] == "no paid parking unit reported in the period"
    assert kpi["forecast_error_60min"]["value"] is None
    assert kpi["forecast_error_60min"]["reason"].startswith("no +60 min forecast")
    assert kpi["forecast_error_60min_by_site"]["rows"] is None


# --------------------------------------------------------------------------- stored forecasts

FC_HISTORY_START = datetime(2016, 10, 4, tzinfo=UTC)
FC_START = datetime(2016, 11, 7, tzinfo=UTC)  # Monday; 34 days of history before it
FC_END = datetime(2016, 11, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def fdb(birmingham_csv: Path) -> Iterator[dict[str, Any]]:
    """The Birmingham history replayed through the parking service's state; from ``FC_START`` on
    the service issues and stores its forecasts at every cadence boundary, as its issuing thread
    does (the forecaster fitted once, on the history before ``FC_START`` only)."""
    url = create_database()
    db = Database(url)
    migrate(db)
    settings = ParkingSettings()
    sites = [s for s in read_sites(DEMO) if s.timezone == "Europe/London"]  # the Birmingham ids
    upsert_sites(db, sites, FC_HISTORY_START)
    service = ParkingService(settings)
    service.ctx = Context(settings=load_settings(database_url=url), db=db, read_db=db, alerts=AlertSink(db))
    service.reload_sites()
    history = read_history_csv(birmingham_csv)
    history = history[(history["time"] >= pd.Timestamp(FC_HISTORY_START)) & (history["time"] < pd.Timestamp(FC_END))]
    occupancy: dict[tuple[str, datetime], tuple[Any, ...]] = {}

    def record(changes: list[Any]) -> None:
        for ch in changes:
            a = ch.after
            if a.observed_at is not None:  # first record of an observation wins, as in the store
                occupancy.setdefault((a.site_id, a.observed_at),
                                     (a.site_id, a.observed_at, a.capacity, a.occupied, a.free, a.unknown,
                                      a.status.value))

    interval = timedelta(seconds=settings.forecast_issue_interval_s)
    tick, stored = FC_START, 0
    ordered = history.sort_values("time")
    for site_raw, ts, occupied in zip(ordered["site_id"].tolist(), ordered["time"].dt.to_pydatetime().tolist(),
                                      ordered["occupied"].tolist(), strict=True):
        while ts >= tick >= FC_START:
            if tick == FC_START:
                save_occupancy(db, list(occupancy.values()))
                occupancy.clear()
                service.fit_forecaster(FC_START)
            record(service.state.refresh(tick))
            stored += service.issue_forecasts(tick)
            tick += interval
        try:
            rows = parse_count(count_topic(str(site_raw)), orjson.dumps({"ts": ts.isoformat(), "occupied": int(occupied)}))
        except PayloadError:
            continue
        ((site_id, t, occ, ent, ex),) = rows
        service.state.apply_count(site_id, t, occ, ent, ex)
        record(service.state.refresh(t, [site_id]))
    save_occupancy(db, list(occupancy.values()))
    forecasts = pd.DataFrame.from_records(
        db.fetchall("SELECT issued_at, site_id, horizon_min, observed_at, target_time, capacity, free_predicted,"
                    " free_low, free_high FROM parking_forecasts"),
        columns=["issued_at", "site_id", "horizon_min", "observed_at", "target_time", "capacity", "free_predicted",
                 "free_low", "free_high"])
    obs = pd.DataFrame.from_records(db.fetchall("SELECT site_id, time, free FROM parking_occupancy"),
                                    columns=["site_id", "time", "free"])
    yield {"db": db, "settings": settings, "forecasts": forecasts, "obs": obs, "stored": stored,
           "service": service, "kpi": section(db, FC_START, FC_END, settings)}
    db.close()
    drop_database(url)


def test_forecasts_are_stored_once_per_observation(fdb: dict[str, Any]) -> None:
    f = fdb["forecasts"]
    assert fdb["stored"] == len(f) > 1000
    assert set(f["horizon_min"]) == {15, 30, 60}
    # issued on the 15-minute cadence, from an observation made before, for a time after
    issued = pd.to_datetime(f["issued_at"], utc=True)
    assert (issued == issued.dt.floor("15min")).all()
    observed, target = pd.to_datetime(f["observed_at"], utc=True), pd.to_datetime(f["target_time"], utc=True)
    assert (observed <= issued).all() and (target > issued).all()
    assert (target - observed == pd.to_timedelta(f["horizon_min"], unit="min")).all()
    assert not f.duplicated(["site_id", "horizon_min", "observed_at"]).any()
    assert ((f["free_low"] <= f["free_predicted"]) & (f["free_predicted"] <= f["free_high"])).all()
    assert ((f["free_predicted"] >= 0) & (f["free_predicted"] <= f["capacity"])).all()
    assert f["site_id"].nunique() >= 20


def test_forecast_error_60min_against_the_occupancy_reached(fdb: dict[str, Any]) -> None:
    max_age = pd.Timedelta(seconds=fdb["settings"].counter_stale_s)
    f = fdb["forecasts"]
    f = f[f["horizon_min"] == 60].copy()
    f["target_time"] = pd.to_datetime(f["target_time"], utc=True)
    f = f[(f["target_time"] >= pd.Timestamp(FC_START)) & (f["target_time"] < pd.Timestamp(FC_END))]
    obs = fdb["obs"].assign(time=pd.to_datetime(fdb["obs"]["time"], utc=True))
    errors: dict[str, list[float]] = {}
    unscored = 0
    for site, g in f.groupby("site_id"):
        o = obs[obs["site_id"] == site]
        for r in g.itertuples():
            before = o[(o["time"] <= r.target_time) & (o["time"] >= r.target_time - max_age)]
            if before.empty or pd.isna(before.sort_values("time")["free"].iloc[-1]):
                unscored += 1
                continue
            errors.setdefault(str(site), []).append(float(r.free_predicted - before.sort_values("time")["free"].iloc[-1]))
    kpi = fdb["kpi"]
    overall = kpi["forecast_error_60min"]
    all_errors = np.concatenate([np.asarray(e) for e in errors.values()])
    assert overall["forecasts_scored"] == len(all_errors) > 500
    assert overall["value"] == pytest.approx(np.mean(np.abs(all_errors)))
    assert unscored == len(f) - len(all_errors)
    by_site = kpi["forecast_error_60min_by_site"]["rows"].set_index("site_id")
    assert by_site["forecasts"].sum() == len(f)
    for site, e in errors.items():
        assert by_site.loc[site, "scored"] == len(e)
        assert by_site.loc[site, "mae_spaces"] == pytest.approx(np.mean(np.abs(e)))
        assert by_site.loc[site, "bias_spaces"] == pytest.approx(np.mean(e))
    # a useful forecast: on average within a tenth of a car park's capacity
    capacity = f.groupby("site_id")["capacity"].first()
    assert overall["value"] < 0.1 * capacity.mean()
    assert 0.5 < (by_site["band_coverage"] * by_site["scored"]).sum() / by_site["scored"].sum() <= 1.0

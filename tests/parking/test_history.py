"""Backfilled demo history: the real Birmingham history shifted to end before now, stored once,
and enough for the parking service to forecast the replay sites at +15/+30/+60 min."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.db import Database
from its.settings import Settings
from parking.cleaning import read_history_csv
from parking.config import ParkingSettings
from parking.history import (
    BIRMINGHAM_CSV,
    SIMULATED_DAYS,
    backfill_demo_history,
    backfill_history,
    shift_history,
    sites_without_history,
)
from parking.ingest import count_topic
from parking.service import ParkingService
from parking.simulator import DEFAULT_PROFILE, occupancy_target, simulated_history
from parking.sites import read_sites
from parking.store import upsert_sites
from tests.its.helpers import wait_for

DEMO = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"
SITES = ("BHMBCCMKT01", "Shopping")
LONDON = "Europe/London"


def test_shift_keeps_weekday_and_local_time_and_ends_before_end() -> None:
    recorded = pd.to_datetime(["2016-12-12T09:00:00", "2016-12-19T16:30:00"])  # Mondays, wall clock
    history = pd.DataFrame({"site_id": ["A", "A"], "local_time": recorded, "occupied": [1, 2]})
    # end exactly one whole number of weeks after the last reading: that week is not allowed
    end = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)  # a Monday, like 2016-12-19
    shifted = shift_history(history, {"A": LONDON, "B": LONDON}, end)
    assert shifted["time"].max() == pd.Timestamp("2026-11-16T16:30:00", tz=UTC)
    local = shifted["time"].dt.tz_convert(LONDON)
    assert (local.dt.day_of_week == 0).all() and local.dt.strftime("%H:%M").tolist() == ["09:00", "16:30"]
    # a minute later the last week fits; and a zone a long way off keeps the local wall time
    later = shift_history(history, {"A": "Australia/Brisbane"}, end + timedelta(days=7, minutes=1))
    brisbane = later["time"].dt.tz_convert("Australia/Brisbane")
    assert brisbane.dt.strftime("%a %H:%M").tolist() == ["Mon 09:00", "Mon 16:30"]
    assert later["time"].max() < pd.Timestamp(end + timedelta(days=7, minutes=1))
    assert shift_history(history, {"B": LONDON}, end).empty
    with pytest.raises(ValueError):
        shift_history(history, {"A": LONDON}, datetime(2026, 11, 23))


def test_backfill_and_forecast(settings: Settings, db: Database, birmingham_csv: Path, tmp_path: Path) -> None:
    doc = orjson.loads(DEMO.read_bytes())
    for feature in doc["features"]:  # open around the clock, so the test does not depend on the hour
        feature["properties"]["opening_hours"] = "24/7"
    sites_file = tmp_path / "sites.geojson"
    sites_file.write_bytes(orjson.dumps(doc))
    sites = read_sites(sites_file)
    upsert_sites(db, sites, datetime.now(UTC))
    chosen = [s for s in sites if s.site_id in SITES]
    now = datetime.now(UTC)

    inserted = backfill_history(db, chosen, birmingham_csv, now)
    recorded = read_history_csv(birmingham_csv)
    recorded = recorded[recorded["site_id"].isin(SITES)].drop_duplicates(["site_id", "time"])
    assert 0.99 * len(recorded) <= inserted <= len(recorded)  # at most a DST hour is dropped
    assert backfill_history(db, chosen, birmingham_csv, now) == 0  # a second run adds nothing
    # the other replay sites (recorded history only: no simulated one for the rest here)
    assert backfill_demo_history(db, sites_file, birmingham_csv.parents[2], now, simulate=False) > 0
    assert birmingham_csv.parents[2] / BIRMINGHAM_CSV == birmingham_csv
    assert backfill_demo_history(db, sites_file, tmp_path, now, simulate=False) == 0  # no history there

    stored = pd.DataFrame(db.fetchall(
        "SELECT site_id, time, occupied FROM parking_occupancy WHERE site_id = ANY(%s) ORDER BY site_id, time",
        (list(SITES),)), columns=["site_id", "time", "occupied"])
    for site_id in SITES:
        got = stored[stored["site_id"] == site_id]
        rec = recorded[recorded["site_id"] == site_id].sort_values("time")
        last = pd.Timestamp(got["time"].max()).tz_convert(LONDON)
        # ends just before now (within the last week), on the recorded weekday and local time
        assert now - timedelta(days=7) < last < now
        rec_last = rec["time"].max().tz_convert(LONDON)
        assert (last.weekday(), last.time()) == (rec_last.weekday(), rec_last.time())
        first = pd.Timestamp(got["time"].min()).tz_convert(LONDON)
        rec_first = rec["time"].min().tz_convert(LONDON)
        assert (first.weekday(), first.time()) == (rec_first.weekday(), rec_first.time())
        assert (last.tz_localize(None) - rec_last.tz_localize(None)) % timedelta(days=7) == timedelta(0)
        assert got["occupied"].between(0, next(s.capacity for s in chosen if s.site_id == site_id)).all()

    ctx = build_context(settings)
    service = ParkingService(ParkingSettings(sensor_stale_s=600, timezone="UTC"))
    app = create_app(settings, [service], context=ctx)
    try:
        with TestClient(app) as client:
            assert wait_for(service.ready)
            # before any live reading there is nothing to forecast from
            before = client.get(f"/v1/parking/sites/{SITES[0]}/forecast").json()
            assert all(f["free"] is None for f in before["forecasts"])
            # a live reading at the latest 10:00 in Birmingham (inside the recorded hours)
            ten = pd.Timestamp.now(tz=LONDON).normalize() + pd.Timedelta(hours=10)
            if ten > pd.Timestamp.now(tz=LONDON):
                ten -= pd.Timedelta(days=1)
            for site_id in (*SITES, "CNS-CENTRAL"):
                service._on_count(count_topic(site_id), orjson.dumps({"ts": ten.timestamp(), "occupied": 300}))
            for site_id in SITES:
                capacity = next(s.capacity for s in chosen if s.site_id == site_id)
                fc = client.get(f"/v1/parking/sites/{site_id}/forecast").json()
                assert fc["observed_at"] == ten.tz_convert("UTC").isoformat()
                assert [f["horizon_min"] for f in fc["forecasts"]] == [15, 30, 60]
                for f in fc["forecasts"]:
                    assert f["reason"] is None, f
                    assert f["free_low"] <= f["free"] <= f["free_high"] and 0 <= f["free"] <= capacity
                # the car parks fill in the morning: fewer free spaces expected in an hour than now
                assert fc["forecasts"][-1]["free"] < capacity - 300
            # a site left out of the backfill still has no history
            thin = client.get("/v1/parking/sites/CNS-CENTRAL/forecast").json()
            assert thin["observed_at"] is not None  # it has a live reading, but no history
            assert all(f["free"] is None and f["reason"] for f in thin["forecasts"])
    finally:
        if ctx.live:
            ctx.live.close()
        ctx.db.close()


def test_simulated_history_follows_the_live_simulators_curve() -> None:
    sites = [s.model_copy(update={"timezone": "Australia/Brisbane"}) for s in read_sites(DEMO)
             if s.site_id in ("CNS-CENTRAL", "CNS-ABBOTT")]
    end = datetime(2026, 11, 23, 10, 7, tzinfo=UTC)
    hist = simulated_history(sites, DEFAULT_PROFILE, end, days=14)
    assert len(hist) == 2 * 14 * 96 and hist.equals(simulated_history(sites, DEFAULT_PROFILE, end, days=14))
    assert hist["time"].max() == pd.Timestamp("2026-11-23T10:00", tz=UTC) and (hist["time"] < end).all()
    for site in sites:
        got = hist[hist["site_id"] == site.site_id]
        assert got["occupied"].between(0, site.capacity).all()
        local = got["time"].dt.tz_convert("Australia/Brisbane")
        by_hour = got.groupby(local.dt.hour)["occupied"].mean() / site.capacity
        expected = [occupancy_target(DEFAULT_PROFILE, h + 0.375) for h in by_hour.index]  # :00..:45 readings
        assert abs(by_hour.to_numpy() - expected).max() < 0.12, (site.site_id, by_hour)
        assert got["occupied"].std() > 0.2 * site.capacity  # a daily cycle, not a constant
    big = hist[hist["site_id"] == "CNS-CENTRAL"]["occupied"].to_numpy()
    noon = hist[(hist["site_id"] == "CNS-CENTRAL")
                & (hist["time"].dt.tz_convert("Australia/Brisbane").dt.hour == 12)]["occupied"]
    assert 0.01 * 600 < noon.std() < 0.06 * 600  # noise of a counted site: about 2 % of capacity
    assert len(big) == 14 * 96
    with pytest.raises(ValueError):
        simulated_history(sites, "nightclub", end, days=1)
    with pytest.raises(ValueError):
        simulated_history(sites, DEFAULT_PROFILE, datetime(2026, 11, 23), days=1)


def test_demo_without_recorded_history_forecasts_every_car_park(settings: Settings, db: Database,
                                                                tmp_path: Path) -> None:
    """A clean machine: no Birmingham history, so every demo car park gets a simulated one and
    is forecast from its first live reading."""
    doc = orjson.loads(DEMO.read_bytes())
    for feature in doc["features"]:  # open around the clock, so the test does not depend on the hour
        feature["properties"]["opening_hours"] = "24/7"
        feature["properties"]["timezone"] = "Australia/Brisbane"
    sites_file = tmp_path / "sites.geojson"
    sites_file.write_bytes(orjson.dumps(doc))
    sites = read_sites(sites_file)
    upsert_sites(db, sites, datetime.now(UTC))
    now = datetime.now(UTC)
    inserted = backfill_demo_history(db, sites_file, tmp_path / "missing", now)
    assert inserted == len(sites) * SIMULATED_DAYS * 96
    assert sites_without_history(db, sites, now) == []
    assert backfill_demo_history(db, sites_file, tmp_path / "missing", now) == 0  # once only

    ctx = build_context(settings)
    service = ParkingService(ParkingSettings(sensor_stale_s=600, timezone="UTC"))
    app = create_app(settings, [service], context=ctx)
    try:
        with TestClient(app) as client:
            assert wait_for(service.ready)
            # a live reading at the latest 09:00 in Cairns: retail car parks fill until noon
            nine = pd.Timestamp.now(tz="Australia/Brisbane").normalize() + pd.Timedelta(hours=9)
            if nine > pd.Timestamp.now(tz="Australia/Brisbane"):
                nine -= pd.Timedelta(days=1)
            for site in sites:
                if not site.spaces:
                    occupied = round(occupancy_target(DEFAULT_PROFILE, 9.0) * site.capacity)
                    service._on_count(count_topic(site.site_id), orjson.dumps({"ts": nine.timestamp(),
                                                                               "occupied": occupied}))
            for site in sites:
                if site.spaces:
                    continue
                fc = client.get(f"/v1/parking/sites/{site.site_id}/forecast").json()
                assert [f["horizon_min"] for f in fc["forecasts"]] == [15, 30, 60], fc
                for f in fc["forecasts"]:
                    assert f["reason"] is None, (site.site_id, f)
                    assert f["free_low"] <= f["free"] <= f["free_high"] and 0 <= f["free"] <= site.capacity
                now_free = site.capacity - round(occupancy_target(DEFAULT_PROFILE, 9.0) * site.capacity)
                want = site.capacity * (1 - occupancy_target(DEFAULT_PROFILE, 10.0))
                # filling up toward the curve's 10:00 level, within 8 % of capacity
                assert fc["forecasts"][-1]["free"] < now_free
                assert abs(fc["forecasts"][-1]["free"] - want) < 0.08 * site.capacity, (site.site_id, fc)
    finally:
        if ctx.live:
            ctx.live.close()
        ctx.db.close()

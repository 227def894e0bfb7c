"""The /v1/parking API over a real database and broker: search, snapshot ETag/304, errors,
history, forecast, alerts, stale sensors, SSE (the DATEX II export: ``test_datex2.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.db import Database, copy_rows
from its.service import Context
from its.settings import Settings
from parking.config import ParkingSettings
from parking.history import store_history
from parking.ingest import count_topic, space_topic
from parking.service import ParkingService
from parking.sites import read_sites
from parking.state import distance_m
from parking.store import upsert_sites
from tests.its.helpers import wait_for

DEMO = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"
CENTRAL = (-16.922989, 145.771593)  # the Cairns Central bus stop


def count(service: ParkingService, site: str, ts: datetime, **fields: int) -> None:
    service._on_count(count_topic(site), orjson.dumps({"ts": ts.timestamp(), **fields}))


def test_rebuilt_from_store_and_updated_by_messages(parking: tuple[TestClient, ParkingService, Context]) -> None:
    client, service, _ = parking
    hospital = client.get("/v1/parking/sites/CNS-HOSPITAL").json()["availability"]
    assert (hospital["occupied"], hospital["free"]) == (100, 220)
    assert 290 < hospital["age_s"] < 400
    count(service, "CNS-HOSPITAL", datetime.now(UTC), entries=5, exits=1)
    assert client.get("/v1/parking/sites/CNS-HOSPITAL").json()["availability"]["occupied"] == 104
    count(service, "CNS-HOSPITAL", datetime.now(UTC) + timedelta(seconds=1), occupied=350)
    after = client.get("/v1/parking/sites/CNS-HOSPITAL").json()["availability"]
    assert (after["occupied"], after["free"], after["status"]) == (320, 0, "full")
    assert "clamped_over_capacity" in after["flags"] and "counter_drift_corrected" in after["flags"]


def test_sites_near_a_point(parking: tuple[TestClient, ParkingService, Context]) -> None:
    client, service, _ = parking
    now = datetime.now(UTC)
    count(service, "CNS-CENTRAL", now, occupied=595)
    body = client.get("/v1/parking/sites", params={"lat": CENTRAL[0], "lon": CENTRAL[1], "radius_m": 800}).json()
    ids = [s["site_id"] for s in body["sites"]]
    dists = [s["distance_m"] for s in body["sites"]]
    assert ids[0] == "CNS-CENTRAL" and dists == sorted(dists) and dists[-1] <= 800
    assert "CNS-HOSPITAL" not in ids  # ~1.1 km away
    assert body["sites"][0]["availability"]["free"] == 5
    roomy = client.get("/v1/parking/sites", params={"lat": CENTRAL[0], "lon": CENTRAL[1], "radius_m": 2000,
                                                     "min_free": 10}).json()
    assert "CNS-CENTRAL" not in [s["site_id"] for s in roomy["sites"]]
    assert "CNS-HOSPITAL" in [s["site_id"] for s in roomy["sites"]]
    moto = client.get("/v1/parking/sites", params={"lat": CENTRAL[0], "lon": CENTRAL[1], "radius_m": 2000,
                                                    "vehicle_type": "motorcycle"}).json()
    assert {s["site_id"] for s in moto["sites"]} == {"CNS-CENTRAL", "CNS-ABBOTT", "CNS-SHERIDAN"}


def test_served_records_match_site_record_and_brute_force_search(
        parking: tuple[TestClient, ParkingService, Context]) -> None:
    """Pre-serialised answers equal the records built afresh (``age_s`` to the request time),
    and the KD-tree search equals a haversine scan of every site, at every radius."""
    client, service, _ = parking
    count(service, "CNS-CENTRAL", datetime.now(UTC) - timedelta(seconds=30), occupied=200)

    def same(served: dict[str, object], fresh: dict[str, object]) -> None:
        got, want = dict(served["availability"]), dict(fresh["availability"])  # type: ignore[call-overload]
        age_got, age_want = got.pop("age_s"), want.pop("age_s")
        assert {**served, "availability": got} == {**fresh, "availability": want}
        assert (age_got is None) == (age_want is None)
        assert age_got is None or abs(age_got - age_want) < 1.0

    for site_id in service.state.sites:
        same(client.get(f"/v1/parking/sites/{site_id}").json(), service.site_record(site_id, datetime.now(UTC)))
    order, lats, lons = service.state.index
    for (lat, lon), radius in [(CENTRAL, 150), (CENTRAL, 800), (CENTRAL, 2000), ((-16.93, 145.75), 5000),
                               ((-16.92, 145.77), 50_000), ((51.48, -1.9), 5000)]:
        dist = distance_m(lat, lon, lats, lons)
        want = [(order[i], round(float(dist[i]), 1)) for i in np.argsort(dist, kind="stable") if dist[i] <= radius]
        body = client.get("/v1/parking/sites", params={"lat": lat, "lon": lon, "radius_m": radius, "limit": 500}).json()
        assert [(s["site_id"], s["distance_m"]) for s in body["sites"]] == want and body["count"] == len(want)
        for served in body["sites"]:
            same({k: v for k, v in served.items() if k != "distance_m"},
                 service.site_record(served["site_id"], datetime.now(UTC)))
    assert any(s["availability"]["age_s"] for s in
               client.get("/v1/parking/sites", params={"lat": CENTRAL[0], "lon": CENTRAL[1]}).json()["sites"])


def test_snapshot_etag_and_304(parking: tuple[TestClient, ParkingService, Context]) -> None:
    client, service, _ = parking
    first = client.get("/v1/parking/availability")
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert len(first.json()["sites"]) == 36
    again = client.get("/v1/parking/availability", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    count(service, "CNS-CENTRAL", datetime.now(UTC), occupied=10)
    changed = client.get("/v1/parking/availability", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    central = next(s for s in changed.json()["sites"] if s["site_id"] == "CNS-CENTRAL")
    assert central["occupied"] == 10


def test_errors_are_json(parking: tuple[TestClient, ParkingService, Context]) -> None:
    client, _, _ = parking
    missing = client.get("/v1/parking/sites/NOPE")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    for params in ({"lat": 95, "lon": 145}, {"lon": 145}, {"lat": -16.9, "lon": 145.7, "radius_m": -1},
                   {"lat": -16.9, "lon": 145.7, "vehicle_type": "bus"}):
        bad = client.get("/v1/parking/sites", params=params)
        assert bad.status_code == 422, params
        assert "error" in bad.json()
    assert client.get("/v1/parking/sites/CNS-CENTRAL/history", params={"interval": "7m"}).status_code == 422
    assert client.get("/v1/parking/sites/CNS-CENTRAL/history", params={"from": "garbage"}).status_code == 422
    reversed_ = client.get("/v1/parking/sites/CNS-CENTRAL/history",
                           params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
    assert reversed_.status_code == 422 and "before" in reversed_.json()["error"]["message"]
    assert client.get("/v1/parking/sites/NOPE/forecast").status_code == 404


def test_stale_and_offline_sensors_are_unknown_with_alerts(parking: tuple[TestClient, ParkingService, Context]) -> None:
    client, service, ctx = parking
    # the background tick re-evaluates at the real time, when space 12 is still fresh: stop it
    # so that the tick below, ten minutes ahead, is the one the assertions see
    service._stop.set()
    assert service._thread is not None
    service._thread.join(timeout=10)
    now = datetime.now(UTC)
    for i in range(1, 13):
        service._on_space(space_topic("CNS-ABBOTT", f"{i:02d}"), orjson.dumps({"ts": now.timestamp(), "occupied": i <= 4}))
    zone = client.get("/v1/parking/sites/CNS-ABBOTT").json()["availability"]
    assert (zone["occupied"], zone["free"], zone["unknown"]) == (4, 8, 0)
    # space 12 goes silent: ten minutes later it is unknown, not free, and an alert is raised
    later = now + timedelta(seconds=601)
    for i in range(1, 12):
        service._on_space(space_topic("CNS-ABBOTT", f"{i:02d}"), orjson.dumps({"ts": later.timestamp(), "occupied": i <= 4}))
    service.tick(later)
    zone = service.state.current("CNS-ABBOTT")
    assert zone is not None and (zone.free, zone.unknown) == (7, 1)
    assert "stale_sensors" in zone.flags
    assert any(a.alert_id == "parking_sensor_offline:CNS-ABBOTT.12" for a in ctx.alerts.active())
    # Last Will of sensor 01: its space is unknown at once
    service._on_status("its/v1/devices/parking-sensor/CNS-ABBOTT.01/status", b'{"online": false}')
    zone_now = client.get("/v1/parking/sites/CNS-ABBOTT").json()["availability"]
    assert zone_now["unknown"] >= 1 and zone_now["occupied"] == 3


def test_full_alert_raised_and_cleared(parking: tuple[TestClient, ParkingService, Context]) -> None:
    _, service, ctx = parking
    now = datetime.now(UTC)
    count(service, "CNS-HOSPITAL", now, occupied=320)
    assert any(a.alert_id == "parking_full:CNS-HOSPITAL" for a in ctx.alerts.active())
    count(service, "CNS-HOSPITAL", now + timedelta(seconds=5), occupied=100)
    assert not any(a.alert_id == "parking_full:CNS-HOSPITAL" for a in ctx.alerts.active())


def test_history_and_forecast_from_the_store(parking: tuple[TestClient, ParkingService, Context],
                                              birmingham_csv: Path, db: Database) -> None:
    client, service, _ = parking
    site = "BHMBCCMKT01"
    raw = pd.read_csv(birmingham_csv)
    raw = raw[raw["site_id"] == site].drop_duplicates(["site_id", "timestamp"])
    times = pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601")
    # shift the real history by whole weeks so it ends last week (weekdays kept)
    shift = pd.Timedelta(weeks=((pd.Timestamp.now(tz="UTC") - times.max()).days // 7))
    rows = [(site, (t + shift).to_pydatetime(), 577, int(min(max(o, 0), 577)), int(577 - min(max(o, 0), 577)), 0,
             "spacesAvailable") for t, o in zip(times, raw["occupied"], strict=True)]
    with db.connection() as conn:
        copy_rows(conn, "parking_occupancy", ("site_id", "time", "capacity", "occupied", "free", "unknown", "status"), rows)
    end = rows[-1][1] + timedelta(minutes=1)
    hist = client.get(f"/v1/parking/sites/{site}/history",
                      params={"from": (end - timedelta(days=1)).isoformat(), "to": end.isoformat(), "interval": "15m"})
    assert hist.status_code == 200
    records = hist.json()["records"]
    assert 10 <= len(records) <= 40 and all(r["readings"] >= 1 for r in records)
    raw_hist = client.get(f"/v1/parking/sites/{site}/history",
                          params={"from": (end - timedelta(days=1)).isoformat(), "to": end.isoformat(), "interval": "raw"})
    assert len(raw_hist.json()["records"]) == sum(r["readings"] for r in records)
    service.fit_forecaster(datetime.now(UTC))
    # the latest 10:00 in Birmingham: inside the hours the history covers
    ten = pd.Timestamp.now(tz="Europe/London").normalize() + pd.Timedelta(hours=10)
    if ten > pd.Timestamp.now(tz="Europe/London"):
        ten -= pd.Timedelta(days=1)
    count(service, site, ten.tz_convert("UTC").to_pydatetime(), occupied=300)
    fc = client.get(f"/v1/parking/sites/{site}/forecast").json()
    assert [f["horizon_min"] for f in fc["forecasts"]] == [15, 30, 60]
    for f in fc["forecasts"]:
        assert f["reason"] is None
        assert f["free_low"] <= f["free"] <= f["free_high"] and 0 <= f["free"] <= 577
    # the car park fills in the morning: fewer free spaces expected in an hour than now
    assert fc["forecasts"][-1]["free"] < 577 - 300
    thin = client.get("/v1/parking/sites/BHMBCCPST01/forecast").json()
    assert all(f["free"] is None and f["reason"] for f in thin["forecasts"])


def test_occupancy_is_persisted(parking: tuple[TestClient, ParkingService, Context], db: Database) -> None:
    _, service, _ = parking
    ts = datetime.now(UTC).replace(microsecond=0)
    count(service, "CNS-CENTRAL", ts, occupied=42)
    service.flush()
    assert db.fetchall("SELECT occupied, free FROM parking_occupancy WHERE site_id = 'CNS-CENTRAL' AND time = %s",
                       (ts,)) == [(42, 558)]


def test_stream_sends_changes(parking: tuple[TestClient, ParkingService, Context]) -> None:
    client, service, _ = parking
    events: list[dict[str, object]] = []
    with client.stream("GET", "/v1/parking/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        # the current state first: one event per site
        while len(events) < 36:
            line = next(lines)
            if line.startswith("data:"):
                events.append(orjson.loads(line[5:]))
        count(service, "CNS-CENTRAL", datetime.now(UTC), occupied=77)
        while True:
            line = next(lines)
            if line.startswith("data:"):
                change = orjson.loads(line[5:])
                break
    assert {e["site_id"] for e in events} == set(service.state.sites)
    assert change["site_id"] == "CNS-CENTRAL" and change["occupied"] == 77


def test_forecasts_issued_in_the_background_are_stored_and_served(settings: Settings, db: Database,
                                                                   birmingham_csv: Path) -> None:
    site = "BHMBCCMKT01"
    # a fixed-offset zone where it is now 11:xx, so that +60 min stays on the same local day
    offset_h = 11 - datetime.now(UTC).hour
    zone = "Etc/GMT" if offset_h == 0 else f"Etc/GMT{'-' if offset_h > 0 else '+'}{abs(offset_h)}"
    upsert_sites(db, [s.model_copy(update={"timezone": zone}) for s in read_sites(DEMO) if s.site_id == site],
                 datetime.now(UTC))
    raw = pd.read_csv(birmingham_csv)
    raw = raw[raw["site_id"] == site].drop_duplicates(["site_id", "timestamp"])
    times = pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601")
    # shift the real history so that its last 11:00 (Birmingham time) falls a week before now:
    # the current local time of day is then one the history covers, whatever the hour of the test
    anchor = times.max().tz_convert("Europe/London").normalize() + pd.Timedelta(hours=11)
    shift = pd.Timestamp.now(tz="UTC") - timedelta(days=7) - anchor
    rows = [(site, (t + shift).to_pydatetime(), 577, int(min(max(o, 0), 577)), int(577 - min(max(o, 0), 577)), 0,
             "spacesAvailable") for t, o in zip(times, raw["occupied"], strict=True)]
    store_history(db, rows, None, None)  # on TimescaleDB also materialises the rollup the forecaster reads
    ctx = build_context(settings)
    service = ParkingService(ParkingSettings(forecast_issue_interval_s=1))
    app = create_app(settings, [service], context=ctx)
    try:
        with TestClient(app) as client:
            assert wait_for(service.ready)
            service.fit_forecaster(datetime.now(UTC))
            now = datetime.now(UTC)
            count(service, site, now, occupied=300)
            # the horizons with a forecast: the shifted history has gaps at some times of day
            # (readings every ~30 min, 08:00-16:30), where a horizon rightly has none
            expected = [p.horizon_min for p in service.site_forecast(site, now).points if p.free is not None]
            assert expected, service.site_forecast(site, now)
            stored_n = lambda: len(db.fetchall("SELECT 1 FROM parking_forecasts"))  # noqa: E731
            assert wait_for(lambda: stored_n() >= len(expected), 60), (stored_n(), expected)
            stored = db.fetchall("SELECT issued_at, horizon_min, observed_at, target_time, free_predicted, free_low,"
                                 " free_high FROM parking_forecasts ORDER BY horizon_min")
            served = client.get(f"/v1/parking/sites/{site}/forecast").json()
    finally:
        if ctx.live:
            ctx.live.close()
        ctx.db.close()
    assert [r[1] for r in stored] == expected
    with_forecast = [f for f in served["forecasts"] if f["free"] is not None]
    for (issued, h, observed, target, free, low, high), f in zip(stored, with_forecast, strict=True):
        assert issued.microsecond == 0 and issued >= observed  # on the 1 s cadence, after the count
        assert abs((observed - now).total_seconds()) < 1e-3 and target == observed + timedelta(minutes=h)
        assert f["at"] == target.isoformat()
        assert (free, low, high) == (f["free"], f["free_low"], f["free_high"])  # what the API serves

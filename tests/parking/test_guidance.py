"""Parking guidance: ranking, chance of a space on arrival, the route over the real app with the
real Birmingham history in the store, and the sign texts on the real broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.db import Database
from its.mqtt import connect
from its.service import Context
from its.settings import Settings
from parking.blend import LEVELS
from parking.config import ParkingSettings
from parking.guidance import (
    GUIDANCE_TOPIC,
    Alternative,
    arrival_forecast,
    guidance_topic,
    rank,
    sign_message,
)
from parking.history import backfill_history
from parking.ingest import count_topic
from parking.service import ParkingService
from parking.sites import Site, read_sites
from parking.store import upsert_sites
from tests.its.helpers import wait_for

DEMO = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"
# Birmingham car parks (real histories; demo positions 0.5-1.5 km apart); THL01 is often full
SITES = ("BHMBCCTHL01", "BHMBCCMKT01", "BHMBCCPST01", "BHMBCCSNH01", "BHMEURBRD01", "BHMEURBRD02",
         "BHMMBMMBX01", "BHMNCPNST01")
FULL = "BHMBCCTHL01"


def test_rank_by_rounded_probability_then_distance() -> None:
    prob = np.array([0.99, 0.98, 0.5, np.nan, 0.999, 0.2])
    dist = np.array([900.0, 100.0, 10.0, 0.0, 500.0, 50.0])
    free = np.array([50.0, 60.0, 5.0, 80.0, 40.0, 1.0])
    # 0.98, 0.99 and 0.999 round to the same step (0.05): told apart by distance
    assert rank(prob, dist, free, 0.05).tolist() == [1, 4, 0, 2, 5, 3]
    assert rank(prob, dist, free, 0.001).tolist() == [4, 0, 1, 2, 5, 3]  # fine steps: probability first
    same = rank(np.array([0.9, 0.9]), np.array([10.0, 10.0]), np.array([3.0, 30.0]), 0.05)
    assert same.tolist() == [1, 0]  # then the most free spaces expected


def test_arrival_forecast_between_horizons() -> None:
    errs = np.zeros((2, 3, LEVELS.size))
    errs[:, 2] = np.linspace(-40, 40, LEVELS.size)  # +60 min: errors up to 40 spaces either way
    errs[:, 1] = errs[:, 2] / 2
    errs[:, 0] = errs[:, 2] / 4
    pred = np.array([[90.0, 95.0, 100.0], [20.0, 30.0, 50.0]])
    occ, prob = arrival_forecast((15, 30, 60), np.array([80.0, 10.0]), pred, errs, np.array([100.0, 100.0]),
                                 np.array([45.0, 0.0]))
    assert occ.tolist() == [97.5, 10.0]  # halfway from +30 to +60; at once: the reading
    assert prob[1] == 0.995  # 90 free now, no error at 0 min
    assert 0.4 < prob[0] < 0.6  # forecast full minus 2.5 with errors of +-30: about even
    far = arrival_forecast((15, 30, 60), np.array([80.0]), pred[:1], errs[:1], np.array([100.0]), np.array([90.0]))
    assert far[0][0] == 100.0  # beyond +60: the +60 forecast
    gap = pred.copy()
    gap[0, 2] = np.nan  # no +60 forecast (e.g. it would cross midnight)
    occ, prob = arrival_forecast((15, 30, 60), np.array([80.0, 10.0]), gap, errs, np.array([100.0, 100.0]),
                                 np.array([45.0, 20.0]))
    assert np.isnan(prob[0]) and not np.isnan(prob[1])


def test_sign_message() -> None:
    alts = [Alternative("B", "Bull Ring", 1234.0, 0.97, 800), Alternative("N", "NIA South", 640.0, 0.91, 120)]
    msg = sign_message("T", "Town Hall", "full", alts, "2026-01-05T10:00:00+00:00", 10.0)
    assert msg["active"] and msg["lines"] == ["Town Hall FULL", "-> Bull Ring 1.2 km", "-> NIA South 0.6 km"]
    assert msg["text"] == "Town Hall FULL / -> Bull Ring 1.2 km / -> NIA South 0.6 km"
    assert [a["site_id"] for a in msg["alternatives"]] == ["B", "N"]  # type: ignore[attr-defined]
    assert sign_message("T", "Town Hall", "almostFull", [], "", 10.0)["lines"] == ["Town Hall NEARLY FULL",
                                                                                 "NO ALTERNATIVE NEARBY"]
    blank = sign_message("T", "Town Hall", "spacesAvailable", alts, "", 10.0)
    assert not blank["active"] and blank["lines"] == [] and blank["alternatives"] == []
    assert guidance_topic("T") == "its/v1/parking/guidance/T" == GUIDANCE_TOPIC.concrete("T")


# ---------------------------------------------------------------------------- live service
@pytest.fixture
def guided(settings: Settings, db: Database, birmingham_csv: Path) -> Iterator[tuple[TestClient, ParkingService, list[Site]]]:
    """Eight Birmingham car parks with their real history backfilled to last week, in a fixed-offset
    zone where it is now 11:xx (a time of day the history covers, whatever the hour of the test)."""
    now = datetime.now(UTC)
    offset_h = 11 - now.hour
    zone = "Etc/GMT" if offset_h == 0 else f"Etc/GMT{'-' if offset_h > 0 else '+'}{abs(offset_h)}"
    sites = [s.model_copy(update={"timezone": zone}) for s in read_sites(DEMO) if s.site_id in SITES]
    upsert_sites(db, sites, now)
    assert backfill_history(db, sites, birmingham_csv, now - timedelta(minutes=1)) > 5000
    ctx = build_context(settings)
    service = ParkingService(ParkingSettings())
    app = create_app(settings, [service], context=ctx)
    try:
        with TestClient(app) as client:
            assert wait_for(service.ready)
            service.fit_forecaster(now)
            for s in sorted(sites, key=lambda s: s.site_id == FULL):  # 60 % occupied now; then one full
                count(service, s.site_id, now, s.capacity if s.site_id == FULL else int(0.6 * s.capacity))
            yield client, service, sites
    finally:
        _close(ctx)


def _close(ctx: Context) -> None:
    if ctx.live:
        ctx.live.close()
    ctx.db.close()


def count(service: ParkingService, site: str, ts: datetime, occupied: int) -> None:
    service._on_count(count_topic(site), orjson.dumps({"ts": ts.timestamp(), "occupied": occupied}))


def test_guidance_route_on_real_forecasts_and_bad_input(guided: tuple[TestClient, ParkingService, list[Site]]) -> None:
    client, service, sites = guided
    full = next(s for s in sites if s.site_id == FULL)
    where = {"lat": full.lat, "lon": full.lon, "radius_m": 3000}
    now_ = client.get("/v1/parking/guidance", params={**where, "arrive_in_min": 0})
    assert now_.status_code == 200, now_.text
    body = now_.json()
    assert body["count"] == len(body["sites"]) == len(SITES) and body["arrive_in_min"] == 0
    ranked = body["sites"]
    # arriving now: the reading itself decides; the full site last, the others by distance
    assert ranked[-1]["site_id"] == FULL and ranked[-1]["probability"] < 0.01 and ranked[-1]["free_now"] == 0
    others = ranked[:-1]
    assert all(r["probability"] > 0.95 for r in others)
    assert [r["distance_m"] for r in others] == sorted(r["distance_m"] for r in others)

    later = client.get("/v1/parking/guidance", params={**where, "arrive_in_min": 30, "limit": 5}).json()
    assert later["count"] == 5
    step = service.settings.guidance_probability_step
    keys = [(-round(r["probability"] / step), r["distance_m"]) for r in later["sites"]]
    assert keys == sorted(keys)  # rounded probability, then distance
    for r in later["sites"]:
        site = next(s for s in sites if s.site_id == r["site_id"])
        assert r["reason"] is None and 0 <= r["expected_free"] <= site.capacity
        assert r["observed_at"] is not None
    # what the route serves is the service's ranking from its forecasts
    direct = service.guidance(full.lat, full.lon, None, 30, 3000, 5, datetime.now(UTC))
    assert [r.site_id for r in direct] == [r["site_id"] for r in later["sites"]]
    # the probability comes from the forecast at the arrival time and its past errors
    issued = service.site_forecast(later["sites"][0]["site_id"], datetime.now(UTC))
    p30 = next(p for p in issued.points if p.horizon_min == 30)
    assert p30.error_quantiles is not None and p30.free is not None
    assert abs(later["sites"][0]["expected_free"] - p30.free) <= 2
    none = client.get("/v1/parking/guidance", params={**where, "vehicle_type": "motorcycle"}).json()
    assert none["count"] == 0  # no motorcycle spaces at these car parks

    # bad input: 422 with the JSON error envelope
    base = {"lat": 52.48, "lon": -1.9}
    for params in ({"lat": 95, "lon": -1.9}, {"lat": 52.48}, {**base, "arrive_in_min": 61},
                   {**base, "arrive_in_min": -1}, {**base, "arrive_in_min": "nan"}, {**base, "arrive_in_min": "soon"},
                   {**base, "vehicle_type": "bus"}, {**base, "radius_m": 0}, {**base, "limit": 0}):
        bad = client.get("/v1/parking/guidance", params=params)
        assert bad.status_code == 422, params
        assert bad.json()["error"]["code"] == "invalid_parameter", params
    msg = client.get("/v1/parking/guidance", params={**base, "arrive_in_min": 90}).json()["error"]["message"]
    assert "arrive_in_min" in msg and "60" in msg


def test_sign_texts_on_the_broker(guided: tuple[TestClient, ParkingService, list[Site]], broker_url: str) -> None:
    _, service, sites = guided
    got: list[tuple[str, dict[str, Any], bool]] = []
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append((msg.topic, orjson.loads(msg.payload), bool(msg.retain)))

    def signs(site_id: str) -> list[dict[str, Any]]:
        with lock:
            return [p for t, p, _r in got if t == guidance_topic(site_id)]

    sub = connect(broker_url, f"signs-{time.time_ns()}", on_message=on_message)
    try:
        sub.subscribe(GUIDANCE_TOPIC.filter, 1)
        # the full site's sign (retained before we subscribed, or published on the next round)
        assert wait_for(lambda: any(p["active"] for p in signs(FULL)), 30), got
        sign = [p for p in signs(FULL) if p["active"]][-1]
        full = next(s for s in sites if s.site_id == FULL)
        assert sign["status"] == "full" and sign["lines"][0] == f"{full.name} FULL"
        alts = sign["alternatives"]
        settings = service.settings
        assert 1 <= len(alts) <= settings.guidance_sign_alternatives
        assert all(a["site_id"] in SITES and a["site_id"] != FULL for a in alts)
        assert all(a["probability"] >= settings.guidance_sign_min_probability for a in alts)
        assert all(a["distance_m"] <= settings.guidance_sign_radius_m for a in alts)
        assert len(sign["lines"]) == 1 + len(alts) and sign["text"] == " / ".join(sign["lines"])
        # the best ranked sites for a driver arriving there in the sign's drive time
        ranked = service.guidance(full.lat, full.lon, None, settings.guidance_sign_arrive_min,
                                  settings.guidance_sign_radius_m, 10, datetime.now(UTC), frozenset({FULL}))
        best = [r.site_id for r in ranked if r.probability is not None
                and r.probability >= settings.guidance_sign_min_probability][:len(alts)]
        assert [a["site_id"] for a in alts] == best
        assert not any(p["active"] for s in SITES if s != FULL for p in signs(s))  # the others have space
    finally:
        sub.close()
    # retained: a sign that connects later gets it at once
    late: list[tuple[dict[str, Any], bool]] = []
    again = connect(broker_url, f"late-{time.time_ns()}",
                    on_message=lambda _c, _u, m: late.append((orjson.loads(m.payload), bool(m.retain))))
    try:
        again.subscribe(guidance_topic(FULL), 1)
        assert wait_for(lambda: bool(late), 10)
        assert late[0][1] and late[0][0]["active"]
        # the car park empties: its sign is cleared (still retained, inactive)
        count(service, FULL, datetime.now(UTC), 10)
        assert wait_for(lambda: any(not p["active"] for p, _r in late[1:]), 10), late
        cleared = [p for p, _r in late[1:] if not p["active"]][-1]
        assert cleared["status"] == "spacesAvailable" and cleared["lines"] == [] and cleared["alternatives"] == []
    finally:
        again.close()

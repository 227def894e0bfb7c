"""Platform indicators over messages that went through the real broker and collector."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.app.registry import domain_routes
from its.app.reports import platform
from its.collector import Collector
from its.db import Database
from its.mqtt import connect
from its.service import Context, Service
from its.settings import Settings


def test_stored_and_rejected_per_feed_through_the_collector(settings: Settings, db: Database,
                                                            wmata_dir: Path) -> None:
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, nrows=40)
    collector = Collector(settings, db, domain_routes(), client_id="report-platform")
    collector.start()
    assert settings.mqtt_url
    pub = connect(settings.mqtt_url, "report-platform-pub")
    now = datetime.now(UTC).replace(microsecond=0)
    sent = {"vehicle_positions": 0, "camera_counts": 0}
    try:
        for k, r in enumerate(avl.to_dict("records")):
            payload = {"ts": (now - timedelta(seconds=30 * k)).isoformat(), "lat": float(r["lat"]),
                       "lon": float(r["lon"])}
            pub.publish(f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(payload), qos=1
                        ).wait_for_publish(5)
            sent["vehicle_positions"] += 1
        bad = [("its/v1/vehicles/wmata/1/position", b'{"ts": "soon", "lat": 1, "lon": 2}'),
               ("its/v1/vehicles/wmata/2/position", b"not json"),
               ("its/v1/cameras/cam-9/counts", b'{"interval_start": 0}')]
        for topic, payload in bad:
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        pub.publish("its/v1/cameras/cam-9/counts", orjson.dumps(
            {"interval_start": now.isoformat(), "interval_s": 60, "line_id": "l", "direction": "in",
             "vehicle_class": "car", "count": 3}), qos=1).wait_for_publish(5)
        sent["camera_counts"] += 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = db.fetchall("SELECT (SELECT count(*) FROM vehicle_positions) + (SELECT count(*) FROM"
                                 " traffic_counts) + (SELECT count(*) FROM rejected_messages)")[0][0]
            if stored >= 44:
                break
            time.sleep(0.2)
    finally:
        pub.close()
        collector.stop()
    kpi = platform.section(db, now - timedelta(hours=1), now + timedelta(hours=1), domain_routes())
    msgs = kpi["messages_per_feed"]["rows"].set_index("feed")
    assert msgs.loc["vehicle_positions", "ingested"] == sent["vehicle_positions"] == 40
    assert msgs.loc["vehicle_positions", "rejected"] == 2
    assert msgs.loc["camera_counts", "ingested"] == 1
    assert msgs.loc["camera_counts", "rejected"] == 1
    assert msgs.loc["vehicle_positions", "rejected_share"] == 2 / 42
    assert msgs.loc["parking_counts", "ingested"] == 0


class GateService(Service):
    """A real service whose readiness the test switches, with a route that fails (a 5xx)."""

    name = "gate"

    def __init__(self) -> None:
        self.open = threading.Event()

    def start(self, ctx: Context) -> None:
        self.ctx = ctx

    def ready(self) -> bool:
        return self.open.is_set()

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/v1/gate")

        @r.get("/fail")
        def fail() -> None:
            raise RuntimeError("boom")

        return r


def test_api_availability_from_heartbeats(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITS_REPORTS_HEARTBEAT_INTERVAL_S", "0.2")
    start = datetime.now(UTC) - timedelta(minutes=1)
    requests = errors = 0

    def run(ready_after_s: float, for_s: float) -> None:
        nonlocal requests, errors
        gate = GateService()
        ctx = build_context(settings)
        try:
            with TestClient(create_app(settings, [gate], context=ctx), raise_server_exceptions=False) as client:
                time.sleep(ready_after_s)  # started but not ready yet
                gate.open.set()
                deadline = time.monotonic() + for_s
                while time.monotonic() < deadline:
                    requests += 1
                    assert client.get("/healthz").status_code == 200
                    if requests % 5 == 0:
                        errors += 1
                        requests += 1
                        assert client.get("/v1/gate/fail").status_code == 500
                    time.sleep(0.05)
        finally:
            if ctx.live:
                ctx.live.close()
            ctx.db.close()

    run(ready_after_s=2.5, for_s=2.5)
    time.sleep(2.5)  # no API process at all
    run(ready_after_s=0.0, for_s=2.5)
    now = datetime.now(UTC)
    beats = pd.DataFrame.from_records(db.fetchall("SELECT time, instance, ready, requests, errors_5xx FROM api_heartbeats"),
                                      columns=["time", "instance", "ready", "requests", "errors_5xx"])
    assert beats["instance"].nunique() == 2
    assert beats["ready"].any() and not beats["ready"].all()
    assert (beats["requests"].sum(), beats["errors_5xx"].sum()) == (requests, errors)  # every request, once
    # independent computation: whole 1 s bins from the first heartbeat's to now, up when a
    # ready heartbeat fell in them
    t = pd.to_datetime(beats["time"], utc=True)
    first, last = t.min().floor("s"), pd.Timestamp(now).floor("s")
    bins = pd.date_range(first, last, freq="s", inclusive="left")
    up = set(t[beats["ready"]].dt.floor("s"))
    want = sum(b in up for b in bins) / len(bins)
    kpi = platform.section(db, start, now + timedelta(hours=1), domain_routes(), now=now, availability_bin_s=1.0)
    assert kpi["api_availability"]["value"] == pytest.approx(want)
    assert kpi["api_availability"]["measured_min"] == pytest.approx(len(bins) / 60)
    assert 0.2 < want < 0.9  # the not-ready start and the time without a process count as down
    hourly = kpi["api_availability_by_hour"]["rows"]
    assert hourly["measured_min"].sum() == pytest.approx(len(bins) / 60)
    # at the default minute bins the same rule holds: whole minutes since the first heartbeat's
    # minute, up when a ready heartbeat fell in them (none whole yet: no value, with its reason)
    minute_bins = pd.date_range(t.min().floor("min"), pd.Timestamp(now).floor("min"), freq="min", inclusive="left")
    up_min = set(t[beats["ready"]].dt.floor("min"))
    minutes = platform.section(db, start, now + timedelta(hours=1), domain_routes(), now=now)["api_availability"]
    if len(minute_bins) == 0:
        assert minutes["value"] is None and minutes["reason"]
    else:
        assert minutes["value"] == pytest.approx(sum(b in up_min for b in minute_bins) / len(minute_bins))

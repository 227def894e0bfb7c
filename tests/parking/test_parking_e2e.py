"""End to end: simulator -> Mosquitto -> collector (store) and service (memory) -> HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.collector import Collector
from its.db import Database
from its.devices import DEVICE_STATUS_ROUTE
from its.mqtt import connect
from its.settings import Settings
from parking.config import ParkingSettings
from parking.ingest import ROUTES, count_topic
from parking.service import ParkingService
from parking.simulator import run_simulation
from parking.sites import read_sites
from parking.store import upsert_sites

DEMO = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"


def _open_all(tmp_path: Path) -> Path:
    doc = orjson.loads(DEMO.read_bytes())
    for feature in doc["features"]:
        feature["properties"]["opening_hours"] = "24/7"
    path = tmp_path / "sites.geojson"
    path.write_bytes(orjson.dumps(doc))
    return path


def test_simulator_to_endpoint(settings: Settings, db: Database, tmp_path: Path) -> None:
    sites = read_sites(_open_all(tmp_path))
    upsert_sites(db, sites, datetime.now(UTC))
    collector = Collector(settings, db, [*ROUTES, DEVICE_STATUS_ROUTE], client_id="parking-e2e")
    collector.start()
    ctx = build_context(settings)
    service = ParkingService(ParkingSettings(timezone="UTC", sensor_stale_s=2.0))
    app = create_app(settings, [service], context=ctx)
    assert settings.mqtt_url
    pub = connect(settings.mqtt_url, "parking-e2e-sim")

    def publish(topic: str, payload: bytes, retain: bool) -> None:
        pub.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    try:
        with TestClient(app) as client:
            deadline = time.monotonic() + 10
            while not service.ready() and time.monotonic() < deadline:
                time.sleep(0.05)
            # a simulated minute of the on-street zone and a counter site
            zone = [s for s in sites if s.site_id in ("CNS-ABBOTT", "CNS-CENTRAL")]
            run_simulation(zone, "flat", publish, 1.0, 0.5, seed=3)
            # a change published now shows on the endpoint within 2 s
            sent_at = time.monotonic()
            publish(count_topic("CNS-CENTRAL"), orjson.dumps({"ts": time.time(), "occupied": 123}), False)
            seen = None
            while time.monotonic() - sent_at < 2.0:
                seen = client.get("/v1/parking/sites/CNS-CENTRAL").json()["availability"]["occupied"]
                if seen == 123:
                    break
                time.sleep(0.02)
            assert seen == 123, "availability did not reflect the message within 2 s"
            zone_now = client.get("/v1/parking/sites/CNS-ABBOTT").json()["availability"]
            assert zone_now["unknown"] + (zone_now["free"] or 0) + (zone_now["occupied"] or 0) == 12
            # the sensors fall silent: after the stale time every space is unknown, none free
            time.sleep(2.5)
            service.tick()
            silent = client.get("/v1/parking/sites/CNS-ABBOTT").json()["availability"]
            assert (silent["unknown"], silent["free"], silent["status"]) == (12, None, "unknown")
            tag = client.get("/v1/parking/availability").headers["etag"]
            assert client.get("/v1/parking/availability", headers={"If-None-Match": tag}).status_code == 304
        # the collector stored the messages idempotently
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if db.fetchall("SELECT occupied FROM parking_counts WHERE site_id = 'CNS-CENTRAL' AND occupied = 123"):
                break
            time.sleep(0.05)
        assert db.fetchall("SELECT count(*) FROM parking_counts WHERE occupied = 123") == [(1,)]
        assert db.fetchall("SELECT count(DISTINCT space_id) FROM parking_space_events")[0][0] >= 6
        # a restarted service rebuilds the same state from the store
        fresh = ParkingService(ParkingSettings(timezone="UTC"))
        fresh.ctx = ctx
        fresh.reload_sites()
        fresh.rebuild(datetime.now(UTC))
        rebuilt = fresh.state.current("CNS-CENTRAL")
        assert rebuilt is not None and rebuilt.occupied == 123
    finally:
        pub.close()
        collector.stop()
        if ctx.live:
            ctx.live.close()
        ctx.db.close()

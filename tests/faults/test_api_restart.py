"""The API process restarted: its in-memory state is rebuilt from the store, /readyz false until then."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from its.app.registry import domain_routes
from its.broker import free_port
from its.collector import Collector
from its.db import Database
from its.mqtt import connect
from its.settings import Settings

#: What the README promises: state rebuilt and /readyz true within this many seconds of start.
REBUILD_S = 30.0


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _serve(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ITS_DATABASE_URL": settings.database_url or "", "ITS_MQTT_URL": settings.mqtt_url or "",
           "ITS_DATA_DIR": str(settings.data_dir), "ITS_API_PORT": str(port)}
    return subprocess.Popen([sys.executable, "-m", "its.app.cli", "serve"], env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def _wait_ready(base: str, timeout_s: float) -> tuple[float, list[int]]:
    started = time.monotonic()
    seen: list[int] = []
    while time.monotonic() - started < timeout_s:
        code, _ = _get(base + "/readyz")
        seen.append(code)
        if code == 200:
            return time.monotonic() - started, seen
        time.sleep(0.1)
    raise TimeoutError(f"not ready after {timeout_s} s: {seen[-5:]}")


def _occupancy(base: str) -> dict[str, int]:
    _, body = _get(base + "/v1/parking/availability")
    return {s["site_id"]: s["occupied"] for s in orjson.loads(body)["sites"]}


def test_api_restart_rebuilds_state_from_the_store(city_settings: Settings, db: Database, tmp_path: Path) -> None:
    settings = city_settings
    collector = Collector(settings, db, domain_routes(), client_id="restart-collector")
    collector.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = _serve(settings, port, tmp_path / "api.log")
    try:
        _wait_ready(base, 120)
        pub = connect(settings.mqtt_url or "", "restart-pub")
        sites = list(_occupancy(base))[:5]
        now = time.time()
        for k, site in enumerate(sites):
            pub.publish(f"its/v1/parking/{site}/counts", orjson.dumps({"ts": now - 5, "occupied": 7 + k})).wait_for_publish(5)
        pub.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_occupancy(base).get(s) != 7 + k for k, s in enumerate(sites)):
            time.sleep(0.2)
        before = _occupancy(base)
        assert [before[s] for s in sites] == [7, 8, 9, 10, 11]
        congestion_before = orjson.loads(_get(base + "/v1/traffic/congestion")[1])["features"]
        time.sleep(1.0)  # let the collector commit what the API saw live
        api.send_signal(signal.SIGKILL)
        api.wait()
        api = _serve(settings, port, tmp_path / "api.log")
        took, codes = _wait_ready(base, REBUILD_S + 60)
        assert took < REBUILD_S, took
        assert any(c in (0, 503) for c in codes)  # not ready (or not listening) before the rebuild
        after = _occupancy(base)
        assert [after[s] for s in sites] == [before[s] for s in sites]
        assert len(orjson.loads(_get(base + "/v1/traffic/congestion")[1])["features"]) == len(congestion_before)
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(20)
        collector.stop()


def test_two_api_processes_serve_the_same_answers(city_settings: Settings, db: Database, tmp_path: Path) -> None:
    settings = city_settings
    collector = Collector(settings, db, domain_routes(), client_id="twin-collector")
    collector.start()
    ports = [free_port(), free_port()]
    apis = [_serve(settings, p, tmp_path / f"api{p}.log") for p in ports]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for base in bases:
            _wait_ready(base, 120)
        sites = list(_occupancy(bases[0]))[:4]
        pub = connect(settings.mqtt_url or "", "twin-pub")
        now = time.time()
        for k, site in enumerate(sites):
            pub.publish(f"its/v1/parking/{site}/counts", orjson.dumps({"ts": now - 2, "occupied": 20 + k})).wait_for_publish(5)
        pub.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
                [_occupancy(b).get(s) for s in sites] != [20, 21, 22, 23] for b in bases):
            time.sleep(0.2)
        assert [_occupancy(bases[0])[s] for s in sites] == [_occupancy(bases[1])[s] for s in sites] == [20, 21, 22, 23]
        stops = [orjson.loads(_get(b + "/v1/stops?lat=-16.925&lon=145.775&radius_m=800")[1]) for b in bases]
        assert stops[0]["stops"] == stops[1]["stops"] and stops[0]["stops"]
    finally:
        for api in apis:
            api.send_signal(signal.SIGTERM)
            api.wait(20)
        collector.stop()

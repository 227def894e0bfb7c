"""``its bench api``: read endpoints under load against a bare FastAPI endpoint of similar size.

Both servers run as separate processes (uvicorn, one worker each) and the load comes from a
third. For each endpoint: closed-loop throughput (``rps``) against the bare endpoint's
(``bare_rps``), and p99 latency at a paced 1,000 requests/s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from its.app.bench.load import measure
from its.auth import create_api_key
from its.broker import free_port
from its.db import Database
from its.settings import Settings

__all__ = ["run_api_bench"]

ROOT = Path(__file__).resolve().parents[3]


def _env(settings: Settings, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ITS_DATABASE_URL": settings.database_url or "", "ITS_MQTT_URL": settings.mqtt_url or "",
                "ITS_DATA_DIR": str(settings.data_dir), "ITS_LOG_LEVEL": "WARNING"})
    if port:
        env["ITS_API_PORT"] = str(port)
    return env


def _wait(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready: {last}")


def _get(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return bytes(r.read())


def load_demo_city(settings: Settings, feed: Path, sites: Path = ROOT / "parking" / "data" / "demo_sites.geojson") -> None:
    """Import the Cairns feed, its road network and the demo parking sites through the CLI."""
    env = _env(settings, 0)
    for argv in (["gtfs", "import", str(feed), "--agency", "cairns", "--rebase-calendar"],
                 ["maps", "import", "--gtfs", str(feed), "--name", "demo"],
                 ["parking", "import", str(sites)]):
        done = subprocess.run([sys.executable, "-m", "its.app.cli", *argv], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"its {' '.join(argv[:2])} failed: {done.stderr[-1500:]}")


def run_api_bench(settings: Settings, feed: Path, duration_s: float = 5.0, rate: float = 1000.0) -> list[dict[str, Any]]:
    """Benchmark the read endpoints; ``settings`` must point at a migrated database and a broker."""
    from its.app.demo import demo_timezone, feed_in_timezone
    from telematics.gtfs import read_feed

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    feed = feed_in_timezone(feed, demo_timezone(read_feed(feed)), settings.data_dir)  # buses in service at any hour
    sites = ROOT / "parking" / "data" / "demo_sites.geojson"
    load_demo_city(settings, feed, sites)
    db = Database(settings.database_url or "")
    key = create_api_key(db, "bench", 10_000_000)
    db.close()
    headers = {"X-API-Key": key}
    port, bare_port = free_port(), free_port()
    api = subprocess.Popen([sys.executable, "-m", "its.app.cli", "serve", "--port", str(port)], env=_env(settings, port),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    bare = None
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base + "/readyz", 120)
        stops = orjson.loads(_get(base + "/v1/stops?lat=-16.925&lon=145.775&radius_m=2000", headers))
        stop_items = stops.get("stops", stops) if isinstance(stops, dict) else stops
        stop_id = stop_items[0]["stop_id"]
        for item in stop_items:  # the nearest stop with arrivals in the next hour (a realistic answer)
            answer = orjson.loads(_get(f"{base}/v1/stops/{item['stop_id']}/arrivals?minutes=60", headers))
            if answer.get("arrivals"):
                stop_id = item["stop_id"]
                break
        endpoints = {
            "arrivals": f"/v1/stops/{stop_id}/arrivals?minutes=60",
            "parking_sites_near": "/v1/parking/sites?lat=-16.92&lon=145.77&radius_m=2000",
            "parking_availability": "/v1/parking/availability",
        }
        results = []
        for name, path in endpoints.items():
            size = len(_get(base + path, headers))
            if bare is not None:
                bare.send_signal(signal.SIGTERM)
                bare.wait(10)
            bare = subprocess.Popen([sys.executable, "-m", "its.app.bench.bare", str(bare_port), str(size)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            _wait(f"http://127.0.0.1:{bare_port}/healthz", 30)
            ours = measure("127.0.0.1", port, [path], headers=headers, duration_s=duration_s)
            theirs = measure("127.0.0.1", bare_port, ["/bare"], duration_s=duration_s)
            paced = measure("127.0.0.1", port, [path], headers=headers, duration_s=duration_s, rate=rate)
            results.append({
                "endpoint": name, "path": path, "bytes": size, "rps": ours["rps"], "p99_ms": paced["p99_ms"],
                "p99_ms_at_rps": rate, "achieved_paced_rps": paced["rps"], "bare_rps": theirs["rps"],
                "ratio": round(ours["rps"] / theirs["rps"], 3) if theirs["rps"] else None,
                "errors": ours["errors"] + paced["errors"],
            })
        return results
    finally:
        for proc in (api, bare):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()

"""``its bench soak``: buses at 1 Hz and parking sensors at their cadence, through the broker,
a collector, the estimators and the API, with the API queried throughout.

The collector runs in this process (so its lag is sampled directly), the API in a child
process, the telemetry publisher and the API load in two more. At the end every published
message is looked up by key: ``lost`` and ``duplicates`` are counted, not assumed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from its.app.bench.load import measure
from its.app.registry import domain_routes
from its.auth import create_api_key
from its.broker import MosquittoBroker, free_port
from its.collector import Collector
from its.db import Database
from its.mqtt import connect
from its.settings import Settings

__all__ = ["run_soak"]

SENSOR_PERIOD_S = 60.0  # a space sensor reports once a minute (and on every change)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def _publish(url: str, run: str, buses: int, sensors: int, seconds: float, counts: Any) -> None:
    """Child process: publish positions (1 Hz per bus) and sensor states, paced per second."""
    pub = connect(url, f"soak-pub-{run}", max_inflight=5000)
    rng = np.random.default_rng(0)
    t_start = time.time()
    sent_pos = sent_space = 0
    lat0, lon0 = -16.92, 145.77
    per_tick_sensors = max(1, round(sensors / SENSOR_PERIOD_S))
    tick = 0
    while time.time() - t_start < seconds:
        tick_start = time.time()
        ts = round(tick_start, 3)
        infos = []
        dl = rng.normal(0, 0.01, size=(buses, 2))
        for b in range(buses):
            payload = orjson.dumps({"ts": ts, "lat": lat0 + float(dl[b, 0]), "lon": lon0 + float(dl[b, 1]), "speed_mps": 8.0})
            infos.append(pub.client.publish(f"its/v1/vehicles/{run}/b{b}/position", payload, qos=1))
        sent_pos += buses
        first = (tick * per_tick_sensors) % max(1, sensors)
        for k in range(per_tick_sensors):
            s = (first + k) % sensors
            payload = orjson.dumps({"ts": ts, "occupied": bool((s + tick) % 3 == 0)})
            infos.append(pub.client.publish(f"its/v1/parking/{run}S{s // 100}/spaces/p{s % 100}", payload, qos=1))
        sent_space += per_tick_sensors
        for info in infos:
            info.wait_for_publish(60)
        tick += 1
        time.sleep(max(0.0, 1.0 - (time.time() - tick_start)))
    pub.close()
    counts.put((sent_pos, sent_space))


def run_soak(settings: Settings, *, buses: int = 2000, sensors: int = 10000, minutes: float = 10.0,
             api_rate: float = 100.0) -> dict[str, Any]:
    """Run the soak; ``settings`` must point at a migrated database."""
    tmp = Path(tempfile.mkdtemp(prefix="its-soak-"))
    broker = MosquittoBroker(tmp / "broker", binary=settings.mosquitto_bin)
    broker.start()
    cfg = settings.model_copy(update={"mqtt_url": broker.url, "data_dir": tmp / "data"})
    db = Database(settings.database_url or "")
    run = f"soak{uuid.uuid4().hex[:6]}"
    collector = Collector(cfg, db, domain_routes(), client_id=f"{run}-collector")
    collector.start()
    port = free_port()
    env = {**os.environ, "ITS_DATABASE_URL": settings.database_url or "", "ITS_MQTT_URL": broker.url,
           "ITS_DATA_DIR": str(tmp / "data"), "ITS_API_PORT": str(port), "ITS_LOG_LEVEL": "WARNING"}
    api = subprocess.Popen([sys.executable, "-m", "its.app.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    lags: list[float] = []
    rss: dict[str, list[float]] = {"collector": [], "api": []}
    stop = threading.Event()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        seconds = minutes * 60.0
        ctx = mp.get_context("spawn")
        counts = ctx.Queue()
        publisher = ctx.Process(target=_publish, args=(broker.url, run, buses, sensors, seconds, counts))
        publisher.start()

        def sample() -> None:
            warm = time.monotonic() + min(30.0, seconds / 4)
            while not stop.is_set():
                lags.append(collector.lag_s)
                if time.monotonic() >= warm and not rss["collector"]:
                    rss["collector"].append(_rss_mb(os.getpid()))
                    rss["api"].append(_rss_mb(api.pid))
                time.sleep(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        paths = ["/v1/parking/availability", "/v1/stops?lat=-16.92&lon=145.77&radius_m=1000",
                 f"/v1/vehicles/b{min(5, buses - 1)}", "/healthz"]
        key = create_api_key(db, f"{run}-load", 10_000_000)
        api_stats = measure("127.0.0.1", port, paths, headers={"X-API-Key": key}, connections=4,
                            duration_s=max(5.0, seconds - 5), rate=api_rate)
        publisher.join(seconds + 120)
        sent_pos, sent_space = counts.get(timeout=30)
        total = sent_pos + sent_space
        drain_deadline = time.monotonic() + 120
        while collector.totals.stored + collector.totals.rejected < total and time.monotonic() < drain_deadline:
            time.sleep(0.5)
        time.sleep(1.0)
        rss["collector"].append(_rss_mb(os.getpid()))
        rss["api"].append(_rss_mb(api.pid))
        stop.set()
        stored_pos = db.fetchall("SELECT count(*) FROM vehicle_positions WHERE agency = %s", (run,))[0][0]
        stored_space = db.fetchall("SELECT count(*) FROM parking_space_events WHERE site_id LIKE %s",
                                   (f"{run}S%",))[0][0]
        stored = int(stored_pos) + int(stored_space)
        delivered = collector.totals.stored
    finally:
        stop.set()
        collector.stop()
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(20)
        except subprocess.TimeoutExpired:
            api.kill()
        broker.stop()
        db.close()
    lag = np.asarray(lags) if lags else np.zeros(1)
    return {
        "minutes": minutes, "buses": buses, "sensors": sensors,
        "messages": total, "stored": stored, "lost": total - stored,
        "duplicates": max(0, delivered - stored) if delivered >= stored else 0,
        "rejected": collector.totals.rejected,
        "ingest_lag_p99_s": round(float(np.percentile(lag, 99)), 3),
        "api_p99_ms": api_stats["p99_ms"], "api_rps": api_stats["rps"], "api_errors": api_stats["errors"],
        "rss_mb": rss,
    }

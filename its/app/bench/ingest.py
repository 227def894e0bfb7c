"""``its bench ingest``: how fast a collector drains a broker backlog, against bare paho.

Both consumers open persistent sessions, go away, N QoS 1 position messages are published,
then each drains its backlog in turn: the bare paho counter until it has counted N messages,
the collector until its last row is committed. Times run from connect to the last message.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from its.app.registry import domain_routes
from its.broker import MosquittoBroker
from its.collector import Collector
from its.db import Database
from its.mqtt import connect, drop_session
from its.settings import Settings

__all__ = ["run_ingest_bench"]

TOPIC = "its/v1/vehicles/{agency}/{vehicle}/position"


def _publish(url: str, agency: str, n: int, t0: float) -> None:
    pub = connect(url, f"bench-pub-{uuid.uuid4().hex[:6]}", max_inflight=2000)
    infos = []
    for i in range(n):
        payload = orjson.dumps({"ts": t0 + i // 200, "lat": -16.92 + (i % 200) * 1e-4, "lon": 145.77, "speed_mps": 8.5})
        infos.append(pub.client.publish(TOPIC.format(agency=agency, vehicle=f"v{i % 200}"), payload, qos=1))
        if len(infos) >= 5000:
            for info in infos:
                info.wait_for_publish(30)
            infos.clear()
    for info in infos:
        info.wait_for_publish(30)
    pub.close()


def _bare_drain(url: str, client_id: str, topic: str, n: int, timeout_s: float) -> tuple[float, int]:
    count = 0
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    started = time.perf_counter()
    conn = connect(url, client_id, persistent=True, receive_maximum=65535, on_message=on_message)
    conn.subscribe(topic, 1)
    done.wait(timeout_s)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, count


def run_ingest_bench(settings: Settings, messages: int = 100_000, broker_url: str | None = None,
                     timeout_s: float = 600.0) -> dict[str, Any]:
    """Run the benchmark; ``settings`` must carry a database URL (migrated)."""
    assert settings.database_url
    broker = None
    tmp = Path(tempfile.mkdtemp(prefix="its-bench-"))
    if broker_url is None:
        broker = MosquittoBroker(tmp / "mosquitto", binary=settings.mosquitto_bin)
        broker.start()
        broker_url = broker.url
    run = uuid.uuid4().hex[:8]
    agency = f"bench{run}"
    topic = TOPIC.format(agency=agency, vehicle="+")
    cfg = settings.model_copy(update={"mqtt_url": broker_url, "data_dir": tmp / "data"})
    db = Database(settings.database_url)
    try:
        # 1. open both persistent sessions, then go away
        bare_id = f"bench-bare-{run}"
        _bare_drain(broker_url, bare_id, topic, 0, 0.0)
        collector = Collector(cfg, db, domain_routes(), client_id=f"bench-collector-{run}")
        collector.start()
        time.sleep(0.3)
        collector.stop(drain_s=0.5)
        # 2. publish the backlog while both are away
        t0 = time.time() - 3600
        _publish(broker_url, agency, messages, t0)
        # 3. bare paho drains its backlog
        bare_s, bare_count = _bare_drain(broker_url, bare_id, topic, messages, timeout_s)
        # 4. the collector drains its backlog into the database
        collector = Collector(cfg, db, domain_routes(), client_id=f"bench-collector-{run}")
        started = time.perf_counter()
        collector.start()
        deadline = started + timeout_s
        while collector.totals.stored + collector.totals.rejected < messages and time.perf_counter() < deadline:
            time.sleep(0.005)
        collector_s = time.perf_counter() - started
        time.sleep(0.5)
        collector.stop(drain_s=2.0)
        stored = db.fetchall("SELECT count(*) FROM vehicle_positions WHERE agency = %s", (agency,))[0][0]
        delivered = collector.totals.stored
        db.execute("DELETE FROM vehicle_positions WHERE agency = %s", (agency,))
        for client_id in (bare_id, f"bench-collector-{run}"):
            drop_session(broker_url, client_id)
    finally:
        db.close()
        if broker is not None:
            broker.stop()
    collector_rate = messages / collector_s if collector_s else 0.0
    bare_rate = bare_count / bare_s if bare_s else 0.0
    return {
        "messages": messages,
        "stored": int(stored),
        "lost": int(messages - stored),
        "duplicates": int(max(0, delivered - stored)),
        "collector_msgs_per_s": round(collector_rate, 1),
        "bare_client_msgs_per_s": round(bare_rate, 1),
        "ratio": round(collector_rate / bare_rate, 3) if bare_rate else None,
        "bare_received": bare_count,
        "cpu_count": os.cpu_count(),
        "collector_rejected": collector.totals.rejected,
    }

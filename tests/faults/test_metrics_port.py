"""A collector process exposes its own /metrics (ITS_METRICS_PORT): its spool backlog is
visible while the database is away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from its.broker import MosquittoBroker, free_port
from its.db import Database, migrate
from its.mqtt import MqttConnection

from .conftest import publish_statuses
from .test_database_outage import _start_postgres, _stop_postgres, own_postgres  # noqa: F401 - fixture


def _gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_collector_process_exposes_its_spool_backlog(tmp_path: Path, own_postgres: tuple[str, object],  # noqa: F811
                                                     own_broker: MosquittoBroker, publisher: MqttConnection) -> None:
    url, server = own_postgres
    db = Database(url)
    migrate(db)
    db.close()
    port = free_port()
    env = {**os.environ, "ITS_DATABASE_URL": url, "ITS_MQTT_URL": own_broker.url, "ITS_DATA_DIR": str(tmp_path),
           "ITS_METRICS_PORT": str(port)}
    log = open(tmp_path / "collect.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "its.app.cli", "collect", "--client-id", "metrics-collector"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(metrics_url, timeout=2).text
                if "its_collector_spool_messages" in text:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert _gauge(text, "its_collector_spool_messages") == 0
        time.sleep(2)  # subscribed
        _stop_postgres(server)
        publish_statuses(publisher, 0, 500)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _gauge(httpx.get(metrics_url, timeout=2).text,
                                                     "its_collector_spool_messages") == 0:
            time.sleep(0.5)
        assert _gauge(httpx.get(metrics_url, timeout=2).text, "its_collector_spool_messages") > 0
        _start_postgres(server)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

"""The plug-in contract: a domain that exists only in the test tree (e-scooter positions)
becomes part of the platform by registering one descriptor (``ITS_PLUGINS``), with no edit
under ``its/``: ingested through the real broker and collector, served by the API, listed in
the OpenAPI document, in ``docs/topics.md`` and in ``its report``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from its.db import Database
from tests.its.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "tests.plugins.escooter.domain"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def plugin_env(db_url: str, broker_url: str, tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "ITS_DATABASE_URL": db_url, "ITS_MQTT_URL": broker_url, "ITS_DATA_DIR": str(tmp_path),
           "ITS_PLUGINS": PLUGIN, "PYTHONPATH": str(REPO), "ITS_LOG_LEVEL": "WARNING"}
    return env


def _its(*args: str) -> list[str]:
    return [sys.executable, "-m", "its.app.cli", *args]


@pytest.fixture
def platform(plugin_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A collector and an API process with the plug-in registered; yields the API's URL."""
    port = _free_port()
    logs = [open(tmp_path / f"{n}.log", "wb") for n in ("collect", "serve")]  # noqa: SIM115
    procs = [subprocess.Popen(_its("collect"), env=plugin_env, stdout=logs[0], stderr=subprocess.STDOUT),
             subprocess.Popen(_its("serve", "--port", str(port)), env=plugin_env, stdout=logs[1],
                              stderr=subprocess.STDOUT)]
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_for(ready, 180, 0.5), (tmp_path / "serve.log").read_text()[-3000:]
        yield url
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()


def test_a_test_only_domain_is_ingested_served_documented_and_reported(
        platform: str, db_url: str, broker_url: str, plugin_env: dict[str, str]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    messages = [("s1", now - timedelta(seconds=20), 60.17, 24.94), ("s1", now - timedelta(seconds=10), 60.18, 24.95),
                ("s2", now - timedelta(seconds=5), 60.16, 24.93)]
    host, port = broker_url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="scooter-operator")
    client.connect(host, int(port))
    client.loop_start()
    infos = [client.publish(f"its/v1/scooters/{sid}/position",
                            orjson.dumps({"ts": t.isoformat(), "lat": lat, "lon": lon, "battery_pct": 80}), qos=1)
             for sid, t, lat, lon in messages]
    infos.append(client.publish("its/v1/scooters/s3/position", orjson.dumps({"ts": now.isoformat(), "lat": 200,
                                                                              "lon": 0}), qos=1))
    for info in infos:
        info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()

    db = Database(db_url)
    try:
        assert wait_for(lambda: db.fetchall("SELECT count(*) FROM scooter_positions")[0][0] == 3, 60)
        assert wait_for(lambda: db.fetchall("SELECT count(*) FROM rejected_messages WHERE topic LIKE "
                                            "'its/v1/scooters/%%'")[0][0] == 1, 60)
        (reason,) = db.fetchall("SELECT reason FROM rejected_messages WHERE topic = 'its/v1/scooters/s3/position'")[0]
        assert "lat" in reason
    finally:
        db.close()

    # served live by the API, from the plug-in's own service and router
    assert wait_for(lambda: len(httpx.get(f"{platform}/v1/scooters", timeout=5).json()) == 2, 30)
    latest = {s["scooter_id"]: s for s in httpx.get(f"{platform}/v1/scooters", timeout=5).json()}
    assert latest["s1"]["lat"] == pytest.approx(60.18) and latest["s2"]["lon"] == pytest.approx(24.93)
    spec = httpx.get(f"{platform}/openapi.json", timeout=10).json()
    assert "/v1/scooters" in spec["paths"] and "Scooter" in spec["components"]["schemas"]

    # in the generated topic contract
    topics = subprocess.run([sys.executable, "-m", "its.app.topics_doc"], env=plugin_env, capture_output=True,
                            text=True, check=True).stdout
    assert "### `its/v1/scooters/+/position`" in topics and "tests.plugins.escooter.domain.parse_scooter" in topics

    # in the report: its own section, and the platform's per-feed message counts
    done = subprocess.run(_its("report", "--from", (now - timedelta(hours=1)).isoformat(),
                               "--to", (now + timedelta(minutes=1)).isoformat(), "--format", "json", "--json"),
                          env=plugin_env, capture_output=True, text=True, check=True, cwd=plugin_env["ITS_DATA_DIR"])
    report = orjson.loads(done.stdout.strip().splitlines()[-1])
    rows = {r["scooter_id"]: r["positions"] for r in report["sections"]["scooters"]["positions_per_scooter"]["rows"]}
    assert rows == {"s1": 2, "s2": 1}
    feeds = {r["feed"]: r for r in report["sections"]["platform"]["messages_per_feed"]["rows"]}
    assert feeds["scooter_positions"]["ingested"] == 3 and feeds["scooter_positions"]["rejected"] == 1


def test_nothing_under_its_names_the_plugin() -> None:
    hits = [p for p in (REPO / "its").rglob("*") if p.is_file() and p.suffix in {".py", ".sql", ".js", ".html"}
            and "scooter" in p.read_text(encoding="utf-8", errors="ignore").lower()]
    assert hits == []

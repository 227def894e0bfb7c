"""Fault scenarios: every test starts (and kills) its own servers and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from paho.mqtt.client import MQTTMessageInfo

from its.broker import MosquittoBroker, mosquitto_binary
from its.db import Database
from its.mqtt import MqttConnection, connect

pytestmark = pytest.mark.skipif(mosquitto_binary(None) is None, reason="no mosquitto binary")

STATUS = "its/v1/devices/sensor/{device}/status"
#: Midnight UTC three days ago: within the collector's plausibility window (7 days) with room
#: for the burst test's 1 Hz times of 1.4 days.
T0 = (int(time.time()) // 86400 - 3) * 86400


def status_payload(i: int) -> bytes:
    return orjson.dumps({"online": i % 2 == 0, "ts": T0 + i})


def publish_statuses(pub: MqttConnection, start: int, n: int, devices: int = 100, pace_s: float = 0.0) -> None:
    """Publish readings ``start..start+n`` (key: device d{i % devices}, time T0+i) at QoS 1."""
    infos = []
    for i in range(start, start + n):
        infos.append(pub.client.publish(STATUS.format(device=f"d{i % devices}"), status_payload(i), qos=1))
        if pace_s:
            time.sleep(pace_s)
        if len(infos) >= 1000:
            _wait_published(infos)
            infos.clear()
    _wait_published(infos)


def _wait_published(infos: list[MQTTMessageInfo]) -> None:
    """Wait for each QoS 1 message's PUBACK; a message still unacknowledged after 60 s fails
    the test here (paho's ``wait_for_publish`` returns silently on timeout)."""
    for info in infos:
        info.wait_for_publish(60)
        assert info.is_published(), f"message {info.mid} not acknowledged by the broker within 60 s"


def stored_keys(db: Database) -> list[tuple[str, int]]:
    rows = db.fetchall("SELECT device_id, extract(epoch FROM time)::bigint FROM device_status WHERE kind = 'sensor'")
    return [(r[0], int(r[1])) for r in rows]


def expected_keys(n: int, devices: int = 100) -> set[tuple[str, int]]:
    return {(f"d{i % devices}", T0 + i) for i in range(n)}


def assert_exactly_once(db: Database, n: int, devices: int = 100) -> None:
    keys = stored_keys(db)
    assert len(keys) == len(set(keys)) == n, (len(keys), n)
    assert set(keys) == expected_keys(n, devices)


def count_sensor_rows(db: Database) -> int:
    return int(db.fetchall("SELECT count(*) FROM device_status WHERE kind = 'sensor'")[0][0])


def wait_subscribed(db: Database, pub: MqttConnection, timeout_s: float = 60.0) -> None:
    """Publish probe messages (kind 'probe') until one of this call's is stored: the collector is
    listening now (probes of an earlier call do not count)."""
    deadline = time.monotonic() + timeout_s
    tag = f"p{time.monotonic_ns()}-"
    i = 0
    while time.monotonic() < deadline:
        pub.client.publish(f"its/v1/devices/probe/{tag}{i}/status", orjson.dumps({"online": True, "ts": T0 + i}), qos=1)
        i += 1
        time.sleep(0.25)
        try:
            if db.fetchall("SELECT count(*) FROM device_status WHERE kind = 'probe' AND device_id LIKE %s",
                           (tag + "%",))[0][0]:
                return
        except Exception:
            pass
    raise TimeoutError("collector never subscribed")


def wait_drained(db: Database, n: int, stall_s: float, timeout_s: float = 600.0) -> int:
    """Wait until ``n`` sensor rows are stored while the count still grows (at least once every
    ``stall_s``): a slow machine drains a backlog later, a loss stops the count. Returns the count."""
    deadline = time.monotonic() + timeout_s
    count, grew = -1, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - grew < stall_s:
        try:
            now = count_sensor_rows(db)
        except Exception:
            now = count
        if now >= n:
            return now
        if now > count:
            count, grew = now, time.monotonic()
        time.sleep(0.2)
    return count


def wait_count(db: Database, n: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if count_sensor_rows(db) >= n:
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def publisher(own_broker: MosquittoBroker) -> Iterator[MqttConnection]:
    pub = connect(own_broker.url, "fault-publisher", persistent=True)
    yield pub
    pub.close()


class CollectorProcess:
    """``its collect`` as a real child process (``subscription``: exclusive or shared)."""

    def __init__(self, tmp: Path, db_url: str, mqtt_url: str, client_id: str, subscription: str = "shared") -> None:
        self.env = {**os.environ, "ITS_DATABASE_URL": db_url, "ITS_MQTT_URL": mqtt_url,
                    "ITS_DATA_DIR": str(tmp / client_id), "ITS_LOG_LEVEL": "WARNING",
                    "ITS_COLLECTOR_SUBSCRIPTION": subscription}
        self.client_id = client_id
        self.log = tmp / f"{client_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "its.app.cli", "collect", "--client-id", self.client_id],
                                     env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

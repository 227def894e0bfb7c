"""The embedded broker's authentication and ACL, on a real Mosquitto with the generated config.

Each refusal has a control beside it (the same client doing the allowed thing), so a test
that saw nothing because nothing arrived at all cannot pass.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from its.broker import (
    MosquittoBroker,
    mosquitto_binary,
    reload_running_broker,
    url_with_credentials,
)
from its.db import Database
from its.device_registry import add_device, platform_passwords, write_broker_auth
from its.devices import device_status_topic
from its.mqtt import MqttConnection, connect

from .helpers import wait_for

pytestmark = pytest.mark.skipif(mosquitto_binary(None) is None, reason="no mosquitto binary")

ONLINE = b'{"online":true}'
OFFLINE = b'{"online":false}'


@pytest.fixture(scope="module")
def registry(module_db: Database) -> Database:
    """One migrated database for the module (the registry only)."""
    return module_db


@pytest.fixture(scope="module")
def secured(registry: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MosquittoBroker, dict[str, str]]]:
    """An authenticated broker as the runtime starts it, with two registered devices."""
    tmp = tmp_path_factory.mktemp("secured")
    passwords = {"bus-17": add_device(registry, "bus-17", "vehicle"),
                 "lot7.s12": add_device(registry, "lot7.s12", "parking-sensor")}
    write_broker_auth(registry, tmp / "auth")
    broker = MosquittoBroker(tmp / "mq", auth_dir=tmp / "auth")
    broker.start()
    yield broker, passwords
    broker.stop()


def _device(broker: MosquittoBroker, user: str, password: str) -> str:
    assert broker.device_url is not None
    return url_with_credentials(broker.device_url, user, password)


def _listen(url: str, topic_filter: str = "its/v1/#") -> tuple[MqttConnection, list[tuple[str, bytes]]]:
    seen: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def on_message(_c: object, _u: object, msg: object) -> None:
        with lock:
            seen.append((msg.topic, bytes(msg.payload)))  # type: ignore[attr-defined]

    conn = connect(url, f"listener-{time.time_ns()}", on_message=on_message)
    conn.subscribe(topic_filter, 1)
    time.sleep(0.3)
    return conn, seen


def _vanish(conn: MqttConnection) -> None:
    """Drop the TCP connection without DISCONNECT, so the broker publishes the Last Will."""
    conn.client.loop_stop()
    sock = conn.client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_anonymous_and_wrong_credentials_are_refused(secured: tuple[MosquittoBroker, dict[str, str]]) -> None:
    broker, pw = secured
    assert broker.device_url is not None
    for url in (broker.url, broker.device_url):
        assert _refused(url, "anonymous")
    # control: the same device with its password connects
    connect(_device(broker, "bus-17", pw["bus-17"]), "").close()
    assert _refused(_device(broker, "bus-17", "not-the-password"))
    # device credentials are unknown on the platform listener, platform ones on the device listener
    assert _refused(url_with_credentials(broker.url, "bus-17", pw["bus-17"]))
    assert broker.auth_dir is not None
    collector_pw = platform_passwords(broker.auth_dir)["collector"]
    assert _refused(url_with_credentials(broker.device_url, "collector", collector_pw))
    assert not _refused(url_with_credentials(broker.url, "collector", collector_pw))  # control


def test_devices_write_only_their_own_topics(secured: tuple[MosquittoBroker, dict[str, str]]) -> None:
    broker, pw = secured
    listener, seen = _listen(broker.account_url("collector"))
    try:
        bus = connect(_device(broker, "bus-17", pw["bus-17"]), "")
        for topic in ("its/v1/vehicles/cairns/bus-17/position",      # its own: allowed
                      "its/v1/vehicles/cairns/bus-99/position",      # another vehicle's id
                      "its/v1/state/parking/lot7",                   # derived state
                      "its/v1/cameras/cam-1/counts",                 # a camera (would list it)
                      device_status_topic("parking-sensor", "lot7.s12")):  # another device's status
            bus.publish(topic, b'{"ts":1,"lat":1,"lon":1}', retain=topic.startswith("its/v1/state")).wait_for_publish(5)
        # a Last Will on another device's status topic is never published; on its own it is
        thief = connect(_device(broker, "lot7.s12", pw["lot7.s12"]), "",
                        will=(device_status_topic("vehicle", "bus-17"), OFFLINE, True))
        _vanish(thief)
        honest = connect(_device(broker, "lot7.s12", pw["lot7.s12"]), "",
                         will=(device_status_topic("parking-sensor", "lot7.s12"), OFFLINE, True))
        _vanish(honest)
        # the API's account may write derived state; a publisher account may not
        platform = connect(broker.account_url("platform"), "")
        platform.publish("its/v1/state/parking/lot7", b'{"free":1}').wait_for_publish(5)
        fleet = connect(broker.account_url("publisher-telematics"), "")
        fleet.publish("its/v1/vehicles/cairns/sim-4/position", b"{}").wait_for_publish(5)
        fleet.publish("its/v1/state/parking/lot7", b'{"free":0}').wait_for_publish(5)
        fleet.publish("its/v1/parking/lot7/counts", b"{}").wait_for_publish(5)
        expected = {("its/v1/vehicles/cairns/bus-17/position", b'{"ts":1,"lat":1,"lon":1}'),
                    (device_status_topic("parking-sensor", "lot7.s12"), OFFLINE),
                    ("its/v1/state/parking/lot7", b'{"free":1}'),
                    ("its/v1/vehicles/cairns/sim-4/position", b"{}")}
        assert wait_for(lambda: expected <= set(seen), 10), seen
        time.sleep(1.0)  # anything refused would have arrived by now
        assert set(seen) == expected
        for c in (bus, platform, fleet):
            c.close()
        # nothing a device wrote is retained under state
        _, retained = _listen(broker.account_url("collector"), "its/v1/state/#")
        assert retained == []
    finally:
        listener.close()


def test_the_collector_session_is_reserved_to_its_account(secured: tuple[MosquittoBroker, dict[str, str]]) -> None:
    broker, pw = secured
    assert broker.auth_dir is not None
    collector_url = broker.account_url("collector")
    first = connect(collector_url, "its-collector", persistent=True)
    first.subscribe("its/v1/vehicles/#", 1)
    time.sleep(0.3)
    first.close()
    others = platform_passwords(broker.auth_dir)
    for password in ("wrong", pw["bus-17"], others["platform"], others["publisher-telematics"]):
        assert _refused(url_with_credentials(broker.url, "collector", password), "its-collector")
    bus = connect(_device(broker, "bus-17", pw["bus-17"]), "")
    for i in range(5):
        bus.publish("its/v1/vehicles/cairns/bus-17/position", b'{"i":%d}' % i).wait_for_publish(5)
    bus.close()
    # a device asking for the collector's client id gets its own name instead: it neither wipes
    # (clean start) nor resumes (persistent) the collector's session
    for persistent in (False, True):
        intruder = connect(_device(broker, "bus-17", pw["bus-17"]), "its-collector", persistent=persistent)
        assert not intruder.session_present
        time.sleep(0.3)
        intruder.close()
    got: list[bytes] = []
    back = connect(collector_url, "its-collector", persistent=True,
                   on_message=lambda _c, _u, m: got.append(bytes(m.payload)))
    try:
        assert back.session_present
        assert wait_for(lambda: len(got) >= 5, 10), got
        assert got == [b'{"i":%d}' % i for i in range(5)]
    finally:
        back.close()


def test_a_new_device_works_after_reload(secured: tuple[MosquittoBroker, dict[str, str]], registry: Database,
                                         tmp_path: Path) -> None:
    broker, _ = secured
    assert broker.auth_dir is not None
    password = add_device(registry, "cam-9", "camera")
    assert _refused(_device(broker, "cam-9", password))  # not yet in the broker's files
    write_broker_auth(registry, broker.auth_dir)
    assert reload_running_broker(broker.directory)
    assert wait_for(lambda: _connects(_device(broker, "cam-9", password)), 5)
    assert not reload_running_broker(tmp_path / "elsewhere")


def _refused(url: str, client_id: str = "") -> bool:
    """Whether the broker refuses to connect (MQTT 3.1.1 only: one attempt, not two)."""
    try:
        connect(url, client_id, timeout_s=3, prefer_v5=False).close()
    except ConnectionError:
        return True
    return False


def _connects(url: str) -> bool:
    try:
        connect(url, "", timeout_s=2).close()
    except ConnectionError:
        return False
    return True

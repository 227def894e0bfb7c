"""MQTT access control with a real Mosquitto: devices publish only under their own id."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from its.broker import MosquittoBroker, mosquitto_binary
from its.db import Database
from its.device_registry import (
    add_device,
    mosquitto_password_hash,
    revoke_device,
    write_broker_auth,
)
from its.mqtt import connect

pytestmark = pytest.mark.skipif(mosquitto_binary(None) is None, reason="no mosquitto binary")
PLATFORM = {"collector": "collector-pw-123", "platform": "platform-pw-123"}


def _url(broker: MosquittoBroker, user: str, password: str) -> str:
    return broker.url.replace("://", f"://{user}:{password}@")


def _listen(url: str) -> tuple[list[str], threading.Event]:
    seen: list[str] = []
    ready = threading.Event()

    def on_message(_c: object, _u: object, msg: object) -> None:
        seen.append(msg.topic)  # type: ignore[attr-defined]

    conn = connect(url, f"listener-{time.time_ns()}", on_message=on_message)
    conn.subscribe("its/v1/#", 1)
    ready.set()
    return seen, ready


def test_password_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd not installed")
    f = tmp_path / "p"
    subprocess.run([tool, "-b", "-c", str(f), "u", "s3cret!"], check=True)
    ref = f.read_text().strip().split(":", 1)[1]
    salt = __import__("base64").b64decode(ref.split("$")[3])
    assert mosquitto_password_hash("s3cret!", salt) == ref


def test_devices_publish_only_under_their_own_id(db: Database, tmp_path: Path) -> None:
    pw_bus = add_device(db, "bus-17", "vehicle")
    pw_cam = add_device(db, "cam-1", "camera")
    pw_sensor = add_device(db, "lot7.s12", "parking-sensor")
    passwd, acl = write_broker_auth(db, tmp_path / "auth", PLATFORM)
    broker = MosquittoBroker(tmp_path / "mq", password_file=passwd, acl_file=acl)
    broker.start()
    try:
        seen, _ = _listen(_url(broker, "collector", PLATFORM["collector"]))
        bus = connect(_url(broker, "bus-17", pw_bus), "bus-17")
        bus.publish("its/v1/vehicles/cairns/bus-17/position", b'{"ts":1,"lat":0,"lon":0}').wait_for_publish(5)
        bus.publish("its/v1/vehicles/cairns/bus-99/position", b'{"ts":1,"lat":0,"lon":0}').wait_for_publish(5)
        bus.publish("its/v1/state/fake", b"{}").wait_for_publish(5)
        cam = connect(_url(broker, "cam-1", pw_cam), "cam-1")
        cam.publish("its/v1/cameras/cam-1/counts", b"{}").wait_for_publish(5)
        cam.publish("its/v1/cameras/cam-2/counts", b"{}").wait_for_publish(5)
        sensor = connect(_url(broker, "lot7.s12", pw_sensor), "lot7.s12")
        sensor.publish("its/v1/parking/lot7/spaces/s12", b"{}").wait_for_publish(5)
        sensor.publish("its/v1/parking/lot7/spaces/s13", b"{}").wait_for_publish(5)
        sensor.publish("its/v1/devices/parking-sensor/lot7.s12/status", b"{}").wait_for_publish(5)
        sensor.close()
        time.sleep(1.0)
        assert sorted(seen) == ["its/v1/cameras/cam-1/counts", "its/v1/devices/parking-sensor/lot7.s12/status",
                                "its/v1/parking/lot7/spaces/s12", "its/v1/vehicles/cairns/bus-17/position"]
        bus.close()
        cam.close()
        # anonymous clients and wrong passwords are refused
        with pytest.raises(ConnectionError):
            connect(broker.url, "anon", timeout_s=3)
        with pytest.raises(ConnectionError):
            connect(_url(broker, "bus-17", "wrong"), "bus-17b", timeout_s=3)
        # a revoked device is refused after the broker reloads
        revoke_device(db, "bus-17")
        write_broker_auth(db, tmp_path / "auth", PLATFORM)
        broker.reload()
        time.sleep(0.5)
        with pytest.raises(ConnectionError):
            connect(_url(broker, "bus-17", pw_bus), "bus-17c", timeout_s=3)
        assert connect(_url(broker, "cam-1", pw_cam), "cam-1b").connected.is_set()
    finally:
        broker.stop()


def test_tls_listener_with_generated_certificate(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    ca_key, ca, key, csr, cert = (tmp_path / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    run = lambda *a: subprocess.run([openssl, *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "1", "-subj", "/CN=its-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(ext))
    broker = MosquittoBroker(tmp_path / "mq", tls=(ca, cert, key))
    broker.start()
    try:
        assert broker.url.startswith("mqtts://")
        seen: list[bytes] = []
        sub = connect(broker.url, "tls-sub", ca_file=ca, on_message=lambda _c, _u, m: seen.append(m.payload))
        sub.subscribe("its/v1/devices/#", 1)
        time.sleep(0.3)
        pub = connect(broker.url, "tls-pub", ca_file=ca)
        pub.publish("its/v1/devices/sensor/x/status", b'{"online":true}').wait_for_publish(5)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [b'{"online":true}']
        with pytest.raises(ConnectionError):  # an unknown CA is refused
            connect(broker.url, "tls-bad", timeout_s=3)
    finally:
        broker.stop()

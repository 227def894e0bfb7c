"""`its deploy init`: secrets kept across runs, the broker's accounts and what each may publish,
enforced by a real Mosquitto; registry devices joined; a device named like a role refused."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from its.app.deploy import ROLES, broker_acl, env_values, read_env, role_topics, write_deployment
from its.app.registry import device_kinds
from its.db import Database
from its.device_registry import add_device
from tests.deploy.compose_local import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project() -> Iterator[Path]:
    # not under pytest's 0700 tmp root: the broker runs as the passwd file's owner
    path = Path(tempfile.mkdtemp(prefix="its-deploy-"))
    path.chmod(0o755)
    shutil.copy(REPO / "docker-compose.yml", path)
    shutil.copytree(REPO / "deploy", path / "deploy")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_env_secrets_are_random_and_kept_on_a_rerun(project: Path) -> None:
    first = write_deployment(project)
    env = read_env(first.env)
    secrets = [env[r.env] for r in ROLES] + [env["ITS_DB_PASSWORD"], env["ITS_SESSION_SECRET"]]
    assert len(set(secrets)) == len(secrets) and min(len(s) for s in secrets) >= 32
    assert oct(first.env.stat().st_mode & 0o777) == "0o600"
    assert oct(first.passwd.stat().st_mode & 0o777) == "0o600"
    # an operator's edit survives, and so does every secret
    (project / "deploy" / "cameras.yaml").write_text("interval_s: 60\ncameras: []\n")
    first.env.write_text(first.env.read_text() + "ITS_API_REPLICAS=3\n")
    second = write_deployment(project)
    again = read_env(second.env)
    assert {k: again[k] for k in env} == env and again["ITS_API_REPLICAS"] == "3"
    assert (project / "deploy" / "cameras.yaml").read_text() == "interval_s: 60\ncameras: []\n"
    users = [line.split(":", 1)[0] for line in second.passwd.read_text().splitlines()]
    assert users == [r.user for r in ROLES]


def test_env_values_fill_only_what_is_missing() -> None:
    values = env_values({"ITS_DB_PASSWORD": "kept", "ITS_MQTT_SIMULATOR_PASSWORD": ""}, 1000, 1000)
    assert values["ITS_DB_PASSWORD"] == "kept"
    assert values["ITS_MQTT_SIMULATOR_PASSWORD"]  # empty counts as missing
    assert values["ITS_BROKER_UID"] == "1000"


def test_the_example_cameras_file_is_valid(project: Path) -> None:
    from video.config import load_cameras

    written = write_deployment(project)
    cameras = load_cameras(written.cameras)
    assert [c.id for c in cameras.cameras] == ["example-1"]
    assert cameras.cameras[0].source == "/srv/its/video/haar_video2.avi"  # ITS_VIDEO_DIR in the container


def test_role_topics_come_from_the_device_kinds() -> None:
    kinds = device_kinds()
    camera = next(r for r in ROLES if r.user == "camera-worker")
    lines = role_topics(camera, kinds)
    assert "topic write its/v1/devices/camera/+/status" in lines
    assert all("{" not in line for line in lines)
    assert len(lines) == len(kinds["camera"]) + 1
    with pytest.raises(ValueError, match="unknown device kind"):
        role_topics(type(camera)("x", "X", "x", writes=("hovercraft",)), kinds)


def test_a_device_named_like_a_role_is_refused(db_url: str, project: Path) -> None:
    db = Database(db_url)
    try:
        add_device(db, "simulator", "vehicle")
        with pytest.raises(ValueError, match="platform account names"):
            write_deployment(project, db)
    finally:
        db.close()
    with pytest.raises(ValueError):
        broker_acl([("healthcheck", "camera")], device_kinds())


def _broker(project: Path) -> Iterator[int]:
    env = read_env(project / ".env")
    conf_dir = project / "deploy" / "mosquitto"
    port = free_port()
    conf = project / "test-mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {conf_dir / 'passwd'}\n"
                    f"acl_file {conf_dir / 'acl'}\n")
    conf.chmod(0o644)
    argv = ["mosquitto", "-c", str(conf)]
    if os.getuid() == 0:  # as compose's `user:` (the files' owner), never root
        argv = ["setpriv", f"--reuid={env['ITS_BROKER_UID']}", f"--regid={env['ITS_BROKER_GID']}", "--clear-groups", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError(f"mosquitto did not start: {proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else ''}")
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def _publish(port: int, user: str, password: str, topic: str) -> int:
    """Reason code of the PUBACK (MQTT v5) for one QoS 1 publish as ``user``."""
    acks: dict[int, int] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.on_publish = lambda c, u, mid, rc, props: acks.__setitem__(mid, rc.value)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(topic, b"{}", qos=1)
        deadline = time.monotonic() + 5
        while info.mid not in acks and time.monotonic() < deadline:
            time.sleep(0.02)
        return acks[info.mid]
    finally:
        client.loop_stop()
        client.disconnect()


def test_each_role_publishes_only_its_own_topics(db_url: str, project: Path) -> None:
    from parking.ingest import SPACE_TOPIC
    from telematics.ingest import POSITION_TOPIC
    from video.ingest import COUNTS_TOPIC

    db = Database(db_url)
    try:
        password = add_device(db, "bus-1", "vehicle")
        write_deployment(project, db)
    finally:
        db.close()
    env = read_env(project / ".env")
    pw = {r.user: env[r.env] for r in ROLES} | {"bus-1": password}
    position, counts = POSITION_TOPIC.concrete("city", "bus-9"), COUNTS_TOPIC.concrete("cam-3")
    allowed, refused = "accepted", "not authorized"
    expected = {
        ("simulator", position): allowed, ("simulator", SPACE_TOPIC.concrete("s1", "p1")): allowed,
        ("simulator", counts): refused,
        ("camera-worker", counts): allowed, ("camera-worker", position): refused,
        ("collector", position): refused, ("healthcheck", position): refused,
        ("platform", position): refused,
        ("bus-1", POSITION_TOPIC.concrete("city", "bus-1")): allowed, ("bus-1", position): refused,
    }
    for port in _broker(project):
        # reason codes below 0x80 accept (0x10: no subscribers yet); 0x87 is "not authorized"
        codes = {(user, topic): _publish(port, user, pw[user], topic) for user, topic in expected}
        assert set(codes.values()) <= {0, 0x10, 0x87}, codes
        got = {k: allowed if c < 0x80 else refused for k, c in codes.items()}
        assert got == expected

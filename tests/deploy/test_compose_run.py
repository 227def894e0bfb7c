"""docker-compose.yml, run: every service of the file (profile demo included) as local
processes (tests/deploy/compose_local.py says how each container is stood in for), after
`its deploy init` wrote the deployment's files, exactly as README "Running it for a city" says.

One stack serves the module's tests, in order: migrate, a device registered with `its devices
add` and refused under another device's id (while the API starts), two API replicas, the demo
feed and its simulator through the generated ACL, two collectors on the shared subscription,
the camera worker on the shipped cameras.yaml (pointed at a real clip through ITS_VIDEO_DIR),
and the metrics the dashboard and the alert rules query, scraped from the running services.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg2
import pytest

from tests.deploy.compose_local import REPO, LocalCompose
from tests.deploy.test_monitoring import SUFFIXES, dashboard_metrics, rule_metrics

pytestmark = pytest.mark.timeout(420)


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _scrape(url: str) -> dict[str, float]:
    """``name{labels}`` → value of a Prometheus text page."""
    out: dict[str, float] = {}
    for line in _get(url)[1].decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _exported(url: str) -> set[str]:
    """Every metric name a /metrics page declares (``# TYPE`` lines, with their samples'
    suffixes: a labelled metric has no sample before its first observation) and every sample's."""
    text = _get(url)[1].decode()
    declared = re.findall(r"^# TYPE (\S+) (\w+)", text, re.M)
    names = {n for n, _ in declared} | {n + s for n, kind in declared for s in SUFFIXES.get(kind, ("",))}
    names |= {re.split(r"[{ ]", ln, maxsplit=1)[0] for ln in text.splitlines() if ln and not ln.startswith("#")}
    return names


def _query(stack: LocalCompose, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(stack.database_url())
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return cur.fetchall()
    finally:
        conn.close()


def _until(check, timeout: float, step: float = 1.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


@pytest.fixture(scope="module")
def clip_dir(request: pytest.FixtureRequest) -> Path | None:
    """The real clips' folder (shared data), or None: only the camera checks skip then."""
    try:
        return request.getfixturevalue("shared_data") / "video"  # type: ignore[no-any-return]
    except pytest.skip.Exception:
        return None


@pytest.fixture(scope="module")
def stack(clip_dir: Path | None) -> Iterator[LocalCompose]:
    from its.app.demo import cairns_feed

    scratch = Path(tempfile.mkdtemp(prefix="its-compose-"))
    scratch.chmod(0o755)  # the services run as the image's users
    project = scratch / "project"
    project.mkdir()
    shutil.copy(REPO / "docker-compose.yml", project)
    shutil.copytree(REPO / "deploy", project / "deploy")
    # README: `its deploy init .` in the project folder
    init = subprocess.run([sys.executable, "-m", "its.app.cli", "deploy", "init", str(project)],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    # the image's files, built as the Dockerfile builds them (its.app.demo.cairns_feed)
    image = scratch / "image"
    image.mkdir()
    feed = cairns_feed(image)
    image_files = {"/opt/its/demo/cairns_gtfs.zip": feed}
    overrides = {"ITS_VIDEO_DIR": str(clip_dir)} if clip_dir is not None else {}
    compose = LocalCompose(project, scratch, image_files, overrides, profiles=("demo",))
    compose.started = time.monotonic()  # type: ignore[attr-defined]
    compose.up()
    try:
        yield compose
    finally:
        compose.down()
        if not os.environ.get("ITS_KEEP_COMPOSE"):
            shutil.rmtree(scratch, ignore_errors=True)


def test_dockerfile_holds_what_each_service_runs_as_a_non_root_user(stack: LocalCompose) -> None:
    uid, gid = stack.dockerfile.user
    assert uid != 0 and gid != 0
    text = stack.dockerfile.text
    assert f"useradd --system --uid {uid}" in text
    # the demo feed comes from gtfs-kit's sdist (cairns_feed) into the path demo-feed reads
    assert "cairns_feed(Path('/demo'))" in text
    assert "COPY --from=build /demo/cairns_gtfs.zip /opt/its/demo/cairns_gtfs.zip" in text
    assert "/opt/its/demo/cairns_gtfs.zip" in stack.services["demo-feed"]["command"]
    assert not (REPO / "deploy" / "cairns_gtfs.zip").exists()
    # one role per service: no second `its serve`
    commands = [" ".join(s["command"][:3]) for s in stack.services.values() if "command" in s]
    assert sum(c.startswith("its serve") for c in commands) == 1, commands


def test_migrate_completes(stack: LocalCompose) -> None:
    (migrate,) = stack.wait("migrate", "done", timeout=150)
    assert migrate.error is None, migrate.log_tail()
    assert "applied" in migrate.log_tail()
    tables = {r[0] for r in _query(stack, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"vehicle_positions", "traffic_counts", "devices"} <= tables
    # the role the compose file names owns the schema (not the server's superuser)
    owner = _query(stack, "SELECT tableowner FROM pg_tables WHERE tablename = 'devices'")[0][0]
    assert owner == stack.pg_names["its"]


def test_a_device_cannot_publish_under_another_devices_id(stack: LocalCompose) -> None:
    from its.db import Database
    from its.device_registry import add_device
    from telematics.ingest import POSITION_TOPIC

    # README: docker compose run --rm migrate its devices add bus-7 --kind vehicle
    done = stack.run("migrate", ["its", "devices", "add", "bus-7", "--kind", "vehicle"])
    assert done.returncode == 0, done.stderr
    passwords = {"bus-7": done.stdout.strip().splitlines()[-1]}
    db = Database(stack.database_url())
    try:
        passwords["bus-8"] = add_device(db, "bus-8", "vehicle")  # the other device, registered alike
    finally:
        db.close()
    # README: docker compose run --rm -u "$(id -u):$(id -g)" -v "$PWD:/deploy" migrate its deploy init /deploy --from-registry
    me = f"{os.getuid()}:{os.getgid()}"
    done = stack.run("migrate", ["its", "deploy", "init", "/deploy", "--from-registry"],
                     volumes={"/deploy": stack.project}, user=me)
    assert done.returncode == 0, done.stderr
    assert "2 device(s)" in done.stdout
    stack.kill("broker", signal.SIGHUP)  # docker compose kill -s HUP broker
    stack.wait("collector", "healthy", timeout=120)

    broker = stack.replicas["broker"][0].ports[1883]
    acks: dict[int, int] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bus-7-test", protocol=mqtt.MQTTv5)
    client.username_pw_set("bus-7", passwords["bus-7"])
    client.on_publish = lambda c, u, mid, rc, props: acks.__setitem__(mid, rc.value)
    client.connect("127.0.0.1", broker)
    client.loop_start()

    def stored(vehicle: str) -> int:
        return int(_query(stack, "SELECT count(*) FROM vehicle_positions WHERE vehicle_id = %s", (vehicle,))[0][0])

    try:
        assert _until(client.is_connected, 10, 0.1)
        own_codes, forged_codes = [], []
        # until the collectors have subscribed (a fresh shared subscription keeps nothing before it)
        for _ in range(20):
            body = json.dumps({"ts": datetime.now(UTC).isoformat(), "lat": -16.9203, "lon": 145.7710}).encode()
            forged = client.publish(POSITION_TOPIC.concrete("cairns", "bus-8"), body, qos=1)
            own = client.publish(POSITION_TOPIC.concrete("cairns", "bus-7"), body, qos=1)
            assert _until(lambda f=forged, o=own: f.mid in acks and o.mid in acks, 5, 0.05)
            own_codes.append(acks[own.mid])
            forged_codes.append(acks[forged.mid])
            if _until(lambda: stored("bus-7"), 3, 0.2):
                break
    finally:
        client.loop_stop()
        client.disconnect()
    assert all(code < 0x80 for code in own_codes)  # accepted
    assert set(forged_codes) == {135}  # MQTT v5 "Not authorized", every time
    assert stored("bus-7") >= 1
    time.sleep(2)
    assert stored("bus-8") == 0

    # a wrong password is refused at CONNECT
    intruder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    intruder.username_pw_set("bus-8", "not-its-password")
    refused: list[int] = []
    intruder.on_connect = lambda c, u, flags, rc, props: refused.append(rc.value)
    intruder.connect("127.0.0.1", broker)
    intruder.loop_start()
    try:
        assert _until(lambda: refused, 10, 0.1)
    finally:
        intruder.loop_stop()
    assert refused[0] in (134, 135)  # bad user name or password / not authorized


def test_two_api_replicas_are_ready_and_answer_alike(stack: LocalCompose) -> None:
    replicas = stack.wait("api", "healthy", timeout=200)
    assert len(replicas) == 2
    for r in replicas:
        status, body = _get(r.url(8000, "/readyz"))
        assert status == 200, body
        assert json.loads(body)["ready"] is True
    docs = [json.loads(_get(r.url(8000, "/openapi.json"))[1]) for r in replicas]
    assert docs[0] == docs[1] and docs[0]["paths"]
    # the demo feed was imported before the API started (depends_on demo-feed): same stops on both
    near = "/v1/stops?lat=-16.925&lon=145.775&radius_m=800"
    stops = [json.loads(_get(r.url(8000, near))[1])["stops"] for r in replicas]
    assert stops[0] and stops[0] == stops[1]


def _buses_now(stack: LocalCompose) -> int:
    """Buses the demo simulator drives at this moment: the trips the feed demo-feed wrote (in the
    zone it chose so that buses run) runs now, rebased as the simulator rebases it."""
    from datetime import date

    from telematics.gtfs import read_feed, rebase_calendar, trips_running_at

    feed = read_feed(stack.volumes / "its-data" / "demo" / "feed.zip")
    return trips_running_at(rebase_calendar(feed, date.today()), time.time())


def test_simulator_positions_pass_the_acl_and_are_stored(stack: LocalCompose) -> None:
    stack.wait("simulator", "healthy", timeout=200)  # no healthcheck: started
    buses = _buses_now(stack)
    need = min(50, 5 * buses)  # 10 s pings: 9 a bus in the 90 s waited
    rows = _until(lambda: _query(stack, "SELECT count(*), count(DISTINCT vehicle_id) FROM vehicle_positions"
                                        " WHERE agency = 'cairns'")[0] if _query(
        stack, "SELECT count(*) FROM vehicle_positions WHERE agency = 'cairns'")[0][0] >= max(need, 1) else None,
                  90 if buses else 5)
    sim = stack.replicas["simulator"][0]
    if buses:
        assert rows, f"fewer than {need} simulated positions stored ({buses} buses running)\n{sim.log_tail()}"
        assert rows[1] >= min(3, buses)  # several buses, each under its own id
    refused = _query(stack, "SELECT count(*) FROM rejected_messages WHERE topic LIKE 'its/v1/vehicles/cairns/%'")[0][0]
    assert refused == 0


def test_two_collectors_each_store_a_real_share(stack: LocalCompose) -> None:
    collectors = stack.wait("collector", "healthy", timeout=60)
    assert len(collectors) == 2

    def stored(r) -> float:  # type: ignore[no-untyped-def]
        return sum(v for k, v in _scrape(r.url(9100, "/metrics")).items() if k.startswith("its_messages_stored_total{"))

    need = min(100, 5 * _buses_now(stack))  # 10 s pings: 6 a bus a minute, probes and statuses besides
    if need == 0:
        return  # no bus runs in Cairns at this hour: nothing for the collectors to share
    shares = _until(lambda: [stored(r) for r in collectors] if sum(stored(r) for r in collectors) >= need else None, 60)
    assert shares, f"the collectors stored fewer than {need} messages"
    total = sum(shares)
    assert min(shares) >= 0.2 * total, shares
    in_db = _query(stack, "SELECT count(*) FROM vehicle_positions")[0][0]
    assert in_db > 0


def test_camera_worker_counts_from_the_shipped_cameras_file(stack: LocalCompose, clip_dir: Path | None) -> None:
    if clip_dir is None:
        pytest.skip("shared data absent: no clip for the example camera")
    (video,) = stack.wait("video", "healthy", timeout=60)
    cameras = (stack.project / "deploy" / "cameras.yaml").read_text()
    camera = re.search(r"- id: (\S+)", cameras).group(1)  # type: ignore[union-attr]
    # intervals close when the clip's clock (paced to real time) passes the minute (interval_s 60):
    # a minute and a bit after start on an idle machine, later when the worker gets less than a
    # core (a 2-core CI machine running every service of the stack)
    def stored() -> tuple[int, int] | None:  # (rows, vehicles) once an interval is stored
        row = _query(stack, "SELECT count(*), coalesce(sum(count), 0) FROM traffic_counts WHERE camera_id = %s",
                     (camera,))[0]
        return (int(row[0]), int(row[1])) if row[0] else None

    counted = _until(stored, 240, 2)

    def diagnosis() -> str:
        frames = {k: v for k, v in _scrape(video.url(9101, "/metrics")).items() if k.startswith("its_camera_")}
        refused = _query(stack, "SELECT topic, reason FROM rejected_messages WHERE topic LIKE 'its/v1/cameras/%'"
                                " ORDER BY received_at DESC LIMIT 5")
        return f"{video.log_tail()}\ncamera metrics: {frames}\nrefused: {refused}"

    assert counted and counted[0] > 0, diagnosis()
    assert counted[1] > 0  # vehicles were counted, not just empty intervals
    page = _scrape(video.url(9101, "/metrics"))
    assert page[f'its_camera_frames_total{{camera="{camera}"}}'] > 100
    assert page[f'its_camera_online{{camera="{camera}"}}'] == 1.0
    # both API replicas heard the same counts (age_s, status_at, snapshot_at move with time)
    keys = ("camera_id", "online", "observed_at", "interval_start", "interval_s", "lines", "counts")

    def answers() -> list[dict]:  # type: ignore[type-arg]
        return [{k: json.loads(_get(r.url(8000, f"/v1/cameras/{camera}"))[1]).get(k) for k in keys}
                for r in stack.replicas["api"]]

    def agree() -> bool:
        first, second = answers()
        return first == second and bool(first["counts"])

    assert _until(agree, 30), answers()


def test_dashboard_and_alerts_query_only_metrics_the_services_export(stack: LocalCompose) -> None:
    pages = [r.url(8000, "/metrics") for r in stack.replicas["api"]]
    pages += [r.url(9100, "/metrics") for r in stack.replicas["collector"]]
    pages += [r.url(9101, "/metrics") for r in stack.replicas["video"]]
    exported = set().union(*(_exported(p) for p in pages))
    wanted = dashboard_metrics() | rule_metrics()
    assert wanted - {"up"} - exported == set()
    # every scrape job of deploy/prometheus.yml points at a service port that answered
    import yaml

    prom = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    for job in prom["scrape_configs"]:
        (sd,) = job["dns_sd_configs"]
        (name,) = sd["names"]
        for r in stack.replicas[name]:
            assert _get(r.url(sd["port"], job.get("metrics_path", "/metrics")))[0] == 200


def test_no_service_died(stack: LocalCompose) -> None:
    assert stack.failures() == {}
    elapsed = time.monotonic() - stack.started  # type: ignore[attr-defined]
    print(f"compose stack: {elapsed:.0f} s from `up` to the last check")

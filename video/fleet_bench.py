"""``its bench cameras``: camera workers sharing registered cameras by leases, one killed.

In a scratch database on the platform's PostgreSQL server, ``cameras`` cameras are registered
on one looping clip (the shared data's freeway clip, else a rendered street scene), ``workers``
``its video run`` processes are started, and once the cameras are spread the first ``kill``
workers are killed (SIGKILL: no hand-over). Measured:

- ``takeover_s_max``: from the kill to the last orphaned camera's new lease (database clock), s;
- ``lost_intervals``: counting intervals of the measured window with no counts at all (the
  window starts one interval after the cameras were spread and ends one interval before the
  survivors were stopped), over every camera;
- ``duplicated_intervals``: count messages received twice or more for one camera, line,
  direction, class and interval (over MQTT);
- ``fps_per_worker``: frames per second of each surviving worker (its Prometheus counter).

With intervals shorter than the lease, a killed worker's cameras lose about
``lease / interval + 1`` intervals each: nobody counts between the kill and the take-over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg2

from its.broker import free_port
from its.db import Database, migrate
from its.mqtt import connect
from video.config import CamerasFile
from video.ingest import COUNTS_TOPIC
from video.leases import takeover_bound_s
from video.registry import add_cameras, list_cameras
from video.synthetic import LINES, StreetScene, write_clip

__all__ = ["run_cameras_bench", "stop_processes"]


def stop_processes(procs: list[subprocess.Popen[Any]], wait_s: float) -> None:
    """Stop worker processes as an operator would: SIGTERM to each still running (they hand
    their cameras over), then wait up to ``wait_s`` (s) for each and SIGKILL what is left."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(wait_s)
        except subprocess.TimeoutExpired:
            p.kill()


def _scratch_db(server_url: str) -> str:
    name = f"its_bench_cameras_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    base, _, query = server_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def _drop_db(server_url: str, url: str) -> None:
    name = url.partition("?")[0].rsplit("/", 1)[1]
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def _frames(port: int) -> float:
    """Sum of ``its_camera_frames_total`` on a worker's metrics port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("its_camera_frames_total{"))


def _wait(predicate: Any, timeout_s: float, step: float = 0.2) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def _clip(workdir: Path, clip: Path | None) -> tuple[Path, bool]:
    if clip is not None:
        return clip, False
    return write_clip(workdir / "street.avi", StreetScene(seed=7, period_s=20.0, fps=15.0)), True


def run_cameras_bench(server_url: str, mqtt_url: str, workers: int = 3, kill: int = 1, cameras: int = 6,
                      interval_s: int = 5, lease_s: float = 15.0, clip: Path | None = None,
                      after_s: float | None = None) -> dict[str, Any]:
    """Run the bench (see the module docstring) and return its figures.

    Parameters
    ----------
    server_url : str
        PostgreSQL server URL; a scratch database is created on it and dropped after.
    mqtt_url : str
        Broker the workers publish to.
    workers, kill, cameras : int
        Worker processes, how many are killed, registered cameras.
    interval_s : int
        Counting interval of the cameras, s.
    lease_s : float
        Lease time (``ITS_VIDEO_LEASE_S``), s.
    clip : Path, optional
        A real clip to loop (default: a rendered street scene).
    after_s : float, optional
        How long the survivors run after the take-over (default: three intervals), s.
    """
    if not 0 < kill < workers:
        raise ValueError("--kill must be at least 1 and less than --workers")
    work = Path(tempfile.mkdtemp(prefix="its-bench-cameras-"))
    source, synthetic = _clip(work, clip)
    url = _scratch_db(server_url)
    db = Database(url, maxconn=2)
    procs: list[subprocess.Popen[bytes]] = []
    seen: Counter[tuple[str, str, str, str, str]] = Counter()
    lock = threading.Lock()

    def on_message(_c: object, _u: object, msg: Any) -> None:
        try:
            body = orjson.loads(msg.payload)
            key = (msg.topic.split("/")[3], body["interval_start"], body["line_id"], body["direction"], body["vehicle_class"])
        except (ValueError, KeyError, IndexError):
            return
        with lock:
            seen[key] += 1

    sub = connect(mqtt_url, f"bench-cameras-{uuid.uuid4().hex[:6]}", on_message=on_message)
    sub.subscribe(COUNTS_TOPIC.filter, 1)
    try:
        migrate(db)
        lines = [{"id": k, "points": list(v)} for k, v in LINES.items()]
        add_cameras(db, CamerasFile.model_validate({"interval_s": interval_s, "cameras": [
            {"id": f"bench-{i}", "source": str(source), "loop": True, "synthetic": synthetic, "lines": lines}
            for i in range(cameras)]}))
        ports = [free_port() for _ in range(workers)]
        for i, port in enumerate(ports):
            env = {**os.environ, "ITS_DATABASE_URL": url, "ITS_MQTT_URL": mqtt_url, "ITS_DATA_DIR": str(work / f"w{i}"),
                   "ITS_VIDEO_LEASE_S": str(lease_s), "ITS_LOG_LEVEL": "WARNING"}
            procs.append(subprocess.Popen([sys.executable, "-m", "its.app.cli", "video", "run", "--metrics-port", str(port)],
                                          env=env, stdout=open(work / f"w{i}.log", "wb"),  # noqa: SIM115
                                          stderr=subprocess.STDOUT, start_new_session=True))

        def spread() -> bool:
            owners = [c.owner for c in list_cameras(db)]
            per = Counter(owners)
            return None not in owners and len(per) == workers and max(per.values()) - min(per.values()) <= 1

        if not _wait(spread, 90 + 3 * lease_s):
            raise RuntimeError(f"the cameras were not spread over {workers} workers: {Counter(c.owner for c in list_cameras(db))}")
        spread_per_worker = sorted(Counter(c.owner for c in list_cameras(db)).values())
        window_from = time.time() + interval_s  # whole intervals from here on
        time.sleep(2 * interval_s)
        pids = {row[0]: row[1] for row in db.fetchall("SELECT worker_id, pid FROM video_workers")}
        victims = {w for w, pid in pids.items() if pid in {p.pid for p in procs[:kill]}}
        orphans = [c.camera_id for c in list_cameras(db) if c.owner in victims]
        killed_at = db.fetchall("SELECT now()")[0][0]
        for p in procs[:kill]:
            p.send_signal(signal.SIGKILL)
            p.wait()

        def taken() -> bool:
            return all(c.owner is not None and c.owner not in victims for c in list_cameras(db))

        if not _wait(taken, takeover_bound_s(lease_s) + 30):
            raise RuntimeError("the killed workers' cameras were not taken over")
        acquired: list[datetime] = [r[0] for r in db.fetchall(
            "SELECT acquired_at FROM video_camera_leases WHERE camera_id = ANY(%s)", (orphans,))]
        takeover = max((t - killed_at).total_seconds() for t in acquired) if acquired else 0.0
        survivors = list(zip(procs[kill:], ports[kill:], strict=True))
        start = {port: _frames(port) for _, port in survivors}
        t0 = time.monotonic()
        time.sleep(after_s if after_s is not None else 3 * interval_s)
        fps = [round((_frames(port) - start[port]) / (time.monotonic() - t0), 1) for _, port in survivors]
        window_to = time.time() - interval_s
        spread_after = sorted(Counter(c.owner for c in list_cameras(db)).values())
    finally:
        stop_processes(procs, 30)
        time.sleep(1.0)  # the last count messages
        sub.close()
        db.close()
        _drop_db(server_url, url)
    with lock:
        counts = dict(seen)
    slots = range(int(window_from // interval_s) + 1, int(window_to // interval_s))
    have = {(k[0], datetime.fromisoformat(k[1].replace("Z", "+00:00")).timestamp() // interval_s) for k in counts}
    lost = sum(1 for cam in range(cameras) for s in slots if (f"bench-{cam}", float(s)) not in have)
    return {
        "cameras": cameras, "workers": workers, "killed": kill, "lease_s": lease_s, "interval_s": interval_s,
        "clip": "synthetic street scene" if synthetic else str(source),
        "spread_before": spread_per_worker, "spread_after": spread_after, "orphaned_cameras": len(orphans),
        "takeover_s_max": round(takeover, 2), "takeover_bound_s": takeover_bound_s(lease_s),
        "measured_intervals": len(slots) * cameras, "lost_intervals": lost,
        "duplicated_intervals": sum(1 for n in counts.values() if n > 1),
        "fps_per_worker": fps,
    }

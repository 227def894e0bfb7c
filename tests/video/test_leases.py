"""Camera leases on a real PostgreSQL: fair shares, renewal, fencing, take-over of a killed
worker's cameras by another ``its video run`` process within the lease time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from its.app.cli import app
from its.db import Database
from video.config import CamerasFile
from video.fleet_bench import stop_processes
from video.leases import LeaseStore, fair_share, takeover_bound_s
from video.registry import add_cameras, list_cameras, remove_cameras
from video.synthetic import LINES, StreetScene, write_clip


def _cameras(clip: Path, n: int, interval_s: int = 2) -> CamerasFile:
    lines = [{"id": k, "points": list(v)} for k, v in LINES.items()]
    return CamerasFile.model_validate({"interval_s": interval_s, "cameras": [
        {"id": f"cam-{i}", "source": str(clip), "loop": True, "synthetic": True, "lines": lines} for i in range(n)]})


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("street") / "street.avi", StreetScene(seed=4, period_s=6.0, fps=10.0))


def test_fair_shares_add_up_and_differ_by_one() -> None:
    for cameras in range(0, 12):
        for n in range(1, 5):
            workers = [f"w{i}" for i in range(n)]
            shares = [fair_share(cameras, workers, w) for w in workers]
            assert sum(shares) == cameras and max(shares) - min(shares) <= 1
    assert fair_share(5, [], "alone") == 5  # a worker not yet seen counts itself in


def test_claim_renew_fence_and_release(db: Database, street: Path) -> None:
    add_cameras(db, _cameras(street, 5))
    a, b = LeaseStore(db, "a", lease_s=1.0), LeaseStore(db, "b", lease_s=1.0)
    got_a = a.claim(3)
    assert [lease.camera_id for lease in got_a] == ["cam-0", "cam-1", "cam-2"]
    assert all(lease.generation == 1 and lease.counted_until is None for lease in got_a)
    assert [lease.camera_id for lease in b.claim(5)] == ["cam-3", "cam-4"]  # never another's live lease
    assert b.claim(5) == []
    held_a = {lease.camera_id: lease.generation for lease in got_a}
    assert a.renew(held_a) == set(held_a)
    time.sleep(1.2)  # a stops renewing: its leases expire and b takes them over
    assert b.renew({"cam-3": 1, "cam-4": 1}) == set()  # b's expired too (no renewal in time)
    taken = b.claim(10)
    assert {lease.camera_id: lease.generation for lease in taken} == {
        "cam-0": 2, "cam-1": 2, "cam-2": 2, "cam-3": 2, "cam-4": 2}
    assert a.renew(held_a) == set()  # fenced: a cannot renew what b holds now
    b.release("cam-0", 2, 1_700_000_060.0)  # handed over after publishing up to that time
    (again,) = a.claim(1)
    assert again.camera_id == "cam-0" and again.generation == 3
    assert again.counted_until is not None and again.counted_until.timestamp() == 1_700_000_060.0
    assert remove_cameras(db, ["cam-1", "nope"]) == ["cam-1"]
    assert b.renew({"cam-1": 2, "cam-2": 2}) == {"cam-2"}  # a removed camera is no longer held
    owners = {c.camera_id: c.owner for c in list_cameras(db)}
    assert owners == {"cam-0": "a", "cam-2": "b", "cam-3": "b", "cam-4": "b"}


def test_cameras_cli_add_list_remove(db_url: str, tmp_path: Path, street: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITS_DATABASE_URL", db_url)
    monkeypatch.setenv("ITS_DATA_DIR", str(tmp_path / "data"))
    from its.settings import get_settings

    get_settings.cache_clear()  # type: ignore[attr-defined]
    runner = CliRunner()
    done = runner.invoke(app, ["cameras", "add", "east", str(street), "--line", "300,150,30,150", "--loop",
                               "--interval-s", "30"])
    assert done.exit_code == 0, done.output
    config = tmp_path / "cameras.yaml"
    config.write_text(f"cameras:\n  - {{id: west, source: '{street}', lines: [{{id: l, points: [0, 100, 320, 100]}}]}}\n")
    assert runner.invoke(app, ["cameras", "add", "--config", str(config)]).exit_code == 0
    listed = runner.invoke(app, ["cameras", "list", "--json"])
    rows = orjson.loads(listed.output.strip().splitlines()[-1])["cameras"]
    assert [(r["camera_id"], r["interval_s"], r["owner"]) for r in rows] == [("east", 30, None), ("west", 60, None)]
    bad = runner.invoke(app, ["cameras", "add", "x", str(street), "--line", "1,2,3"])
    assert bad.exit_code == 2 and "X1,Y1,X2,Y2" in bad.output
    gone = runner.invoke(app, ["cameras", "remove", "east", "missing"])
    assert gone.exit_code == 2 and "removed 1 camera(s): east" in gone.output and "not registered: missing" in gone.output
    get_settings.cache_clear()  # type: ignore[attr-defined]


def _worker(tmp_path: Path, name: str, db_url: str, broker_url: str, lease_s: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ITS_DATABASE_URL": db_url, "ITS_MQTT_URL": broker_url, "ITS_DATA_DIR": str(tmp_path / name),
           "ITS_VIDEO_LEASE_S": str(lease_s), "ITS_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "its.app.cli", "video", "run"], env=env,
                            stdout=open(tmp_path / f"{name}.log", "wb"), stderr=subprocess.STDOUT)


def _owners(db: Database) -> dict[str, str | None]:
    return {c.camera_id: c.owner for c in list_cameras(db)}


def _wait(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_killed_workers_cameras_are_taken_over_within_the_lease(db: Database, db_url: str, broker_url: str,
                                                                tmp_path: Path, street: Path) -> None:
    lease_s = 2.0
    add_cameras(db, _cameras(street, 4))
    procs = [_worker(tmp_path, f"w{i}", db_url, broker_url, lease_s) for i in range(2)]
    try:
        # both workers claim and spread evenly: two cameras each
        def spread() -> bool:
            owners = list(_owners(db).values())
            return None not in owners and sorted(owners.count(o) for o in set(owners)) == [2, 2]

        assert _wait(spread, 60), (_owners(db), (tmp_path / "w0.log").read_text()[-2000:])
        before = _owners(db)
        victim = db.fetchall("SELECT worker_id FROM video_workers WHERE pid = %s", (procs[0].pid,))[0][0]
        orphans = sorted(c for c, o in before.items() if o == victim)
        generation_before = dict(db.fetchall("SELECT camera_id, generation FROM video_camera_leases"))
        killed_at = time.monotonic()
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        survivor = next(o for o in before.values() if o != victim)
        assert _wait(lambda: all(o == survivor for o in _owners(db).values()), takeover_bound_s(lease_s) + 3), _owners(db)
        took = time.monotonic() - killed_at
        assert took <= takeover_bound_s(lease_s) + 1.0, took
        generations = dict(db.fetchall("SELECT camera_id, generation FROM video_camera_leases"))
        assert all(generations[c] == generation_before[c] + 1 for c in orphans)  # one change of owner each
    finally:
        stop_processes(procs, 20)
    # a stopped worker hands its cameras over and leaves the worker list
    assert db.fetchall("SELECT count(*) FROM video_workers")[0][0] <= 1  # the killed one's heartbeat may remain
    assert all(expires is None for expires in (c.expires_in_s for c in list_cameras(db)))


def test_bench_cameras_reports_the_take_over(db_url: str, broker_url: str, street: Path) -> None:
    """``its bench cameras`` end to end, small: two workers, one killed (its scratch database is dropped)."""
    from tests.conftest import server_url
    from video.fleet_bench import run_cameras_bench

    result = run_cameras_bench(server_url(), broker_url, workers=2, kill=1, cameras=2, interval_s=2, lease_s=2.0,
                               clip=street, after_s=4.0)
    assert result["spread_before"] == [1, 1] and result["spread_after"] == [2]
    assert result["orphaned_cameras"] == 1
    assert 0 < result["takeover_s_max"] <= result["takeover_bound_s"] + 1.0
    assert result["duplicated_intervals"] == 0
    assert result["measured_intervals"] > 0 and 0 <= result["lost_intervals"] <= result["measured_intervals"]
    assert len(result["fps_per_worker"]) == 1 and result["fps_per_worker"][0] > 5

"""Camera alerts through the real service and a real broker: health conditions raised and cleared
by a real worker's status messages, camera_offline from a killed worker's Last Will and from
silence, nothing for cameras not heard from live."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.service import Context
from its.settings import Settings
from video.config import VideoSettings, load_cameras
from video.service import CameraService
from video.sources import Frame, FrameSource, VideoSource
from video.worker import CameraWorker, _MqttPublisher

from .test_health import _covered

EXAMPLE = Path(__file__).resolve().parents[2] / "video" / "data" / "cameras.example.yaml"
Events = list[tuple[str, str, str]]


def _wait(predicate, timeout_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[CameraService, Context, Events]]:
    service = CameraService(VideoSettings(stale_after_s=60))
    ctx = build_context(settings)
    events: Events = []
    ctx.alerts.listen(lambda event, alert: events.append((event, alert.kind, alert.subject)))
    app = create_app(settings, [service], context=ctx)
    with TestClient(app):
        assert _wait(service.ready, 10)
        yield service, ctx, events
    if ctx.live:
        ctx.live.close()
    ctx.db.close()


class CoveredFrom(FrameSource):
    """A real clip whose frames ``covered`` are seen through a cover on the lens."""

    def __init__(self, clip: Path, covered: range) -> None:
        self.inner, self.covered = VideoSource(str(clip)), covered
        self.fps, self.duration_s = self.inner.fps, self.inner.duration_s

    def __iter__(self) -> Iterator[Frame]:
        for f in self.inner:
            yield Frame(_covered(f.image), f.index, f.t, f.wall) if f.index in self.covered else f

    def close(self) -> None:
        self.inner.close()


def test_a_covered_camera_raises_and_clears_view_blocked(live: tuple[CameraService, Context, Events], settings: Settings,
                                                        clip2: Path) -> None:
    service, ctx, events = live
    camera = next(c for c in load_cameras(EXAMPLE).cameras if c.id == "freeway-1")
    camera = camera.model_copy(update={"id": "cam-h", "source": str(clip2), "loop": False})
    assert settings.mqtt_url
    publisher = _MqttPublisher(settings.mqtt_url, camera.id)
    worker = CameraWorker(camera, publisher, settings.data_dir,
                          VideoSettings(health_interval_s=0.2, health_persist=3, status_interval_s=1.0),
                          source_factory=lambda: CoveredFrom(clip2, range(250, 450)), pace=False)
    try:
        worker.run(threading.Event())  # the file ends: the worker says it is offline
    finally:
        publisher.close()
    mine = lambda: [(e, k) for e, k, s in events if s == "cam-h"]  # noqa: E731
    assert _wait(lambda: ("raised", "camera_offline") in mine())
    got = mine()
    assert got == [("raised", "camera_view_blocked"), ("cleared", "camera_view_blocked"), ("raised", "camera_offline")]
    alert = ctx.alerts.get("camera_offline:cam-h")
    assert alert is not None and alert.lat == pytest.approx(-16.9245, abs=1e-3)  # the calibrated view's centre
    stored = ctx.db.fetchall("SELECT kind, cleared_at IS NOT NULL FROM alerts WHERE subject = 'cam-h' ORDER BY kind")
    assert stored == [("camera_offline", False), ("camera_view_blocked", True)]
    assert service.camera("cam-h") is not None


def test_last_will_and_silence_raise_camera_offline(live: tuple[CameraService, Context, Events], settings: Settings,
                                                    clip2: Path, tmp_path: Path) -> None:
    service, ctx, events = live
    config = tmp_path / "cameras.yaml"
    config.write_text(f"cameras:\n  - {{id: cam-lw, source: '{clip2}', loop: true, lines: [{{id: l, points: [30, 150, 300, 150]}}]}}\n")
    env = {**os.environ, "ITS_MQTT_URL": str(settings.mqtt_url), "ITS_DATABASE_URL": str(settings.database_url),
           "ITS_DATA_DIR": str(tmp_path / "worker"), "ITS_LOG_LEVEL": "WARNING"}
    env.pop("ITS_METRICS_PORT", None)
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "its.app.cli", "video", "run", "--config", str(config)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _wait(lambda: (s := service.cameras.get("cam-lw")) is not None and s.online is True, 60), \
            (tmp_path / "worker.log").read_text()
        assert ctx.alerts.get("camera_offline:cam-lw") is None
        proc.send_signal(signal.SIGKILL)  # no goodbye: the broker publishes the worker's Last Will
        proc.wait()
        assert _wait(lambda: ctx.alerts.get("camera_offline:cam-lw") is not None, 20)
        assert service.cameras["cam-lw"].online is False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # silence: online, then no counts and no status for longer than ITS_VIDEO_STALE_AFTER_S
    service._stop.set()  # the background tick uses the real clock; the ticks below say when
    assert service._thread is not None
    service._thread.join(timeout=10)
    now = datetime.now(UTC)
    topic = "its/v1/devices/camera/cam-s/status"
    service.on_status(topic, orjson.dumps({"online": True, "ts": now.isoformat(), "health": {"conditions": ["too_dark"]}}))
    assert ctx.alerts.get("camera_too_dark:cam-s") is not None
    service.tick(now + timedelta(seconds=59))
    assert ctx.alerts.get("camera_offline:cam-s") is None
    service.tick(now + timedelta(seconds=61))
    silent = ctx.alerts.get("camera_offline:cam-s")
    assert silent is not None and "silent" in silent.message and ctx.alerts.get("camera_too_dark:cam-s") is None
    service.on_status(topic, orjson.dumps({"online": True, "ts": datetime.now(UTC).isoformat()}))  # heard again
    assert ctx.alerts.get("camera_offline:cam-s") is None
    assert ("cleared", "camera_offline", "cam-s") in events


def test_cameras_not_heard_live_raise_nothing(live: tuple[CameraService, Context, Events]) -> None:
    service, _ctx, events = live
    service._stop.set()
    assert service._thread is not None
    service._thread.join(timeout=10)
    old = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    # a retained status from yesterday and the Last Will of a camera never seen online
    service.on_status("its/v1/devices/camera/old/status", orjson.dumps({"online": True, "ts": old,
                                                                        "health": {"conditions": ["moved"]}}))
    service.on_status("its/v1/devices/camera/gone/status", b'{"online": false}')
    service.on_status("its/v1/devices/camera/bad/status", b'{"online": true, "health": {"conditions": ["on_fire"]}}')
    service.tick(datetime.now(UTC) + timedelta(hours=1))
    assert [e for e in events if e[2] in ("old", "gone", "bad")] == []
    assert service.cameras["old"].online is True and service.cameras["gone"].online is False
    assert "bad" not in service.cameras  # rejected by the parser

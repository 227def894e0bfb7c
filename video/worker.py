"""Camera workers: many cameras per process, one process per core, MQTT out.

Each camera runs in its own thread with its own MQTT connection, whose Last Will is the
retained ``{"online": false}`` on ``its/v1/devices/camera/{camera_id}/status``. The worker
survives a dead source (:class:`video.sources.ReconnectingSource`, exponential backoff),
publishes per-interval counts on ``its/v1/cameras/{camera_id}/counts`` (QoS 1, one message
per line × direction × class), and keeps the latest annotated JPEG snapshot in
``<data_dir>/video/snapshots/{camera_id}.jpg`` and, retained, on
``its/v1/cameras/{camera_id}/snapshot`` (raw JPEG bytes) for the API.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson

from video.annotate import annotate, encode_jpeg
from video.config import CameraConfig, CamerasFile, VideoSettings
from video.pipeline import CountingPipeline
from video.sources import Backoff, FrameSource, ReconnectingSource, is_live, open_source

__all__ = [
    "CameraWorker",
    "Publisher",
    "counts_topic",
    "run_cameras",
    "snapshot_path",
    "snapshot_topic",
    "status_topic",
]

log = logging.getLogger(__name__)


def counts_topic(camera_id: str) -> str:
    return f"its/v1/cameras/{camera_id}/counts"


def status_topic(camera_id: str) -> str:
    return f"its/v1/devices/camera/{camera_id}/status"


def snapshot_topic(camera_id: str) -> str:
    return f"its/v1/cameras/{camera_id}/snapshot"


def snapshot_path(data_dir: Path, camera_id: str) -> Path:
    """Where the latest annotated snapshot of ``camera_id`` is written."""
    return Path(data_dir) / "video" / "snapshots" / f"{camera_id}.jpg"


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None: ...


class _MqttPublisher:
    """A camera's own MQTT connection, with its status topic as Last Will."""

    def __init__(self, url: str, camera_id: str) -> None:
        from its.mqtt import connect

        will = (status_topic(camera_id), orjson.dumps({"online": False}), True)
        self.conn = connect(url, f"its-video-{camera_id}-{os.getpid()}", will=will)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.conn.publish(topic, payload, qos=1, retain=retain)

    def close(self) -> None:
        self.conn.close()


class CameraWorker:
    """Runs one camera: source → pipeline → MQTT counts, status and snapshots.

    Parameters
    ----------
    camera : CameraConfig
        The camera's validated configuration.
    publisher : Publisher
        Where messages go (an MQTT connection in production).
    data_dir : Path
        Platform data dir; snapshots go to ``video/snapshots/`` under it.
    settings : VideoSettings
        Snapshot/heartbeat periods, reconnect backoff, model width.
    interval_s : int
        Default aggregation interval (the camera may override it), s.
    source_factory : callable, optional
        Opens the camera's source (default: :func:`video.sources.open_source`); a test may
        inject a source that fails.
    pace : bool, optional
        Replay files at their frame rate (default: for non-live sources only when looping).
    """

    def __init__(
        self,
        camera: CameraConfig,
        publisher: Publisher,
        data_dir: Path,
        settings: VideoSettings | None = None,
        interval_s: int = 60,
        source_factory: Callable[[], FrameSource] | None = None,
        pace: bool | None = None,
    ) -> None:
        self.camera, self.publisher = camera, publisher
        self.settings = settings or VideoSettings()
        self.data_dir = Path(data_dir)
        self.config = camera.pipeline_config(self.settings, interval_s)
        self.live = is_live(camera.source)
        self.pace = (camera.loop and not self.live) if pace is None else pace
        self.source_factory = source_factory or (
            lambda: open_source(camera.source, stride=camera.stride, max_width=camera.max_width, fps=camera.fps)
        )
        self.pipeline: CountingPipeline | None = None
        self.records_published = 0
        self.snapshots = 0
        self.status_history: list[bool] = []
        self.source: ReconnectingSource | None = None

    def _status(self, online: bool, heartbeat: bool = False) -> None:
        if not heartbeat:
            self.status_history.append(online)
        body = {"online": online, "ts": datetime.now(UTC).isoformat(), "camera_id": self.camera.id}
        self.publisher.publish(status_topic(self.camera.id), orjson.dumps(body), retain=True)

    def _publish_records(self, records: list) -> None:  # type: ignore[type-arg]
        topic = counts_topic(self.camera.id)
        for rec in records:
            self.publisher.publish(topic, orjson.dumps(rec.payload()))
        self.records_published += len(records)

    def _snapshot(self, image: object) -> None:
        assert self.pipeline is not None
        jpeg = encode_jpeg(annotate(image, self.pipeline))  # type: ignore[arg-type]
        path = snapshot_path(self.data_dir, self.camera.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".jpg.tmp")
        tmp.write_bytes(jpeg)
        os.replace(tmp, path)
        self.publisher.publish(snapshot_topic(self.camera.id), jpeg, retain=True)
        self.snapshots += 1

    def run(self, stop: threading.Event) -> None:
        """Process frames until ``stop`` is set (or a non-looping file ends)."""
        s = self.settings
        self.source = ReconnectingSource(
            self.source_factory,
            Backoff(initial_s=s.reconnect_initial_s, max_s=s.reconnect_max_s),
            on_status=self._status,
            sleep=stop.wait,
            on_eof="reconnect" if self.live else ("restart" if self.camera.loop else "stop"),
            name=f"camera {self.camera.id}",
        )
        last_snapshot, last_beat = 0.0, time.monotonic()  # going online already told the broker
        first_t: float | None = None
        began = time.monotonic()
        try:
            for frame in self.source:
                if stop.is_set():
                    break
                if self.pipeline is None:
                    roi = self.camera.roi_mask(frame.image.shape[:2])
                    self.pipeline = CountingPipeline(self.config, roi=roi)
                if self.pace:
                    first_t = frame.t if first_t is None else first_t
                    ahead = (frame.t - first_t) - (time.monotonic() - began)
                    if ahead > 0 and stop.wait(ahead):
                        break
                result = self.pipeline.process(frame)
                if result.records:
                    self._publish_records(result.records)
                now = time.monotonic()
                if now - last_snapshot >= s.snapshot_interval_s:
                    self._snapshot(frame.image)
                    last_snapshot = now
                if now - last_beat >= s.status_interval_s:
                    self._status(True, heartbeat=True)
                    last_beat = now
        finally:
            self.source.stop()
            if self.pipeline is not None:
                self._publish_records(self.pipeline.finish())
                if self.pipeline.last is not None:
                    self._snapshot(self.pipeline.last.frame.image)
            self._status(False)


def _run_group(cameras: list[dict], interval_s: int, mqtt_url: str, data_dir: str, settings: dict, stop: threading.Event | None = None) -> None:  # type: ignore[type-arg]
    """Run a group of cameras as threads of this process until ``stop`` (or all end)."""
    stop = stop or threading.Event()
    vs = VideoSettings(**settings)
    threads = []
    publishers = []
    for raw in cameras:
        cam = CameraConfig.model_validate(raw)
        pub = _MqttPublisher(mqtt_url, cam.id)
        publishers.append(pub)
        worker = CameraWorker(cam, pub, Path(data_dir), vs, interval_s)
        t = threading.Thread(target=worker.run, args=(stop,), name=f"camera-{cam.id}", daemon=True)
        t.start()
        threads.append(t)
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join(5)
    finally:
        for pub in publishers:
            pub.close()


def _child(cameras: list[dict], interval_s: int, mqtt_url: str, data_dir: str, settings: dict, stop: object) -> None:  # type: ignore[type-arg]
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    event = threading.Event()

    def watch() -> None:
        # poll: a process blocked in Event.wait() that exits would deadlock the parent's set()
        while not stop.is_set():  # type: ignore[attr-defined]
            if event.wait(0.5):
                return
        event.set()

    threading.Thread(target=watch, daemon=True).start()
    _run_group(cameras, interval_s, mqtt_url, data_dir, settings, event)


def run_cameras(
    cameras: CamerasFile, mqtt_url: str, data_dir: Path, settings: VideoSettings | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run every camera: one process per core (``ITS_VIDEO_PROCESSES``), cameras spread
    round-robin, threads inside a process. Returns when all cameras end or ``stop`` is set."""
    vs = settings or VideoSettings()
    stop = stop or threading.Event()
    n = vs.processes or (os.cpu_count() or 1)
    n = max(1, min(n, len(cameras.cameras)))
    groups = [[c.model_dump() for c in cameras.cameras[i::n]] for i in range(n)]
    args = (cameras.interval_s, mqtt_url, str(data_dir), vs.model_dump())
    if n == 1:
        _run_group(groups[0], *args, stop=stop)
        return
    ctx = multiprocessing.get_context("spawn")
    child_stop = ctx.Event()
    procs = [ctx.Process(target=_child, args=(g, *args, child_stop), name=f"its-video-{i}") for i, g in enumerate(groups)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs) and not stop.wait(0.5):
            pass
    finally:
        child_stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()

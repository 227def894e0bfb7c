"""Camera workers: many cameras per process, one process per core, MQTT out.

Each camera runs in its own thread with its own MQTT connection, whose Last Will is the
retained ``{"online": false}`` on ``its/v1/devices/camera/{camera_id}/status``. The worker
survives a dead source (:class:`video.sources.ReconnectingSource`, exponential backoff),
publishes per-interval counts on ``its/v1/cameras/{camera_id}/counts`` (QoS 1, one message
per line × direction × class), and keeps the latest annotated JPEG snapshot in
``<data_dir>/video/snapshots/{camera_id}.jpg`` and, retained, on
``its/v1/cameras/{camera_id}/snapshot`` (raw JPEG bytes) for the API.

Every ``ITS_VIDEO_HEALTH_INTERVAL_S`` of stream time the frame's health is checked
(:mod:`video.health`); the status message carries the latest ``health`` (conditions and
measurements) and, for a calibrated camera, ``lat``/``lon`` (the centre of its calibrated
view), and is published at once when the camera's health conditions change (see
:mod:`video.ingest`).

A camera with a ``people_model`` also estimates the people present every
``people_every_s`` of stream time (:class:`video.people.PeopleCounter`) and closes, with
each counting interval, one :class:`video.people.PeopleRecord` (mean and max people present)
for its ROI (``zone_id="all"``) and for each of its zones, and, for each of its
``people_lines`` and direction, one :class:`video.people.PeopleCrossings` (people who crossed,
from the density map and the optical flow to the frame before, :mod:`video.people_flow`).
Crossings need frames at most :data:`video.people_flow.MAX_GAP_S` apart: when the first two
frames are further apart the camera logs that it reports people per zone only
(:attr:`CameraWorker.crossings` is False). People records go out on
``its/v1/cameras/{camera_id}/people`` (QoS 1, one message per zone or line × direction),
separate from the vehicle counts, and to the worker's ``people_sink`` callback and its
:attr:`CameraWorker.people_records`.

Times: a live stream's frames are stamped when read; a file replayed at its frame rate
(``pace``, the default for a looping file) from when it was opened. A file processed as fast
as possible (not paced: a recording counted offline) is stamped as a recording that ended
when it was opened (open time - its duration + stream time), so its counts are never stamped
ahead of the clock, which the collector refuses (``ITS_INGEST_MAX_FUTURE_S``); a frame that
would still be ahead (a recording of unknown length, or read past its length after a
reconnection) waits until its time has come.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson
from prometheus_client import Counter, Gauge

from video.annotate import annotate, annotate_people, encode_jpeg
from video.config import CameraConfig, CamerasFile, VideoSettings
from video.health import HealthConfig, HealthMonitor
from video.people import (
    PeopleCounter,
    PeopleCrossings,
    PeopleEstimate,
    PeopleIntervals,
    PeopleModel,
    PeopleRecord,
)
from video.people_features import to_grey
from video.people_flow import MAX_GAP_S, LineFlux
from video.pipeline import CountingPipeline
from video.sources import Backoff, Frame, FrameSource, ReconnectingSource, is_live, open_source

__all__ = [
    "CameraWorker",
    "Publisher",
    "counts_topic",
    "people_topic",
    "run_cameras",
    "snapshot_path",
    "snapshot_topic",
    "status_topic",
]

from its.devices import device_status_topic
from video.ingest import CAMERA_KIND, COUNTS_TOPIC, PEOPLE_TOPIC, SNAPSHOT_TOPIC

log = logging.getLogger(__name__)

#: Prometheus metrics of this process's cameras (`its video run --metrics-port`): fps is the rate.
FRAMES = Counter("its_camera_frames_total", "Frames a camera worker processed", ["camera"])
ONLINE = Gauge("its_camera_online", "1 while the camera's source delivers frames, 0 when it is offline", ["camera"])


def counts_topic(camera_id: str) -> str:
    return COUNTS_TOPIC.concrete(camera_id)


def people_topic(camera_id: str) -> str:
    return PEOPLE_TOPIC.concrete(camera_id)


def status_topic(camera_id: str) -> str:
    return device_status_topic(CAMERA_KIND, camera_id)


def snapshot_topic(camera_id: str) -> str:
    return SNAPSHOT_TOPIC.concrete(camera_id)


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
    people_sink : callable, optional
        Receives the people records (zones and line crossings) of every closed interval
        (camera with a people model).
    skip_before : float, optional
        Epoch s: count records of intervals starting before it are not published (a camera
        taken over from a worker that already published them, see :mod:`video.fleet`).

    Attributes
    ----------
    publish_partial : bool
        Publish the last, partial interval when stopped (default). A worker that lost the
        camera's lease clears it: the new owner counts that interval.
    announce_offline : bool
        Publish ``{"online": false}`` when stopped (default); cleared on a hand-over.
    counted_until : float or None
        Epoch s: end of the latest interval published.
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
        people_sink: Callable[[list[PeopleRecord | PeopleCrossings]], None] | None = None,
        skip_before: float | None = None,
    ) -> None:
        self.camera, self.publisher = camera, publisher
        self.skip_before = skip_before
        self.publish_partial = True
        self.announce_offline = True
        self.counted_until: float | None = None
        self.settings = settings or VideoSettings()
        self.data_dir = Path(data_dir)
        self.config = camera.pipeline_config(self.settings, interval_s)
        self.live = is_live(camera.source)
        self.pace = (camera.loop and not self.live) if pace is None else pace
        #: a recording processed as fast as possible: stamped as if it ended when opened
        self.recorded = not self.live and not self.pace
        self.source_factory = source_factory or (
            lambda: open_source(camera.source, stride=camera.stride, max_width=camera.max_width, fps=camera.fps)
        )
        self._opened: FrameSource | None = None  # the source last opened (its duration)
        self._back_s: float | None = None  # how far a recording's frames are stamped back, s
        self._pace_start: tuple[float, float] | None = None  # stream time and monotonic clock of the first paced frame
        self.pipeline: CountingPipeline | None = None
        self.records_published = 0
        self.snapshots = 0
        self.status_history: list[bool] = []
        self.source: ReconnectingSource | None = None
        self.health = HealthMonitor(HealthConfig(persist=self.settings.health_persist), self.settings.health_interval_s)
        self.position = None if self.config.ground is None else self.config.ground.origin
        self.people: PeopleCounter | None = None
        self.flux: LineFlux | None = None
        #: Whether people crossings are measured (None: not decided yet or no people lines).
        self.crossings: bool | None = None
        self.people_intervals = PeopleIntervals(self.config.interval_s, [line.id for line in camera.people_lines])
        self.people_records: deque[PeopleRecord | PeopleCrossings] = deque(maxlen=10_000)
        self.people_published = 0
        self.people_sink = people_sink
        self._people_t: float | None = None
        self._prev: Frame | None = None
        self._estimate: PeopleEstimate | None = None  # the latest, drawn on snapshots
        self.crossed: dict[tuple[str, str], float] = {}  # people crossing each people line since start
        if camera.people_model is not None:
            model = PeopleModel.load(Path(camera.people_model))
            self.people = PeopleCounter(model, {z.id: z.polygon for z in camera.zones})
            if camera.people_lines:
                self.flux = LineFlux(model.grid, {line.id: line.points for line in camera.people_lines})

    def _crossings(self, frame: Frame, estimate: PeopleEstimate) -> dict[tuple[str, str], float] | None:
        """People crossing the people lines since the previous estimate (None: not measured)."""
        prev, last_t = self._prev, self._people_t
        if self.flux is None or self.people is None or prev is None:
            return None
        gap = frame.t - prev.t
        if self.crossings is None:
            self.crossings = 0 < gap <= MAX_GAP_S
            if not self.crossings:
                log.warning("camera %s: frames %.2f s apart (crossings need <= %.2f s): people per zone only, "
                            "no line crossings", self.camera.id, gap, MAX_GAP_S)
                self.flux = None
                return None
        if not 0 < gap <= MAX_GAP_S:
            return None  # a dropped stretch of frames: this step is not measured
        nominal = max(self.camera.people_every_s, gap)
        span = gap if last_t is None else min(max(frame.t - last_t, gap), 2 * nominal)
        grid = self.people.model.grid
        return self.flux.update(to_grey(prev.image, grid), to_grey(frame.image, grid), estimate.density, gap, span)

    def _count_people(self, frame: Frame) -> None:
        assert self.people is not None
        if self._people_t is not None and frame.t - self._people_t < self.camera.people_every_s:
            return
        try:
            estimate = self.people.update(frame.image)
        except ValueError as exc:  # frames of another size than the model's calibration
            log.error("camera %s: people counting disabled: %s", self.camera.id, exc)
            self.people = None
            return
        crossings = self._crossings(frame, estimate)
        self._people_t, self._estimate = frame.t, estimate
        for key, n in (crossings or {}).items():
            self.crossed[key] = self.crossed.get(key, 0.0) + n
        self._publish_people(self.people_intervals.add(frame.wall, estimate, crossings))

    def _publish_people(self, records: list[PeopleRecord | PeopleCrossings]) -> None:
        if not records:
            return
        topic = people_topic(self.camera.id)
        for rec in records:
            self.publisher.publish(topic, orjson.dumps(rec.payload()))
        self.people_published += len(records)
        self.people_records.extend(records)
        if self.people_sink is not None:
            self.people_sink(records)

    def _status(self, online: bool, heartbeat: bool = False) -> None:
        if not heartbeat:
            self.status_history.append(online)
        ONLINE.labels(self.camera.id).set(1 if online else 0)
        body: dict[str, object] = {"online": online, "ts": datetime.now(UTC).isoformat(), "camera_id": self.camera.id}
        if self.position is not None:
            body["lat"], body["lon"] = round(self.position[0], 7), round(self.position[1], 7)
        if self.camera.synthetic:
            body["synthetic"] = True
        if self.camera.description:
            body["description"] = self.camera.description
        if online and self.health.last is not None:
            body["health"] = self.health.last.payload()
        self.publisher.publish(status_topic(self.camera.id), orjson.dumps(body), retain=True)

    def _publish_records(self, records: list) -> None:  # type: ignore[type-arg]
        topic = counts_topic(self.camera.id)
        for rec in records:
            start = rec.interval_start.timestamp()
            if self.skip_before is not None and start < self.skip_before:
                continue  # the previous owner published this interval
            self.publisher.publish(topic, orjson.dumps(rec.payload()))
            self.records_published += 1
            self.counted_until = max(self.counted_until or 0.0, start + rec.interval_s)

    def _snapshot(self, image: object) -> None:
        assert self.pipeline is not None
        drawn = annotate(image, self.pipeline, tracks=bool(self.camera.lines) or self.people is None)  # type: ignore[arg-type]
        if self.people is not None and self._estimate is not None:
            drawn = annotate_people(drawn, self._estimate, [(line.id, line.points) for line in self.camera.people_lines],
                                    self.crossed)
        jpeg = encode_jpeg(drawn)
        path = snapshot_path(self.data_dir, self.camera.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".jpg.tmp")
        tmp.write_bytes(jpeg)
        os.replace(tmp, path)
        self.publisher.publish(snapshot_topic(self.camera.id), jpeg, retain=True)
        self.snapshots += 1

    def _when_due(self, frame: Frame, stop: threading.Event) -> Frame | None:
        """``frame`` as it is processed: a paced file's once its stream time has come, a
        recording's stamped back (`_as_recorded`) and not ahead of the clock; None when
        ``stop`` was set while waiting."""
        if self.pace:
            if self._pace_start is None:
                self._pace_start = (frame.t, time.monotonic())
            ahead = (frame.t - self._pace_start[0]) - (time.monotonic() - self._pace_start[1])
        elif self.recorded:
            frame = self._as_recorded(frame)
            ahead = frame.wall - time.time()
        else:
            return frame
        return None if ahead > 0 and stop.wait(ahead) else frame

    def _open(self) -> FrameSource:
        self._opened = self.source_factory()
        return self._opened

    def _as_recorded(self, frame: Frame) -> Frame:
        """``frame`` stamped as part of a recording that ended when it was first opened (its
        wall time moved back by the recording's duration, when the source knows it)."""
        if self._back_s is None:
            duration = getattr(self._opened, "duration_s", None)
            self._back_s = float(duration) if duration is not None and duration > 0 else 0.0
            if not self._back_s:
                log.warning("camera %s: length of %s unknown: frames stamped ahead of the clock wait for it",
                            self.camera.id, self.camera.source)
        return dataclasses.replace(frame, wall=frame.wall - self._back_s) if self._back_s else frame

    def run(self, stop: threading.Event) -> None:
        """Process frames until ``stop`` is set (or a non-looping file ends)."""
        s = self.settings
        self.source = ReconnectingSource(
            self._open,
            Backoff(initial_s=s.reconnect_initial_s, max_s=s.reconnect_max_s),
            on_status=self._status,
            sleep=stop.wait,
            on_eof="reconnect" if self.live else ("restart" if self.camera.loop else "stop"),
            name=f"camera {self.camera.id}",
        )
        last_snapshot, last_beat = 0.0, time.monotonic()  # going online already told the broker
        self._pace_start = None
        frames = FRAMES.labels(self.camera.id)
        try:
            for frame in self.source:
                if stop.is_set():
                    break
                if self.pipeline is None:
                    roi = self.camera.roi_mask(frame.image.shape[:2])
                    self.pipeline = CountingPipeline(self.config, roi=roi)
                due = self._when_due(frame, stop)
                if due is None:
                    break
                frame = due
                result = self.pipeline.process(frame)
                frames.inc()
                if result.records:
                    self._publish_records(result.records)
                report = self.health.update(frame.image, frame.t)
                if self.people is not None:
                    self._count_people(frame)
                    self._prev = frame
                now = time.monotonic()
                if report is not None and report.changed:
                    self._status(True, heartbeat=True)  # a health condition was raised or cleared
                    last_beat = now
                if now - last_snapshot >= s.snapshot_interval_s:
                    self._snapshot(frame.image)
                    last_snapshot = now
                if now - last_beat >= s.status_interval_s:
                    self._status(True, heartbeat=True)
                    last_beat = now
        finally:
            self._close()

    def _close(self) -> None:
        """End of the run: last people records, partial interval, snapshot, offline status."""
        assert self.source is not None
        self.source.stop()
        if self.people is not None:
            self._publish_people(self.people_intervals.flush(final=True))
        if self.pipeline is not None:
            if self.publish_partial:
                self._publish_records(self.pipeline.finish())
            if self.pipeline.last is not None:
                self._snapshot(self.pipeline.last.frame.image)
        if self.announce_offline:
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

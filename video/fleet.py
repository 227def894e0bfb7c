"""``its video run`` without ``--config``: registered cameras shared by leases.

Any number of these workers, on any number of machines, share the cameras of
``video_cameras`` (:mod:`video.registry`) through the leases of :mod:`video.leases`. Every
``lease_s / 3`` a worker:

1. records its heartbeat and renews its leases; a camera whose lease it no longer holds
   (taken over after it could not renew, or removed) is stopped at once, without
   publishing its partial interval (the new owner counts that interval);
2. claims free cameras up to its fair share, or hands over those above it.

Each camera runs as a thread (:class:`video.worker.CameraWorker`) with its own MQTT
connection. A camera handed over (fair share, shutdown) publishes its partial interval and
records its end in the lease, so the next owner skips that interval: no interval is
published twice. When the database is unreachable for longer than the lease minus one
renewal period, the worker stops every camera (another worker may claim them).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from its.db import Database
from video.config import VideoSettings
from video.leases import Lease, LeaseStore, fair_share, lease_renew_s
from video.registry import camera_from_row
from video.worker import CameraWorker, _MqttPublisher

__all__ = ["LeasedCameras"]

log = logging.getLogger(__name__)


@dataclass
class _Running:
    lease: Lease
    worker: CameraWorker
    stop: threading.Event
    thread: threading.Thread
    publisher: _MqttPublisher


class LeasedCameras:
    """The cameras this worker holds, kept in step with the leases.

    Parameters
    ----------
    db : Database
        Platform database (migrated).
    mqtt_url : str
        Broker the cameras publish to.
    data_dir : Path
        Platform data dir (snapshots).
    settings : VideoSettings
        Lease time (``lease_s``) and the camera workers' settings.
    worker_id : str, optional
        Id of this worker in the leases (default: host, pid, random).
    """

    def __init__(self, db: Database, mqtt_url: str, data_dir: Path, settings: VideoSettings | None = None,
                 worker_id: str | None = None) -> None:
        self.settings = settings or VideoSettings()
        self.store = LeaseStore(db, worker_id, self.settings.lease_s)
        self.mqtt_url, self.data_dir = mqtt_url, Path(data_dir)
        self.running: dict[str, _Running] = {}
        self._safe_until = 0.0  # monotonic: hold the cameras until then without a renewal

    @property
    def worker_id(self) -> str:
        return self.store.worker_id

    def run(self, stop: threading.Event) -> None:
        """Tick every renewal period until ``stop``; then hand every camera over."""
        period = lease_renew_s(self.settings.lease_s)
        try:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    self.tick()
                except Exception as exc:  # the database is away: keep counting until it is unsafe
                    log.warning("video leases: %s", exc)
                    if time.monotonic() > self._safe_until and self.running:
                        log.error("video leases not renewed for %.0f s: stopping %d camera(s)",
                                  self.settings.lease_s - period, len(self.running))
                        for camera_id in list(self.running):
                            self._stop(camera_id, partial=False)
                stop.wait(max(0.0, period - (time.monotonic() - began)))
        finally:
            self.shutdown()

    def tick(self) -> None:
        """Heartbeat, renew, then claim or hand over to reach the fair share."""
        started = time.monotonic()
        self.store.heartbeat()
        held = self.store.renew({cid: r.lease.generation for cid, r in self.running.items()})
        self._safe_until = started + self.settings.lease_s - lease_renew_s(self.settings.lease_s)
        for camera_id in set(self.running) - held:
            log.warning("camera %s: lease lost (taken over or removed); stopping it", camera_id)
            self._stop(camera_id, partial=False)
        for camera_id, run in list(self.running.items()):
            if not run.thread.is_alive():  # its source ended (a file without loop): let others see it
                self._release(camera_id)
        target = fair_share(self.store.camera_count(), self.store.live_workers(), self.worker_id)
        if len(self.running) < target:
            for lease in self.store.claim(target - len(self.running)):
                self._start(lease)
        elif len(self.running) > target:
            for camera_id in sorted(self.running)[target:]:
                self._release(camera_id)

    def _start(self, lease: Lease) -> None:
        try:
            camera = camera_from_row(lease.config)
        except ValueError as exc:
            log.error("%s", exc)
            self.store.release(lease.camera_id, lease.generation, None)
            return
        skip = lease.counted_until.timestamp() if lease.counted_until is not None else None
        publisher = _MqttPublisher(self.mqtt_url, camera.id)
        worker = CameraWorker(camera, publisher, self.data_dir, self.settings, lease.interval_s, skip_before=skip)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), name=f"camera-{camera.id}", daemon=True)
        thread.start()
        self.running[camera.id] = _Running(lease, worker, stop, thread, publisher)
        log.info("camera %s: claimed (generation %d)", camera.id, lease.generation)

    def _stop(self, camera_id: str, partial: bool, handover: bool = False) -> _Running:
        run = self.running.pop(camera_id)
        run.worker.publish_partial = partial
        run.worker.announce_offline = not handover
        run.stop.set()
        run.thread.join(10)
        run.publisher.close()
        return run

    def _release(self, camera_id: str, handover: bool = True) -> None:
        run = self._stop(camera_id, partial=True, handover=handover)
        self.store.release(camera_id, run.lease.generation, run.worker.counted_until)
        log.info("camera %s: handed over", camera_id)

    def shutdown(self) -> None:
        """Hand every camera over (partial intervals published) and leave the worker list."""
        for camera_id in list(self.running):
            try:
                self._release(camera_id, handover=False)
            except Exception as exc:
                log.warning("camera %s: not released (%s); its lease will expire", camera_id, exc)
        try:
            self.store.forget()
        except Exception as exc:
            log.warning("video leases: %s", exc)

    def frames(self) -> int:
        """Frames processed by the cameras running now."""
        return sum(r.worker.pipeline.frames for r in self.running.values() if r.worker.pipeline is not None)

"""Live camera state for the API: latest counts, status and snapshot of every camera.

Rebuilt at start from ``traffic_counts`` and ``people_counts`` (last day) and kept current
from MQTT: vehicle counts (``its/v1/cameras/+/counts``), pedestrians
(``its/v1/cameras/+/people``), status (``its/v1/devices/camera/+/status``) and the retained
JPEG snapshots (``its/v1/cameras/+/snapshot``). Snapshots not seen on MQTT are read from
``<data_dir>/video/snapshots/`` (a worker on the same host writes them there).

Camera alerts go through ``ctx.alerts`` as the parking sensors' do, raised and cleared on
every status message and re-evaluated every ``TICK_S`` seconds:

- ``camera_offline`` (warning): the camera said it is offline (its Last Will when its worker
  vanished, or its source failed), or sent no counts and no status for
  ``ITS_VIDEO_STALE_AFTER_S`` seconds (a worker that receives no frames sends no heartbeat);
- ``camera_view_blocked``, ``camera_moved`` (warning), ``camera_out_of_focus`` (warning),
  ``camera_too_dark`` (info): the health conditions of its latest status
  (:mod:`video.health`); cleared when the status no longer has them or the camera is offline.

Only cameras heard from live since the service started are judged (a retained status or
counts older than ``ITS_VIDEO_STALE_AFTER_S`` found at start raise nothing), as parking
does not alert on sensors already offline when it starts. Alerts carry the camera's
position when its status has one (``lat``/``lon`` of a calibrated camera).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from its.devices import device_status_filter
from its.ingest import PayloadError
from its.service import Context, Service
from video.config import VideoSettings
from video.health import CONDITIONS, alert_kind
from video.ingest import (
    CAMERA_KIND,
    COUNTS_TOPIC,
    PEOPLE_TOPIC,
    SNAPSHOT_TOPIC,
    parse_camera_status,
    parse_counts,
    parse_people,
)
from video.worker import snapshot_path

__all__ = ["ALERT_KINDS", "TICK_S", "CameraService", "CameraState", "create_service"]

log = logging.getLogger(__name__)
_CAMERA_ID_MAX = 64
TICK_S = 5.0  # how often silent cameras are looked for, s
OFFLINE = "camera_offline"
#: Every alert kind the video service raises.
ALERT_KINDS = (OFFLINE, *(alert_kind(c) for c in CONDITIONS))
_HEALTH_ALERTS = {  # condition: (severity, message)
    "view_blocked": ("warning", "camera {id}: view blocked or covered"),
    "moved": ("warning", "camera {id} moved: its view no longer matches its lines and calibration"),
    "out_of_focus": ("warning", "camera {id} is out of focus"),
    "too_dark": ("info", "camera {id}: image too dark to count vehicles"),
}


@dataclass
class CameraState:
    """What the API knows about one camera."""

    camera_id: str
    online: bool | None = None
    status_at: datetime | None = None
    counts: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    people: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (place_id, measure)
    snapshot: bytes | None = None
    snapshot_at: datetime | None = None
    seen_at: datetime | None = None  # latest live counts or online status (UTC)
    conditions: frozenset[str] = frozenset()
    health: dict[str, Any] | None = None
    lat: float | None = None
    lon: float | None = None
    synthetic: bool = False
    description: str | None = None

    def latest_interval(self) -> datetime | None:
        return max((r["interval_start"] for r in self.counts.values()), default=None)

    def latest_people(self) -> datetime | None:
        return max((r["interval_start"] for r in self.people.values()), default=None)

    def observed_at(self) -> datetime | None:
        """End of the newest interval, vehicles or people."""
        return max((r["interval_start"] + timedelta(seconds=r["interval_s"])
                    for r in (*self.counts.values(), *self.people.values())), default=None)


class CameraService(Service):
    """In-memory camera state answering ``/v1/cameras``."""

    name = "video"

    def __init__(self, settings: VideoSettings | None = None) -> None:
        self.video_settings = settings or VideoSettings()
        self.cameras: dict[str, CameraState] = {}
        self.data_dir: Path | None = None
        self._lock = threading.Lock()
        self._ready = False
        self.ctx: Context | None = None
        self._alerted: dict[str, set[str]] = {}
        self._alert_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, ctx: Context) -> None:
        from video.store import latest_counts, latest_people

        self.ctx = ctx
        self.data_dir = ctx.settings.data_dir
        since = datetime.now(UTC) - timedelta(days=1)
        for rec in latest_counts(ctx.read_db, since):
            self._store_record(str(rec.pop("camera_id")), rec)
        for rec in latest_people(ctx.read_db, since):
            self._store_people(str(rec.pop("camera_id")), rec)
        ctx.subscribe(COUNTS_TOPIC.filter, self.on_counts)
        ctx.subscribe(PEOPLE_TOPIC.filter, self.on_people)
        ctx.subscribe(device_status_filter(CAMERA_KIND), self.on_status)
        ctx.subscribe(SNAPSHOT_TOPIC.filter, self.on_snapshot)
        self._ready = True
        self._thread = threading.Thread(target=self._run, name="video-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:
                log.exception("video alert tick failed")

    def ready(self) -> bool:
        return self._ready

    def router(self) -> APIRouter:
        from video.api import build_router

        return build_router(self)

    # ------------------------------------------------------------------ live updates
    def _camera(self, camera_id: str) -> CameraState:
        state = self.cameras.get(camera_id)
        if state is None:
            state = self.cameras[camera_id] = CameraState(camera_id)
        return state

    def _store_record(self, camera_id: str, rec: dict[str, Any]) -> None:
        key = (rec["line_id"], rec["direction"], rec["vehicle_class"])
        with self._lock:
            state = self._camera(camera_id)
            old = state.counts.get(key)
            if old is None or rec["interval_start"] >= old["interval_start"]:
                state.counts[key] = rec

    def on_counts(self, topic: str, payload: bytes) -> None:
        """MQTT callback: keep the newest interval per line/direction/class."""
        try:
            (row,) = parse_counts(topic, payload)
        except PayloadError as exc:
            log.debug("ignoring bad counts message on %s: %s", topic, exc)
            return
        self._store_record(row.camera_id, {
            "line_id": row.line_id, "direction": row.direction, "vehicle_class": row.vehicle_class,
            "interval_start": row.interval_start, "interval_s": row.interval_s, "count": row.count,
            "mean_speed_kmh": None if row.mean_speed_mps is None else row.mean_speed_mps * 3.6,
            "occupancy": row.occupancy,
        })
        with self._lock:
            self._camera(row.camera_id).seen_at = datetime.now(UTC)
        self._sync(row.camera_id)

    def _store_people(self, camera_id: str, rec: dict[str, Any]) -> None:
        key = (rec["place_id"], rec["measure"])
        with self._lock:
            state = self._camera(camera_id)
            old = state.people.get(key)
            if old is None or rec["interval_start"] >= old["interval_start"]:
                state.people[key] = rec

    def on_people(self, topic: str, payload: bytes) -> None:
        """MQTT callback: keep the newest people interval per zone and line/direction."""
        try:
            (row,) = parse_people(topic, payload)
        except PayloadError as exc:
            log.debug("ignoring bad people message on %s: %s", topic, exc)
            return
        self._store_people(row.camera_id, row._asdict())
        with self._lock:
            self._camera(row.camera_id).seen_at = datetime.now(UTC)
        self._sync(row.camera_id)

    def on_status(self, topic: str, payload: bytes) -> None:
        """MQTT callback: camera online/offline (Last Will included), health and position."""
        try:
            msg = parse_camera_status(topic, payload)
        except PayloadError as exc:
            log.debug("ignoring bad camera status on %s: %s", topic, exc)
            return
        row = msg.status
        camera_id = row.device_id
        if len(camera_id) > _CAMERA_ID_MAX:
            return
        now = datetime.now(UTC)
        fresh = (now - row.time).total_seconds() <= self.video_settings.stale_after_s
        with self._lock:
            state = self._camera(camera_id)
            state.online = row.online
            state.status_at = now
            if msg.lat is not None and msg.lon is not None:
                state.lat, state.lon = msg.lat, msg.lon
            if msg.synthetic is not None:
                state.synthetic = msg.synthetic
            if msg.description is not None:
                state.description = msg.description
            if row.online and fresh:
                state.seen_at = max(state.seen_at or row.time, min(row.time, now))
            if not row.online or msg.conditions is not None:
                state.conditions = msg.conditions or frozenset()
                state.health = msg.health if row.online else None
        self._sync(camera_id, now)

    # ------------------------------------------------------------------ alerts
    def _wanted(self, state: CameraState, now: datetime) -> dict[str, tuple[str, str]]:
        """Alerts ``{kind: (severity, message)}`` the camera should have now."""
        if state.seen_at is None:
            return {}  # not heard from live since the service started
        silent = (now - state.seen_at).total_seconds()
        cid = state.camera_id
        if state.online is False:
            return {OFFLINE: ("warning", f"camera {cid} is offline (disconnected or its source failed)")}
        if silent > self.video_settings.stale_after_s:
            return {OFFLINE: ("warning", f"camera {cid} is silent: no frames, counts or status for over "
                                         f"{self.video_settings.stale_after_s:g} s")}
        return {alert_kind(c): (sev, msg.format(id=cid)) for c, (sev, msg) in _HEALTH_ALERTS.items() if c in state.conditions}

    def _sync(self, camera_id: str, now: datetime | None = None) -> None:
        """Raise and clear ``camera_id``'s alerts to match its state."""
        if self.ctx is None:
            return
        now = now or datetime.now(UTC)
        with self._lock:
            state = self.cameras.get(camera_id)
            if state is None:
                return
            wanted = self._wanted(state, now)
            lat, lon = state.lat, state.lon
        with self._alert_lock:
            had = self._alerted.get(camera_id, set())
            for kind, (severity, message) in wanted.items():
                self.ctx.alerts.raise_alert(kind, camera_id, message, severity=severity, lat=lat, lon=lon)
            for kind in had - wanted.keys():
                self.ctx.alerts.clear(kind, camera_id)
            self._alerted[camera_id] = set(wanted)

    def tick(self, now: datetime | None = None) -> None:
        """Re-evaluate every camera's alerts at ``now`` (default: the clock): silent cameras go offline."""
        now = now or datetime.now(UTC)
        with self._lock:
            ids = list(self.cameras)
        for camera_id in ids:
            self._sync(camera_id, now)

    def on_snapshot(self, topic: str, payload: bytes) -> None:
        """MQTT callback: the latest annotated JPEG (retained)."""
        levels = topic.split("/")
        camera_id = levels[3] if len(levels) == 5 else ""
        if not camera_id or len(camera_id) > _CAMERA_ID_MAX or not payload.startswith(b"\xff\xd8"):
            return
        with self._lock:
            state = self._camera(camera_id)
            state.snapshot = bytes(payload)
            state.snapshot_at = datetime.now(UTC)

    # ------------------------------------------------------------------ queries
    def snapshot(self, camera_id: str) -> bytes | None:
        """Latest JPEG of a camera: from MQTT, else from the data dir, else None."""
        with self._lock:
            state = self.cameras.get(camera_id)
            if state is not None and state.snapshot is not None:
                return state.snapshot
        if self.data_dir is not None and len(camera_id) <= _CAMERA_ID_MAX and "/" not in camera_id:
            path = snapshot_path(self.data_dir, camera_id)
            if path.is_file():
                return path.read_bytes()
        return None

    def summary(self, state: CameraState, now: datetime) -> dict[str, Any]:
        observed = state.observed_at()
        age = None if observed is None else round((now - observed).total_seconds(), 1)
        return {
            "camera_id": state.camera_id,
            "online": state.online,
            "status_at": state.status_at,
            "observed_at": observed,
            "age_s": age,
            "stale": age is None or age > self.video_settings.stale_after_s,
            "lines": sorted({k[0] for k in state.counts}),
            "health": state.health,
            "synthetic": state.synthetic,
            "description": state.description,
        }

    def _snapshot_at(self, camera_id: str, from_mqtt: datetime | None) -> datetime | None:
        """When the latest snapshot was taken: received over MQTT, else the file's mtime, else None."""
        if from_mqtt is not None:
            return from_mqtt
        if self.data_dir is not None and len(camera_id) <= _CAMERA_ID_MAX and "/" not in camera_id:
            try:
                return datetime.fromtimestamp(snapshot_path(self.data_dir, camera_id).stat().st_mtime, UTC)
            except OSError:
                return None
        return None

    def list_cameras(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        with self._lock:
            return [self.summary(s, now) for _, s in sorted(self.cameras.items())]

    def camera(self, camera_id: str) -> dict[str, Any] | None:
        """Summary plus the counts of the camera's latest interval (None if unknown)."""
        now = datetime.now(UTC)
        with self._lock:
            state = self.cameras.get(camera_id)
            if state is None:
                return None
            out = self.summary(state, now)
            from_mqtt = state.snapshot_at
            latest = state.latest_interval()
            rows = [r for r in state.counts.values() if r["interval_start"] == latest]
            out["people"] = self._people(state)
        out["snapshot_at"] = self._snapshot_at(camera_id, from_mqtt)
        out["interval_start"] = latest
        out["interval_s"] = rows[0]["interval_s"] if rows else None
        out["counts"] = [
            {k: r[k] for k in ("line_id", "direction", "vehicle_class", "count", "mean_speed_kmh", "occupancy")}
            for r in sorted(rows, key=lambda r: (r["line_id"], r["direction"], r["vehicle_class"]))
        ]
        return out


    @staticmethod
    def _people(state: CameraState) -> dict[str, Any] | None:
        """The camera's latest people interval: zones present and line crossings (None: none)."""
        latest = state.latest_people()
        if latest is None:
            return None
        rows = sorted((r for r in state.people.values() if r["interval_start"] == latest),
                      key=lambda r: (r["measure"] != "present", r["place_id"], r["measure"]))
        lines = [{"line_id": r["place_id"], "direction": r["measure"], "crossings": r["crossings"]}
                 for r in rows if r["measure"] != "present"]
        return {
            "interval_start": latest, "interval_s": rows[0]["interval_s"], "crossings_measured": bool(lines),
            "zones": [{"zone_id": r["place_id"], "people_mean": r["people_mean"], "people_max": r["people_max"],
                       "samples": r["samples"]} for r in rows if r["measure"] == "present"],
            "lines": lines,
        }


def create_service() -> CameraService:
    """Factory used by the composition root."""
    return CameraService()

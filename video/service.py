"""Live camera state for the API: latest counts, status and snapshot of every camera.

Rebuilt at start from ``traffic_counts`` (last day) and kept current from MQTT: counts
(``its/v1/cameras/+/counts``), status (``its/v1/devices/camera/+/status``) and the retained
JPEG snapshots (``its/v1/cameras/+/snapshot``). Snapshots not seen on MQTT are read from
``<data_dir>/video/snapshots/`` (a worker on the same host writes them there).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter

from its.ingest import PayloadError
from its.service import Context, Service
from video.config import VideoSettings
from video.ingest import parse_counts
from video.worker import snapshot_path

__all__ = ["CameraService", "CameraState", "create_service"]

log = logging.getLogger(__name__)
_CAMERA_ID_MAX = 64


@dataclass
class CameraState:
    """What the API knows about one camera."""

    camera_id: str
    online: bool | None = None
    status_at: datetime | None = None
    counts: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    snapshot: bytes | None = None
    snapshot_at: datetime | None = None

    def latest_interval(self) -> datetime | None:
        return max((r["interval_start"] for r in self.counts.values()), default=None)


class CameraService(Service):
    """In-memory camera state answering ``/v1/cameras``."""

    name = "video"

    def __init__(self, settings: VideoSettings | None = None) -> None:
        self.video_settings = settings or VideoSettings()
        self.cameras: dict[str, CameraState] = {}
        self.data_dir: Path | None = None
        self._lock = threading.Lock()
        self._ready = False

    # ------------------------------------------------------------------ lifecycle
    def start(self, ctx: Context) -> None:
        from video.store import latest_counts

        self.data_dir = ctx.settings.data_dir
        since = datetime.now(UTC) - timedelta(days=1)
        for rec in latest_counts(ctx.read_db, since):
            self._store_record(str(rec.pop("camera_id")), rec)
        ctx.subscribe("its/v1/cameras/+/counts", self.on_counts)
        ctx.subscribe("its/v1/devices/camera/+/status", self.on_status)
        ctx.subscribe("its/v1/cameras/+/snapshot", self.on_snapshot)
        self._ready = True

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
        cam, line, direction, cls, start, interval_s, count, mps, occ = row
        self._store_record(cam, {
            "line_id": line, "direction": direction, "vehicle_class": cls, "interval_start": start,
            "interval_s": interval_s, "count": count,
            "mean_speed_kmh": None if mps is None else mps * 3.6, "occupancy": occ,
        })

    def on_status(self, topic: str, payload: bytes) -> None:
        """MQTT callback: camera online/offline (Last Will included)."""
        levels = topic.split("/")
        camera_id = levels[4] if len(levels) == 6 else ""
        if not camera_id or len(camera_id) > _CAMERA_ID_MAX:
            return
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(obj, dict) or not isinstance(obj.get("online"), bool):
            return
        with self._lock:
            state = self._camera(camera_id)
            state.online = obj["online"]
            state.status_at = datetime.now(UTC)

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
        latest = state.latest_interval()
        observed = None if latest is None else latest + timedelta(seconds=max(r["interval_s"] for r in state.counts.values()))
        age = None if observed is None else round((now - observed).total_seconds(), 1)
        return {
            "camera_id": state.camera_id,
            "online": state.online,
            "status_at": state.status_at,
            "observed_at": observed,
            "age_s": age,
            "stale": age is None or age > self.video_settings.stale_after_s,
            "lines": sorted({k[0] for k in state.counts}),
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
        out["snapshot_at"] = self._snapshot_at(camera_id, from_mqtt)
        out["interval_start"] = latest
        out["interval_s"] = rows[0]["interval_s"] if rows else None
        out["counts"] = [
            {k: r[k] for k in ("line_id", "direction", "vehicle_class", "count", "mean_speed_kmh", "occupancy")}
            for r in sorted(rows, key=lambda r: (r["line_id"], r["direction"], r["vehicle_class"]))
        ]
        return out


def create_service() -> CameraService:
    """Factory used by the composition root."""
    return CameraService()

"""HTTP routes of the video domain: camera list and latest counts (public), snapshots
(dispatcher).

Each camera carries its position (``lat``, ``lon`` in degrees, ``null`` when unknown): the
mean position of its counting lines as placed on the road network (``traffic_camera_links``,
one row per line and direction). The positions are read from the store at most every
``POSITIONS_REFRESH_S`` seconds and answered from memory in between.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from its import auth
from its.db import Database
from its.errors import OrjsonResponse, not_found
from video.schemas import CameraDetail, CameraList

if TYPE_CHECKING:
    from video.service import CameraService

__all__ = ["POSITIONS_REFRESH_S", "CameraPositions", "build_router"]

log = logging.getLogger(__name__)
POSITIONS_REFRESH_S = 60.0  # how long camera positions are served from memory before a reload (s)


class CameraPositions:
    """Camera id → (lat, lon) degrees, from the counting lines' positions, cached in memory.

    A reload runs on the request that finds the cache older than ``refresh_s`` (one small
    grouped query); concurrent requests meanwhile get the previous positions. When the store
    cannot be read the previous positions are kept.
    """

    def __init__(self, refresh_s: float = POSITIONS_REFRESH_S) -> None:
        self.refresh_s = refresh_s
        self._positions: dict[str, tuple[float, float]] = {}
        self._loaded_at = -float("inf")
        self._lock = threading.Lock()

    def get(self, db: Database | None) -> dict[str, tuple[float, float]]:
        """Current positions, reloaded from ``db`` when stale (``db`` None: what is cached)."""
        if db is not None and time.monotonic() - self._loaded_at >= self.refresh_s and self._lock.acquire(blocking=False):
            try:
                rows = db.fetchall("SELECT camera_id, avg(lat), avg(lon) FROM traffic_camera_links GROUP BY camera_id")
                self._positions = {str(c): (float(la), float(lo)) for c, la, lo in rows}
            except Exception as exc:
                log.warning("video: camera positions unavailable: %s", exc)
            finally:
                self._loaded_at = time.monotonic()
                self._lock.release()
        return self._positions

    def invalidate(self) -> None:
        """Reload on the next request (e.g. after cameras were placed)."""
        self._loaded_at = -float("inf")


def _read_db(request: Request) -> Database | None:
    ctx = getattr(request.app.state, "ctx", None)
    return None if ctx is None else ctx.read_db  # type: ignore[no-any-return]


def _with_position(camera: dict[str, Any], positions: dict[str, tuple[float, float]]) -> dict[str, Any]:
    lat, lon = positions.get(camera["camera_id"], (None, None))
    return {**camera, "lat": lat, "lon": lon}

_CameraId = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Camera id from cameras.yaml.")


def build_router(service: CameraService) -> APIRouter:
    """Routers over ``service``'s in-memory state."""
    public = APIRouter(prefix="/v1/cameras", tags=["cameras"], dependencies=[Depends(auth.public)])
    control = APIRouter(prefix="/v1/cameras", tags=["cameras"], dependencies=[Depends(auth.dispatcher)])
    positions = CameraPositions()

    @public.get("", response_model=CameraList)
    def list_cameras(request: Request) -> Response:
        """Every known camera with its status, position (lat/lon degrees or null) and the freshness of its counts."""
        where = positions.get(_read_db(request))
        return OrjsonResponse({"cameras": [_with_position(c, where) for c in service.list_cameras()]})

    @public.get("/{camera_id}", response_model=CameraDetail)
    def camera_counts(request: Request, camera_id: str = _CameraId) -> Response:
        """Position, vehicle counts of the camera's latest interval per line, direction and class, and its pedestrians."""
        found = service.camera(camera_id)
        if found is None:
            raise not_found("camera", camera_id)
        return OrjsonResponse(_with_position(found, positions.get(_read_db(request))))

    @control.get("/{camera_id}/snapshot.jpg", response_class=Response, responses={200: {
        "description": "The latest annotated JPEG (counting lines, tracks and counts drawn); `Cache-Control: no-store`.",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}})
    def camera_snapshot(camera_id: str = _CameraId) -> Response:
        """Latest annotated JPEG (lines, tracks, counts drawn)."""
        jpeg = service.snapshot(camera_id)
        if jpeg is None:
            raise not_found("camera snapshot", camera_id)
        return Response(content=jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    router = APIRouter()
    router.include_router(public)
    router.include_router(control)
    return router

"""HTTP routes of the video domain: camera list and latest counts (public), snapshots
(dispatcher)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from its import auth
from its.errors import not_found

if TYPE_CHECKING:
    from video.service import CameraService

__all__ = ["build_router"]

_CameraId = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Camera id from cameras.yaml.")


def build_router(service: CameraService) -> APIRouter:
    """Routers over ``service``'s in-memory state."""
    public = APIRouter(prefix="/v1/cameras", tags=["cameras"], dependencies=[Depends(auth.public)])
    control = APIRouter(prefix="/v1/cameras", tags=["cameras"], dependencies=[Depends(auth.dispatcher)])

    @public.get("")
    def list_cameras() -> dict[str, Any]:
        """Every known camera with its status and the freshness of its counts."""
        return {"cameras": service.list_cameras()}

    @public.get("/{camera_id}")
    def camera_counts(camera_id: str = _CameraId) -> dict[str, Any]:
        """Counts of the camera's latest interval per line, direction and class."""
        found = service.camera(camera_id)
        if found is None:
            raise not_found("camera", camera_id)
        return found

    @control.get("/{camera_id}/snapshot.jpg", response_class=Response)
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

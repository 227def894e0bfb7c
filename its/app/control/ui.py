"""The ``/control`` web UI: login and app pages, their static assets, config and the live stream.

Pages and assets are plain files in ``its/app/control/static/`` (no third-party code). The app
page needs a dispatcher session (anonymous browsers are redirected to the login page); the
JSON routes under ``/v1/control`` answer 401/403 like every other control route.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from its.app.control.schemas import ControlSettings
from its.app.routes import iter_api_routes
from its.auth import AdminUser, DispatcherUser, Principal, dispatcher, public
from its.errors import ApiError, OrjsonResponse, bad_request, not_found
from its.service import Context

from .views import AlertHub, event_stream

__all__ = ["STATIC_DIR", "ControlConfig", "alert_hub", "ui_router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
_ASSET = re.compile(r"^[a-z0-9_-]{1,40}\.(js|css|svg)$")
_MEDIA = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}
_NO_CACHE = {"Cache-Control": "no-cache"}
_hub_lock = threading.Lock()

ui_router = APIRouter(tags=["control-ui"])


class ControlConfig(BaseModel):
    """What the control-centre page needs from the server's settings."""

    basemap_tile_url: str | None = Field(
        None, max_length=500,
        description="XYZ tile URL template with {z}, {x}, {y} (http/https) drawn under the map; null: offline map.",
    )


def _ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def alert_hub(request: Request) -> AlertHub:
    """The app's :class:`AlertHub`, created on first use and listening to the app's AlertSink."""
    hub: AlertHub | None = getattr(request.app.state, "control_alert_hub", None)
    if hub is None:
        with _hub_lock:
            hub = getattr(request.app.state, "control_alert_hub", None)
            if hub is None:
                hub = AlertHub(_ctx(request).alerts)
                request.app.state.control_alert_hub = hub
    return hub


def _current_config(request: Request) -> ControlConfig:
    override = getattr(request.app.state, "control_config", None)
    if isinstance(override, ControlConfig):
        return override
    return ControlConfig(basemap_tile_url=_ctx(request).settings.basemap_tile_url)


def _check_tile_url(url: str | None, own_host: str) -> str | None:
    """A tile template the page may load under its CSP (``img-src 'self' https:``)."""
    if url is None or url == "":
        return None
    parts = urlsplit(url)
    if not parts.netloc or not (parts.scheme == "https" or (parts.scheme == "http" and parts.netloc == own_host)):
        raise bad_request("basemap_tile_url must be an https:// URL (or http:// on this server)")
    if not all(k in url for k in ("{z}", "{x}", "{y}")):
        raise bad_request("basemap_tile_url must contain {z}, {x} and {y}")
    return url


def _data_routes(request: Request) -> list[str]:
    """GET route templates of the API's data (``/v1/...``, ``/gtfs-rt/...``) that this app serves
    (computed once per app from its route table)."""
    cached: list[str] | None = getattr(request.app.state, "control_data_routes", None)
    if cached is None:
        cached = sorted({path for path, route in iter_api_routes(request.app.routes)
                         if "GET" in (route.methods or ()) and path.startswith(("/v1/", "/gtfs-rt/"))})
        request.app.state.control_data_routes = cached
    return cached


# --------------------------------------------------------------------------- pages

@ui_router.get("/control/login", include_in_schema=False)
def login_page(_p: Annotated[Principal, Depends(public)]) -> FileResponse:
    """The login form (anyone)."""
    return FileResponse(STATIC_DIR / "login.html", media_type="text/html; charset=utf-8", headers=_NO_CACHE)


@ui_router.get("/control", include_in_schema=False, response_model=None)
def app_page(request: Request, _p: Annotated[Principal, Depends(public)]) -> Response:
    """The control-centre page: dispatchers and admins; anonymous browsers go to the login page."""
    try:
        dispatcher(request)
    except ApiError as exc:
        if exc.status == 401:
            return RedirectResponse("/control/login", status_code=303)
        raise
    return FileResponse(STATIC_DIR / "control.html", media_type="text/html; charset=utf-8", headers=_NO_CACHE)


@ui_router.get("/control/", include_in_schema=False, response_model=None)
def app_page_slash(_p: Annotated[Principal, Depends(public)]) -> Response:
    return RedirectResponse("/control", status_code=308)


@ui_router.get("/control/static/{name}", include_in_schema=False)
def asset(name: str, _p: Annotated[Principal, Depends(public)]) -> FileResponse:
    """A static script, stylesheet or icon of the UI (code only, no data: public)."""
    path = STATIC_DIR / name
    if not _ASSET.match(name) or not path.is_file():
        raise not_found("asset", name)
    return FileResponse(path, media_type=_MEDIA[name.rsplit(".", 1)[1]], headers=_NO_CACHE)


# --------------------------------------------------------------------------- JSON routes

@ui_router.get("/v1/control/config", tags=["control"], response_model=ControlSettings)
def get_config(request: Request, user: DispatcherUser) -> Response:
    """Map settings for the UI, who is logged in, which data routes this API serves (the UI
    only polls routes whose domain service is mounted) and the panels and map layers each
    registered domain feeds (its descriptor's ``control_panels``)."""
    from its.app.registry import domains

    return OrjsonResponse({**_current_config(request).model_dump(), "username": user.name, "role": user.role,
                           "routes": _data_routes(request),
                           "panels": {d.name: list(d.control_panels) for d in domains() if d.control_panels}})


@ui_router.put("/v1/control/config", tags=["control"], response_model=ControlConfig)
def put_config(body: ControlConfig, request: Request, _u: AdminUser) -> Response:
    """Change the UI settings of this API process (admin; overrides ``ITS_BASEMAP_TILE_URL``)."""
    config = ControlConfig(basemap_tile_url=_check_tile_url(body.basemap_tile_url, request.headers.get("host", "")))
    request.app.state.control_config = config
    return OrjsonResponse(config.model_dump())


_STREAM: dict[int | str, dict[str, Any]] = {200: {
    "description": "Server-sent events, endless: `snapshot` (`{alerts: [Alert], version, server_time}`), then "
                   "`alert` (`{event: raised|cleared|acked, alert: Alert, version}`) per change and a `heartbeat` "
                   "(`{server_time, version}`) every few seconds; `resync` (then the stream ends) when the client "
                   "fell too far behind. `snapshot` and `alert` events carry an `id`: reconnecting with "
                   "`Last-Event-ID` replays the `alert` events after it from a bounded buffer, or sends `reset` "
                   "(`{reason, last_event_id}`) and a fresh `snapshot` when it cannot.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}}


@ui_router.get("/v1/control/stream", tags=["control"], response_class=StreamingResponse, responses=_STREAM)
async def stream(request: Request, _u: DispatcherUser) -> StreamingResponse:
    """Server-sent events: ``snapshot`` (active alerts), then ``alert`` changes
    (``raised|cleared|acked``) and a ``heartbeat`` with the server time every few seconds."""
    return StreamingResponse(
        event_stream(alert_hub(request), request.is_disconnected, last_event_id=request.headers.get("last-event-id")),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

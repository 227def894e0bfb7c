"""FastAPI application factory: mounts the domain services' routers, ops routes and errors."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from its import metrics
from its.alerts import AlertSink
from its.app.openapi import install_docs
from its.app.reports.heartbeat import start_heartbeat  # API availability (its.app.reports.platform)
from its.app.schemas import Health, Readiness
from its.auth import Authenticator
from its.db import Database
from its.errors import OrjsonResponse, install_error_handlers
from its.http_limits import HttpLimits
from its.http_protocol import Compression, HeadAsGet, cors_options
from its.service import Context, LiveFeed, Service
from its.settings import Settings

__all__ = ["build_context", "create_app"]

log = logging.getLogger(__name__)


_OPENAPI_TAGS = [
    {"name": "arrivals", "description": "Stops, real-time arrivals, routes, vehicles and the GTFS-realtime feeds."},
    {"name": "parking", "description": "Parking sites, availability, history, forecasts, changes (SSE), DATEX II."},
    {"name": "cameras", "description": "Camera counts (public) and annotated snapshots (dispatchers)."},
    {"name": "traffic", "description": "Congestion (GeoJSON), incidents, travel time indices, travel time."},
    {"name": "auth", "description": "Dispatcher login and session."},
    {"name": "control", "description": "Dispatcher alerts, control-centre settings and the alert stream (SSE)."},
    {"name": "reports", "description": "Efficiency indicators (JSON, CSV) and stored reports."},
    {"name": "ops", "description": "Liveness, readiness and Prometheus metrics."},
]


def build_context(settings: Settings, broker_kind: str = "external") -> Context:
    """Open the database pools and the live MQTT feed described by ``settings``."""
    if not settings.database_url:
        raise ValueError("build_context needs a database URL (start the runtime first)")
    db = Database(settings.database_url, maxconn=16)
    read_db = Database(settings.database_read_url, maxconn=16) if settings.database_read_url else db
    live = None
    if settings.mqtt_url:
        try:
            live = LiveFeed(settings.mqtt_url, ca_file=settings.mqtt_ca_file)
        except ConnectionError as exc:
            log.error("live feed unavailable: %s", exc)
    return Context(settings=settings, db=db, read_db=read_db, alerts=AlertSink(db), live=live, broker_kind=broker_kind)


def create_app(
    settings: Settings,
    services: Sequence[Service] = (),
    *,
    context: Context | None = None,
    extra_routers: Sequence[Any] = (),
) -> FastAPI:
    """Assemble the API.

    Parameters
    ----------
    settings : Settings
        Must carry a database URL (the runtime fills it for embedded defaults).
    services : sequence of Service
        Domain services; each is started in the background at startup and its router mounted.
    context : Context, optional
        Reuse an existing context (the demo shares one between components).
    """
    state: dict[str, Any] = {"ctx": context, "started": False, "errors": {}}
    app = FastAPI(
        title="ITS data platform",
        version="0.1.0",
        description="Real-time bus arrivals, parking availability, camera counts and congestion.",
        default_response_class=OrjsonResponse,
        lifespan=_lifespan(settings, services, state, context),
        openapi_tags=_OPENAPI_TAGS,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = tuple(services)  # the live services, for what composes them (the control playbook)
    install_error_handlers(app)
    install_docs(app)

    _ops_routes(app, state, services)

    for router in extra_routers:
        app.include_router(router)
    for svc in services:
        app.include_router(svc.router())

    # innermost first: gzip over 1 KB (never event streams), metrics and security headers, HEAD as GET
    app.add_middleware(Compression)
    app.add_middleware(_OpsMiddleware)
    app.add_middleware(HeadAsGet)
    # request body and stream limits (ITS_MAX_BODY_BYTES, ITS_MAX_STREAMS...), 413 before reading
    app.add_middleware(HttpLimits, settings=settings)
    cors = cors_options(settings.cors_origin_list())
    if cors is not None:  # outermost: preflights answered first, CORS headers on every answer (limits' too)
        app.add_middleware(CORSMiddleware, **cors)
    return app


def _readiness(state: dict[str, Any], services: Sequence[Service]) -> dict[str, Any]:
    """``/readyz``: database and broker reachable, every service's state rebuilt."""
    ctx: Context | None = state["ctx"]
    checks: dict[str, Any] = {}
    checks["database"] = bool(ctx and ctx.db.ping())
    checks["broker"] = bool(ctx and ctx.live and ctx.live.connected())
    for svc in services:
        checks[f"service:{svc.name}"] = bool(state["started"] or svc.ready()) and svc.ready() and svc.name not in state["errors"]
    ok = all(checks.values())
    detail: dict[str, Any] = {"ready": ok, "checks": checks}
    if ctx is not None:
        detail["broker_kind"] = ctx.broker_kind
        if ctx.broker_kind == "amqtt":
            from its.runtime import AMQTT_WARNING

            detail["warning"] = AMQTT_WARNING
    if state["errors"]:
        detail["errors"] = state["errors"]
    return detail


def _lifespan(settings: Settings, services: Sequence[Service], state: dict[str, Any],
              context: Context | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the services in the background and the heartbeat; stop them and close what we opened."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = state["ctx"] or build_context(settings)
        state["ctx"] = ctx
        app.state.ctx = ctx
        app.state.auth = Authenticator(settings, ctx.read_db)
        app.state.started_at = time.time()

        def start_services() -> None:
            for svc in services:
                try:
                    svc.start(ctx)
                except Exception as exc:
                    log.exception("service %s failed to start", svc.name)
                    state["errors"][svc.name] = f"{type(exc).__name__}: {exc}"
            state["started"] = True

        threading.Thread(target=start_services, name="service-start", daemon=True).start()
        heartbeat = start_heartbeat(ctx.db, lambda: bool(_readiness(state, services)["ready"]))
        try:
            yield
        finally:
            heartbeat.stop()
            for svc in services:
                try:
                    svc.stop()
                except Exception:
                    log.exception("service %s failed to stop", svc.name)
            if context is None:
                if ctx.live is not None:
                    ctx.live.close()
                ctx.db.close()
                if ctx.read_db is not ctx.db:
                    ctx.read_db.close()

    return lifespan


def _ops_routes(app: FastAPI, state: dict[str, Any], services: Sequence[Service]) -> None:
    """``/healthz``, ``/readyz``, ``/metrics``."""

    @app.get("/healthz", tags=["ops"], response_model=Health)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], response_model=Readiness, response_model_exclude_unset=True,
             responses={503: {"model": Readiness, "description": "Not ready: the same body, some check false."}})
    def readyz(response: Response) -> dict[str, Any]:
        """Readiness: database and broker reachable, every service's state rebuilt."""
        detail = _readiness(state, services)
        if not detail["ready"]:
            response.status_code = 503
        return detail

    @app.get("/metrics", tags=["ops"], response_class=Response,
             responses={200: {"description": "Prometheus text exposition format.",
                              "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
    def prometheus_metrics() -> Response:
        """Prometheus exposition format."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


_CONTROL_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob: https:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'"),
]
_COMMON_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


async def _refuse(send: Any, status: int, body: bytes) -> None:
    """Answer with the error envelope ``body`` before the app sees the request."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *_COMMON_HEADERS]})
    await send({"type": "http.response.body", "body": body})
    metrics.HTTP_REQUESTS.labels("rejected", str(status)).inc()


class _OpsMiddleware:
    """Pure ASGI middleware: request metrics and security headers (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            # NUL can never be part of an id or a value; refuse it before it reaches SQL
            await _refuse(send, 422, b'{"error":{"code":"invalid_parameter","message":"NUL characters are not allowed"}}')
            return
        control = scope["path"].startswith("/control")
        status = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = _COMMON_HEADERS + (_CONTROL_HEADERS if control else [])
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_REQUESTS.labels(label, str(status[0])).inc()
            metrics.HTTP_SECONDS.labels(label).observe(time.perf_counter() - started)

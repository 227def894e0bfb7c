"""FastAPI application factory: mounts the domain services' routers, ops routes and errors."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from its import metrics
from its.alerts import AlertSink
from its.auth import Authenticator
from its.db import Database
from its.errors import OrjsonResponse, install_error_handlers
from its.reports.heartbeat import start_heartbeat  # API availability history (its.reports.platform)
from its.service import Context, LiveFeed, Service
from its.settings import Settings

__all__ = ["build_context", "create_app"]

log = logging.getLogger(__name__)


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
        heartbeat = start_heartbeat(ctx.db, lambda: bool(readyz(Response())["ready"]))
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

    app = FastAPI(
        title="ITS data platform",
        version="0.1.0",
        description="Real-time bus arrivals, parking availability, camera counts and congestion.",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(response: Response) -> dict[str, Any]:
        """Readiness: database and broker reachable, every service's state rebuilt."""
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
        if not ok:
            response.status_code = 503
        return detail

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def prometheus_metrics() -> Response:
        """Prometheus exposition format."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in extra_routers:
        app.include_router(router)
    for svc in services:
        app.include_router(svc.router())

    app.add_middleware(_OpsMiddleware)
    return app


_CONTROL_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob: https:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'"),
]
_COMMON_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


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
            body = b'{"error":{"code":"invalid_parameter","message":"NUL characters are not allowed"}}'
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json"), *_COMMON_HEADERS]})
            await send({"type": "http.response.body", "body": body})
            metrics.HTTP_REQUESTS.labels("rejected", "422").inc()
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

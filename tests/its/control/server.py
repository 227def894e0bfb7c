"""A real API server (uvicorn in a thread, real PostgreSQL and Mosquitto) for the control-centre tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from its.app.control import control_routers
from its.app.factory import build_context, create_app
from its.auth import create_user
from its.db import Database
from its.service import Context, Service
from its.settings import Settings

DISPATCHER = ("dana", "dispatch-pass-1")
ADMIN = ("alex", "admin-pass-123")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A running API: its base URL, context (AlertSink, db) and the uvicorn server."""

    url: str
    port: int
    ctx: Context
    app: object
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",  # type: ignore[arg-type]
                                timeout_graceful_shutdown=1, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=15)
        self.server = None

    @contextmanager
    def login(self, user: tuple[str, str] = DISPATCHER) -> Iterator[httpx.Client]:
        """An HTTP client holding a session cookie and sending the CSRF token."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            r = client.post("/v1/auth/login", json={"username": user[0], "password": user[1]})
            r.raise_for_status()
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            yield client


def start_server(settings: Settings, db: Database, services: Sequence[Service] = ()) -> LiveServer:
    create_user(db, *DISPATCHER, role="dispatcher")
    create_user(db, *ADMIN, role="admin")
    ctx = build_context(settings)
    app = create_app(settings, services, context=ctx, extra_routers=control_routers())
    port = free_port()
    server = LiveServer(f"http://127.0.0.1:{port}", port, ctx, app)
    server.start()
    return server


def close_server(server: LiveServer) -> None:
    server.stop()
    if server.ctx.live is not None:
        server.ctx.live.close()
    server.ctx.db.close()

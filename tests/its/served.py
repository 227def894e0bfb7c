"""The real app for the security tests: parking service (demo sites), control routes, the
request limits around it; callable from any client IP (TestClient) or served by uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from its.app.control import control_routers
from its.app.factory import build_context, create_app
from its.auth import Authenticator, create_user
from its.broker import free_port
from its.db import Database, migrate
from its.http_limits import HttpLimits
from its.http_server import uvicorn_options
from its.settings import Settings, load_settings
from parking.config import ParkingSettings
from parking.service import ParkingService
from parking.sites import read_sites
from parking.store import upsert_sites

from ..conftest import create_database, drop_database
from .helpers import wait_for

DEMO_SITES = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"
DISPATCHER = ("disp", "the-right-password")


class Served:
    """The real app (wrapped in the request limits) and a way to call it from any client IP."""

    def __init__(self, app: FastAPI, settings: Settings, db: Database) -> None:
        self.app, self.settings, self.db = app, settings, db
        self.limited = HttpLimits(app, settings)

    def reset_auth(self, **overrides: Any) -> Authenticator:
        """A fresh authenticator (empty throttles and caches) with some settings changed."""
        auth = Authenticator(self.settings.model_copy(update=overrides), self.db)
        self.app.state.auth = auth
        return auth

    def client(self, ip: str) -> TestClient:
        return TestClient(self.limited, client=(ip, 50000))


@contextmanager
def served_app(data_dir: Path, **overrides: Any) -> Iterator[Served]:
    """A fresh database with the demo car parks and a dispatcher; the app started on it
    (``overrides``: settings, e.g. ``cors_origins``)."""
    url = create_database()
    db = Database(url)
    migrate(db)
    upsert_sites(db, read_sites(DEMO_SITES), datetime.now(UTC))
    create_user(db, *DISPATCHER, "dispatcher")
    settings = load_settings(database_url=url, mqtt_url=None, data_dir=data_dir, **overrides)
    ctx = build_context(settings)
    service = ParkingService(ParkingSettings(timezone="UTC"))
    app = create_app(settings, [service], context=ctx, extra_routers=control_routers())
    try:
        with TestClient(app):
            assert wait_for(service.ready, 60)
            yield Served(app, settings, db)
    finally:
        ctx.db.close()
        db.close()
        drop_database(url)


@contextmanager
def uvicorn_server(app: FastAPI, settings: Settings) -> Iterator[int]:
    """Serve ``app`` (already started) as ``its serve`` does: limits middleware and server
    options from ``settings``; yield the port."""
    port = free_port()
    config = uvicorn.Config(HttpLimits(app, settings), host="127.0.0.1", port=port, lifespan="off",
                            **uvicorn_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)

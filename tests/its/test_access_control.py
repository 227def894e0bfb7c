"""Every route declares its audience; anonymous → 401, wrong role → 403, right role passes.

The matrix walks the assembled app's route table, so a new route cannot be left open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from its.app.control import control_routers
from its.app.factory import build_context, create_app
from its.app.registry import domain_services
from its.app.routes import iter_api_routes, route_audience
from its.auth import create_api_key, create_user
from its.db import Database
from its.settings import Settings

OPS = {"/healthz", "/readyz", "/metrics"}
LOGIN = {"/v1/auth/login"}


@pytest.fixture
def app_client(city_settings: Settings, db: Database) -> Iterator[tuple[FastAPI, TestClient]]:
    settings = city_settings
    ctx = build_context(settings)
    app = create_app(settings, domain_services(), context=ctx, extra_routers=control_routers())
    with TestClient(app) as client:
        yield app, client
    if ctx.live:
        ctx.live.close()
    ctx.db.close()


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-id", path)


def _routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    return [(p, r) for p, r in iter_api_routes(app.routes) if not p.startswith(("/docs", "/openapi", "/redoc"))]


def test_every_route_declares_an_audience(app_client: tuple[FastAPI, TestClient]) -> None:
    app, _ = app_client
    missing = [p for p, r in _routes(app) if p not in OPS and route_audience(r) is None]
    assert not missing, f"routes without an audience dependency: {missing}"


def test_access_matrix(app_client: tuple[FastAPI, TestClient], db: Database) -> None:
    app, client = app_client
    create_user(db, "disp", "dispatcher-pass", "dispatcher")
    create_user(db, "boss", "admin-pass-123", "admin")
    key = create_api_key(db, "matrix", 100_000)

    def login(user: str, pw: str) -> dict[str, str]:
        r = client.post("/v1/auth/login", json={"username": user, "password": pw})
        assert r.status_code == 200, r.text
        body = r.json()
        token = r.cookies["its_session"]
        client.cookies.clear()
        return {"Authorization": f"Bearer {token}", "X-CSRF-Token": body["csrf_token"]}

    disp, boss = login("disp", "dispatcher-pass"), login("boss", "admin-pass-123")
    checked = 0
    for path, route in _routes(app):
        if path in OPS or path in LOGIN:
            continue
        aud = route_audience(route)
        url = _concrete(path)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            if "stream" in path or path.endswith("/logout"):
                continue  # endless streams and logout are exercised by their own tests
            anon = client.request(method, url)
            if aud in ("app", "dispatcher", "admin"):
                assert anon.status_code == 401, (method, url, anon.status_code)
                assert anon.json()["error"]["code"] == "unauthorized"
            else:
                assert anon.status_code not in (401, 403), (method, url, anon.status_code)
            if aud == "app":
                ok = client.request(method, url, headers={"X-API-Key": key})
                assert ok.status_code not in (401, 403), (method, url)
            if aud == "admin":
                assert client.request(method, url, headers=disp).status_code == 403, (method, url)
                assert client.request(method, url, headers=boss).status_code not in (401, 403), (method, url)
            if aud == "dispatcher":
                assert client.request(method, url, headers=disp).status_code not in (401, 403), (method, url)
            checked += 1
    assert checked >= 3

"""API shell: ops routes, the JSON error envelope, auth building blocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, Depends, Query
from fastapi.testclient import TestClient

from its.app.control import control_routers
from its.app.factory import build_context, create_app
from its.auth import create_api_key, create_user, public, revoke_api_key
from its.db import Database
from its.errors import not_found
from its.service import Context, Service
from its.settings import Settings

from .helpers import wait_for


class EchoService(Service):
    """A tiny real service: its router has typed query parameters."""

    name = "echo"

    def start(self, ctx: Context) -> None:
        self.ctx = ctx

    def ready(self) -> bool:
        return True

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/v1/echo", dependencies=[Depends(public)])

        @r.get("/near")
        def near(lat: float = Query(ge=-90, le=90), lon: float = Query(ge=-180, le=180),
                 radius_m: float = Query(500, gt=0, le=50_000)) -> dict[str, float]:
            return {"lat": lat, "lon": lon, "radius_m": radius_m}

        @r.get("/items/{item_id}")
        def item(item_id: str) -> dict[str, str]:
            raise not_found("item", item_id)

        return r


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ctx = build_context(settings)
    app = create_app(settings, [EchoService()], context=ctx, extra_routers=control_routers())
    with TestClient(app) as c:
        yield c
    if ctx.live:
        ctx.live.close()
    ctx.db.close()


def test_ops_routes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert wait_for(lambda: client.get("/readyz").status_code == 200, 120)
    r = client.get("/readyz")
    assert r.json()["checks"] == {"database": True, "broker": True, "service:echo": True}
    m = client.get("/metrics")
    assert m.status_code == 200 and "its_http_requests_total" in m.text
    assert client.get("/docs").status_code == 200
    assert "/v1/echo/near" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("query", ["lat=abc&lon=1", "lat=91&lon=0", "lat=1", "lat=1&lon=2&radius_m=-5",
                                   "lat=1&lon=nan", "lat=1&lon=" + "9" * 10000])
def test_bad_query_parameters_give_422_json(client: TestClient, query: str) -> None:
    r = client.get(f"/v1/echo/near?{query}")
    assert r.status_code == 422
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == "invalid_parameter"
    assert body["error"]["message"]


def test_unknown_ids_and_paths_give_404_json(client: TestClient) -> None:
    r = client.get("/v1/echo/items/'; DROP TABLE users; --")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/no/such/path")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.post("/healthz")
    assert r.status_code == 405 and "error" in r.json()


def test_api_keys_quota_and_revocation(client: TestClient, db: Database) -> None:
    key = create_api_key(db, "payment-app", quota_per_min=60)  # burst of 10
    assert db.fetchall("SELECT count(*) FROM api_keys WHERE key_hash = %s", (key,))[0][0] == 0  # stored hashed
    ok = [client.get("/v1/echo/near?lat=1&lon=2", headers={"X-API-Key": key}).status_code for _ in range(12)]
    assert ok[:10] == [200] * 10 and ok[-1] == 429
    r = client.get("/v1/echo/near?lat=1&lon=2", headers={"X-API-Key": key})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    assert client.get("/v1/echo/near?lat=1&lon=2", headers={"X-API-Key": "its_nope_nope"}).status_code == 401
    key2 = create_api_key(db, "other", quota_per_min=6000)
    assert client.get("/v1/echo/near?lat=1&lon=2", headers={"X-API-Key": key2}).status_code == 200
    revoke_api_key(db, key2.split("_")[1])
    client.app.state.auth.forget_keys()  # type: ignore[attr-defined]
    assert client.get("/v1/echo/near?lat=1&lon=2", headers={"X-API-Key": key2}).status_code == 401


def test_dispatcher_login_roles_csrf_logout(client: TestClient, db: Database) -> None:
    create_user(db, "dana", "correct horse", "dispatcher")
    assert client.get("/v1/control/alerts").status_code == 401
    assert client.post("/v1/auth/login", json={"username": "dana", "password": "wrong pass"}).status_code == 401
    r = client.post("/v1/auth/login", json={"username": "dana", "password": "correct horse"})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = r.json()["csrf_token"]
    assert client.get("/v1/control/alerts").json()["alerts"] == []
    client.app.state.ctx.alerts.raise_alert("car_park_full", "site-1", "Site 1 is full")  # type: ignore[attr-defined]
    assert client.post("/v1/control/alerts/car_park_full:site-1/ack").status_code == 403  # no CSRF token
    r = client.post("/v1/control/alerts/car_park_full:site-1/ack", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["acked_by"] == "dana"
    assert db.fetchall("SELECT acked_by FROM alerts WHERE alert_id = 'car_park_full:site-1'") == [("dana",)]
    assert client.post("/v1/control/alerts/nope/ack", headers={"X-CSRF-Token": csrf}).status_code == 404
    assert client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/v1/control/alerts").status_code == 401


def test_login_is_throttled(client: TestClient, db: Database) -> None:
    create_user(db, "eve", "a long password", "dispatcher")
    codes = [client.post("/v1/auth/login", json={"username": "eve", "password": f"guess{i}"}).status_code
             for i in range(12)]
    assert codes[-1] == 429 and codes[0] == 401

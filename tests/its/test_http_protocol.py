"""HTTP for browser apps on the real app (parking, control, an app-key route) served by a real
uvicorn: CORS (``ITS_CORS_ORIGINS``) with preflights carrying ``X-API-Key`` on public, app and
event-stream routes; gzip over 1 KB but never on event streams; ``WWW-Authenticate`` on every
401; ``HEAD`` on every ``GET`` route; conditional requests on the bulk availability."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from its.app.factory import create_app
from its.app.routes import iter_api_routes
from its.auth import AppUser, app_key, create_api_key
from its.conditional import http_date, parse_http_date
from its.errors import API_KEY_CHALLENGE, SESSION_CHALLENGE
from its.http_protocol import GZIP_MIN_BYTES, Compression, cors_options
from its.settings import SettingsError, load_settings

from .served import DISPATCHER, Served, served_app, uvicorn_server

ORIGIN = "https://app.example.org"
STREAMS = ("/v1/parking/stream", "/v1/control/stream")
VOLATILE = {"/metrics", "/v1/parking/availability", "/readyz"}  # their content moves between two requests

app_router = APIRouter(prefix="/v1/test-app", tags=["ops"], dependencies=[Depends(app_key)])


@app_router.get("/whoami")
def whoami(user: AppUser) -> dict[str, str]:
    """An app-key route (the platform's domains publish none yet)."""
    return {"app": user.name}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_app(tmp_path_factory.mktemp("data"), cors_origins=f"{ORIGIN}, http://localhost:5173/") as s:
        s.app.include_router(app_router)
        yield s


@pytest.fixture(scope="module")
def url(served: Served) -> Iterator[str]:
    with uvicorn_server(served.app, served.settings) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def key(served: Served) -> str:
    return create_api_key(served.db, "web-app", 1000)


def _client(url: str, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=20, headers={"Accept-Encoding": "identity", **headers})


def test_cors_setting_is_validated() -> None:
    assert load_settings(cors_origins="").cors_origin_list() == []
    assert load_settings(cors_origins=" https://a.org/ ,http://b.org:8080").cors_origin_list() == [
        "https://a.org", "http://b.org:8080"]
    assert cors_options([]) is None and cors_options(["*"])["allow_origins"] == ["*"]  # type: ignore[index]
    for bad in ("a.org", "ftp://a.org", "https://a.org/path", "https://user@a.org", "https://a.org:99999"):
        with pytest.raises(SettingsError, match="ITS_CORS_ORIGINS"):
            load_settings(cors_origins=bad)


@pytest.mark.parametrize("path", ["/v1/parking/sites", "/v1/test-app/whoami", *STREAMS])
def test_preflight_with_an_api_key_succeeds(url: str, path: str) -> None:
    with _client(url) as http:
        res = http.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                                          "Access-Control-Request-Headers": "x-api-key, last-event-id"})
        assert res.status_code == 200, res.text
        assert res.headers["access-control-allow-origin"] == ORIGIN
        allowed = {h.strip().lower() for h in res.headers["access-control-allow-headers"].split(",")}
        assert {"x-api-key", "last-event-id", "if-none-match", "authorization"} <= allowed
        assert "GET" in res.headers["access-control-allow-methods"] and "origin" in res.headers["vary"].lower()
        other = http.options(path, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET",
                                            "Access-Control-Request-Headers": "x-api-key"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_cors_headers_on_answers_errors_and_streams(url: str, key: str) -> None:
    with _client(url, Origin=ORIGIN) as http:
        ok = http.get("/v1/test-app/whoami", headers={"X-API-Key": key})
        assert ok.status_code == 200 and ok.json()["app"] == key.split("_")[1]
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        exposed = {h.strip().lower() for h in ok.headers["access-control-expose-headers"].split(",")}
        assert {"etag", "last-modified", "retry-after", "www-authenticate"} <= exposed
        refused = http.get("/v1/parking/sites", params={"lat": 0, "lon": 0}, headers={"X-API-Key": "its_bad_key"})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN
        local = http.get("/healthz", headers={"Origin": "http://localhost:5173"})
        assert local.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "access-control-allow-origin" not in http.get("/healthz", headers={"Origin": "https://evil.example"}).headers
        with http.stream("GET", "/v1/parking/stream", headers={"X-API-Key": key, "Accept-Encoding": "gzip"}) as res:
            assert res.status_code == 200 and res.headers["access-control-allow-origin"] == ORIGIN
            assert res.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in res.headers  # never compressed: a compressor holds events back
            started = time.monotonic()
            first = next(res.iter_lines())
            assert first.startswith("event: availability") and time.monotonic() - started < 5


def test_cors_is_off_without_origins(tmp_path: Any) -> None:
    app = create_app(load_settings(database_url="postgresql://unused", mqtt_url=None, data_dir=tmp_path))
    client = TestClient(app)  # no lifespan: only the middleware answers
    res = client.options("/healthz", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert res.status_code == 405 and "access-control-allow-origin" not in res.headers
    assert "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": ORIGIN}).headers


def test_gzip_over_1_kb_only(url: str) -> None:
    with _client(url, **{"Accept-Encoding": "gzip"}) as http:
        big = http.get("/openapi.json")
        assert big.headers["content-encoding"] == "gzip" and "accept-encoding" in big.headers["vary"].lower()
        assert int(big.headers["content-length"]) < len(big.content) / 4  # httpx decoded it
        small = http.get("/healthz")
        assert len(small.content) < GZIP_MIN_BYTES and "content-encoding" not in small.headers
        bulk = http.get("/v1/parking/availability")
        assert bulk.headers["content-encoding"] == "gzip" and bulk.headers["etag"].startswith('W/"')
    with _client(url) as http:
        assert "content-encoding" not in http.get("/openapi.json").headers


def test_compressed_answers_get_weak_tags() -> None:
    async def page(_request: Request) -> Response:
        return Response(b"x" * 5000, media_type="text/plain", headers={"ETag": '"v1"'})

    client = TestClient(Compression(Starlette(routes=[Route("/", page)])))
    zipped = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["etag"] == 'W/"v1"' and zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == b"x" * 5000  # decoded by the client
    assert client.get("/", headers={"Accept-Encoding": "identity"}).headers["etag"] == '"v1"'


def test_every_401_names_its_challenge(url: str) -> None:
    with _client(url) as http:
        bad_key = http.get("/v1/parking/sites", params={"lat": 0, "lon": 0}, headers={"X-API-Key": "its_x_y"})
        assert bad_key.status_code == 401 and bad_key.headers["www-authenticate"] == API_KEY_CHALLENGE
        no_key = http.get("/v1/test-app/whoami")
        assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == API_KEY_CHALLENGE
        no_session = http.get("/v1/control/stream")
        assert no_session.status_code == 401 and no_session.headers["www-authenticate"] == SESSION_CHALLENGE
        wrong = http.post("/v1/auth/login", json={"username": "disp", "password": "wrong"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == SESSION_CHALLENGE
        doc = http.get("/openapi.json").json()
    documented = [op["responses"]["401"] for item in doc["paths"].values() for op in item.values()
                  if "401" in op.get("responses", {})]
    assert documented and all("WWW-Authenticate" in r.get("headers", {}) for r in documented)


def _get_paths(served: Served) -> list[str]:
    """Every GET route of the app, path parameters filled with a value that does not exist."""
    out = [path.replace("{", "").replace("}", "") if "{" in path else path
           for path, route in iter_api_routes(served.app.routes) if "GET" in (route.methods or ())]
    return [*sorted(set(out) - set(STREAMS)), "/docs", "/redoc", "/docs/assets/swagger-ui.css"]


def test_head_answers_every_get_route_like_get(served: Served, url: str) -> None:
    paths = _get_paths(served)
    assert len(paths) > 20
    with _client(url) as http:
        for path in paths:
            got, head = http.get(path), http.head(path)
            assert head.status_code == got.status_code != 405, path
            assert head.content == b"", path
            assert head.headers.get("content-type") == got.headers.get("content-type"), path
            if "content-length" in got.headers and path not in VOLATILE:
                assert head.headers["content-length"] == got.headers["content-length"], path
        assert http.request("HEAD", "/v1/auth/login").status_code == 405  # not a GET route: still refused


def test_head_on_event_streams_ends_at_once(url: str, key: str) -> None:
    with _client(url) as http:
        assert http.post("/v1/auth/login", json=dict(zip(("username", "password"), DISPATCHER, strict=True))
                         ).status_code == 200
        for path in STREAMS:
            started = time.monotonic()
            res = http.head(path, headers={"X-API-Key": key})
            assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream"), path
            assert res.content == b"" and time.monotonic() - started < 3, path
        assert http.get("/healthz").status_code == 200  # the connection is still good


def test_conditional_bulk_availability(url: str) -> None:
    with _client(url) as http:
        first = http.get("/v1/parking/availability")
        tag, modified = first.headers["etag"], first.headers["last-modified"]
        assert tag.startswith('W/"') and parse_http_date(modified) is not None
        for headers in ({"If-None-Match": tag}, {"If-None-Match": tag[2:]}, {"If-None-Match": "*"},
                        {"If-None-Match": f'"a", {tag}, "b"'}, {"If-Modified-Since": modified}):
            res = http.get("/v1/parking/availability", headers=headers)
            assert res.status_code == 304 and res.content == b"" and res.headers["etag"] == tag, headers
        assert http.head("/v1/parking/availability", headers={"If-None-Match": "*"}).status_code == 304
        for headers in ({"If-None-Match": '"other"'}, {"If-None-Match": '"other"', "If-Modified-Since": modified},
                        {"If-Modified-Since": http_date(parse_http_date(modified) - 1)}):  # type: ignore[operator]
            assert http.get("/v1/parking/availability", headers=headers).status_code == 200, headers
        refused = http.get("/v1/parking/availability", headers={"If-Match": '"other"'})
        assert refused.status_code == 412 and refused.json()["error"]["code"] == "precondition_failed"

"""The OpenAPI document as a contract: every route of an audience declares its 200 answer, errors
are the envelope, the audiences' credentials are security schemes, media types are the real ones,
and the documentation pages work offline. Walks the assembled app's route table (no database:
the app is not started)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from its.app.control import control_routers
from its.app.factory import create_app
from its.app.openapi import DOCS_ASSETS, DOCS_CSP
from its.app.registry import domain_services
from its.app.routes import iter_api_routes, route_audience
from its.settings import load_settings

AUDIENCES = ("public", "app", "dispatcher", "admin")
ENVELOPE = "#/components/schemas/ErrorEnvelope"
OPEN_MODELS = {"Datex2Publication"}  # documented in prose: the DATEX II document is another standard's


@pytest.fixture(scope="module")
def app() -> FastAPI:
    settings = load_settings(database_url="postgresql://nobody@127.0.0.1:1/unused")  # never started
    return create_app(settings, domain_services(), extra_routers=control_routers())


@pytest.fixture(scope="module")
def doc(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(app: FastAPI, doc: dict[str, Any]) -> Iterator[tuple[str, str, str | None, dict[str, Any]]]:
    """``(method, path, audience, operation)`` of every documented route of the app."""
    for path, route in iter_api_routes(app.routes):
        if not route.include_in_schema:
            continue
        for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, path, route_audience(route), doc["paths"][path][method.lower()]


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def test_every_audience_route_declares_its_200_schema(app: FastAPI, doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    missing = []
    checked = 0
    for method, path, audience, operation in _operations(app, doc):
        if audience not in AUDIENCES:
            continue
        checked += 1
        content = operation["responses"].get("200", {}).get("content", {})
        if not content:
            missing.append(f"{method} {path}: no 200 content")
        for media, spec in content.items():
            schema = spec.get("schema") or {}
            if _is_json(media):  # a named model with its fields, not FastAPI's {} or a bare object
                name = str(schema.get("$ref", "")).removeprefix("#/components/schemas/")
                if name not in schemas or not (schemas[name].get("properties") or name in OPEN_MODELS):
                    missing.append(f"{method} {path}: {media} is not a named model ({schema})")
            elif schema.get("type") != "string":
                missing.append(f"{method} {path}: {media} without a schema")
    assert checked >= 35
    assert not missing, "\n".join(missing)


def test_models_document_units_and_meaning(doc: dict[str, Any]) -> None:
    """Every field of every response model says what it is (units in the description)."""
    def nested_model(spec: dict[str, Any]) -> bool:  # the nested model documents itself
        return "$ref" in spec or "$ref" in spec.get("items", {}) or any(nested_model(s) for s in spec.get("anyOf", []))

    bare = {f"{name}.{field}" for name, schema in doc["components"]["schemas"].items()
            for field, spec in schema.get("properties", {}).items() if "description" not in spec and not nested_model(spec)}
    self_evident = {"LoginRequest.username", "LoginRequest.password", "LatLon.lat", "LatLon.lon",
                    "LineString.type", "LineString.coordinates", "EdgeFeature.type", "CongestionCollection.type"}
    assert bare <= self_evident, sorted(bare - self_evident)


def test_errors_are_the_envelope(app: FastAPI, doc: dict[str, Any]) -> None:
    wrong = []
    for method, path, audience, operation in _operations(app, doc):
        responses = operation["responses"]
        expected = {"422"} | ({"401", "503"} if audience else set()) \
            | ({"403"} if audience in ("dispatcher", "admin") else set()) \
            | ({"429"} if audience in ("public", "app") else set()) | ({"404"} if "{" in path else set()) \
            | ({"413"} if "requestBody" in operation else set())
        if expected - set(responses):
            wrong.append(f"{method} {path}: undocumented {sorted(expected - set(responses))}")
        for code, response in responses.items():
            if code[0] not in "45" or (path, code) == ("/readyz", "503"):  # readiness: its own body
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != ENVELOPE:
                wrong.append(f"{method} {path} {code}: {schema}")
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"]
    assert not wrong, "\n".join(wrong)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    envelope = doc["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    assert set(doc["components"]["schemas"]["ErrorDetail"]["required"]) == {"code", "message"}


def test_audiences_carry_their_security_schemes(app: FastAPI, doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["SessionCookie"] == {**schemes["SessionCookie"], "type": "apiKey", "in": "cookie",
                                        "name": "its_session"}
    assert schemes["SessionBearer"]["scheme"] == "bearer"
    seen = set()
    for method, path, audience, operation in _operations(app, doc):
        security = operation.get("security")
        seen.add(audience)
        if audience == "public":
            assert security == [{}, {"ApiKey": []}], (method, path)
        elif audience == "app":
            assert security == [{"ApiKey": []}], (method, path)
        elif audience in ("dispatcher", "admin"):
            assert security is not None, (method, path)
            names = [set(req) for req in security]
            assert {"SessionCookie"} <= names[0] and {"SessionBearer"} <= names[1], (method, path)
            assert all(("CsrfToken" in req) == (method != "GET") for req in names), (method, path)
        else:
            assert security is None and path in ("/healthz", "/readyz", "/metrics"), (method, path)
    assert {"public", "dispatcher", "admin"} <= seen


def test_media_types_are_the_served_ones(doc: dict[str, Any]) -> None:
    def content(path: str) -> dict[str, Any]:
        return dict(doc["paths"][path]["get"]["responses"]["200"]["content"])

    for feed in ("/gtfs-rt/trip-updates", "/gtfs-rt/vehicle-positions"):
        assert set(content(feed)) == {"application/x-protobuf", "application/json"}
    for stream in ("/v1/parking/stream", "/v1/control/stream"):
        assert set(content(stream)) == {"text/event-stream"}
    assert set(content("/v1/traffic/congestion")) == {"application/geo+json"}
    assert set(content("/v1/cameras/{camera_id}/snapshot.jpg")) == {"image/jpeg"}
    assert set(content("/v1/reports/tables/{table}.csv")) == {"text/csv"}
    assert set(content("/metrics")) == {"text/plain"}


def test_docs_work_offline(app: FastAPI) -> None:
    client = TestClient(app)
    assert client.get("/openapi.json").status_code == 200
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text, f"{page} refers to another host"
        assert r.headers["content-security-policy"] == DOCS_CSP  # and the browser may ask no other
        assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert any(a.endswith(".js") for a in assets)
        for asset in assets:
            assert asset.startswith(DOCS_ASSETS + "/"), asset
            got = client.get(asset)
            assert got.status_code == 200 and len(got.content) > 1000, asset


def test_an_oversized_body_is_refused_with_413(app: FastAPI) -> None:
    client = TestClient(app)
    body = b'{"username": "a", "password": "' + b"x" * load_settings().max_body_bytes + b'"}'
    declared = client.post("/v1/auth/login", content=body, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    streamed = client.post("/v1/auth/login", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"
    small = client.post("/v1/auth/login", json={"username": "a", "password": "b"})
    assert small.status_code == 503  # read and passed on (the app is not started: auth not ready)

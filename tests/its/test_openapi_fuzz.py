"""schemathesis against the app's own OpenAPI document: no 5xx, errors in the envelope,
responses conform to their schemas (bounded examples per operation)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from its.app import build_context, create_app
from its.auth import create_api_key, create_user
from its.composition import domain_services
from its.control import control_routers
from its.db import Database
from its.settings import Settings

from .helpers import wait_for


@pytest.fixture
def live_app(city_settings: Settings, db: Database) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    settings = city_settings
    ctx = build_context(settings)
    app = create_app(settings, domain_services(), context=ctx, extra_routers=control_routers())
    with TestClient(app) as client:
        # Services start in the background; fuzz the settled app (a 503 from /readyz while
        # they load is the documented answer, not a failure).
        assert wait_for(lambda: client.get("/readyz").status_code == 200, 120)
        create_user(db, "fuzzer", "fuzzer-pass", "admin")
        body = client.post("/v1/auth/login", json={"username": "fuzzer", "password": "fuzzer-pass"}).json()
        headers = {"Authorization": f"Bearer {body['token']}", "X-CSRF-Token": body["csrf_token"],
                   "X-API-Key": create_api_key(db, "fuzzer", 10_000_000)}
        yield app, headers
    if ctx.live:
        ctx.live.close()
    ctx.db.close()


def test_every_operation_survives_generated_requests(live_app: tuple[FastAPI, dict[str, str]]) -> None:
    app, headers = live_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        path = operation.path
        if "stream" in path or path.endswith("/logout") or path == "/metrics":
            continue

        @settings(max_examples=15, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400 and response.headers.get("content-type", [""])[0].startswith("application/json"):
                body = response.json()
                if not (isinstance(body, dict) and "error" in body and {"code", "message"} <= set(body["error"])):
                    failures.append(f"{case.method} {case.formatted_path}: error outside the envelope: {response.text[:200]}")

        run()
        checked += 1
    assert checked > 5
    assert not failures, "\n".join(failures[:20])

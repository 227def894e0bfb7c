"""The control centre over plain HTTP: pages, access control, config and the live alert stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from its.app.control.ui import STATIC_DIR
from its.app.control.views import HEARTBEAT_S

from .server import ADMIN, LiveServer


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """Parse a text/event-stream into (event, data) pairs."""
    name, data = "message", b""
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, orjson.loads(data)
            name, data = "message", b""
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:].encode()


def test_anonymous_is_refused(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as anon:
        page = anon.get("/control")
        assert page.status_code == 303 and page.headers["location"] == "/control/login"
        for path in ("/v1/control/config", "/v1/control/stream", "/v1/control/alerts"):
            r = anon.get(path)
            assert r.status_code == 401, path
            assert r.json()["error"]["code"] == "unauthorized"
        assert anon.put("/v1/control/config", json={"basemap_tile_url": None}).status_code == 401
        login = anon.get("/control/login")
        assert login.status_code == 200 and 'id="login-form"' in login.text
        assert "script-src 'self'" in login.headers["content-security-policy"]


def test_login_page_and_assets_are_served_without_inline_code(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as anon:
        for name in ("login.js", "app.js", "map.js", "alerts.js", "panels.js", "api.js", "style.css", "icon.svg"):
            r = anon.get(f"/control/static/{name}")
            assert r.status_code == 200, name
            assert r.content == (STATIC_DIR / name).read_bytes()
        assert anon.get("/control/static/app.js").headers["content-type"].startswith("text/javascript")
        for bad in ("..%2Fui.py", "control.html", "nope.js", "ui.py"):
            assert anon.get(f"/control/static/{bad}").status_code == 404, bad
    for page in ("login.html", "control.html"):
        html = (STATIC_DIR / page).read_text()
        assert "<script>" not in html and " style=" not in html and "onclick=" not in html


def test_dispatcher_gets_page_and_config_but_not_admin_routes(live_server: LiveServer) -> None:
    with live_server.login() as client:
        page = client.get("/control")
        assert page.status_code == 200 and 'id="map"' in page.text
        assert page.headers["x-frame-options"] == "DENY"
        config = client.get("/v1/control/config").json()
        assert config["basemap_tile_url"] is None and config["role"] == "dispatcher"
        assert "/v1/control/alerts" in config["routes"] and "/v1/traffic/congestion" not in config["routes"]
        assert "map:buses" in config["panels"]["telematics"] and "parking" in config["panels"]["parking"]
        r = client.put("/v1/control/config", json={"basemap_tile_url": "https://tiles.example/{z}/{x}/{y}.png"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        # logout ends the session on the server: the same cookie is refused afterwards
        assert client.post("/v1/auth/logout").status_code == 200
        cookie = page.cookies.get("its_session") or client.cookies.get("its_session")
        assert client.get("/control", follow_redirects=False).status_code == 303
        assert cookie is None or httpx.get(f"{live_server.url}/v1/control/config",
                                           cookies={"its_session": cookie}).status_code == 401


def test_admin_sets_the_basemap(live_server: LiveServer) -> None:
    url = "https://tiles.example/{z}/{x}/{y}.png"
    with live_server.login(ADMIN) as admin, live_server.login() as dispatcher:
        bad = admin.put("/v1/control/config", json={"basemap_tile_url": "javascript:alert(1)"})
        assert bad.status_code == 422 and "basemap_tile_url" in bad.json()["error"]["message"]
        assert admin.put("/v1/control/config", json={"basemap_tile_url": "https://x.example/tile.png"}).status_code == 422
        # the page's CSP loads images from itself or https only
        assert admin.put("/v1/control/config", json={"basemap_tile_url": "http://x.example/{z}/{x}/{y}"}).status_code == 422
        no_csrf = httpx.put(f"{live_server.url}/v1/control/config", json={"basemap_tile_url": url},
                            cookies=admin.cookies)
        assert no_csrf.status_code == 403
        assert admin.put("/v1/control/config", json={"basemap_tile_url": url}).json() == {"basemap_tile_url": url}
        assert dispatcher.get("/v1/control/config").json()["basemap_tile_url"] == url
        assert admin.put("/v1/control/config", json={"basemap_tile_url": None}).status_code == 200
        assert dispatcher.get("/v1/control/config").json()["basemap_tile_url"] is None


def test_stream_pushes_snapshot_changes_and_heartbeats(live_server: LiveServer) -> None:
    sink = live_server.ctx.alerts
    sink.raise_alert("sensor_offline", "p1/s7", "sensor s7 silent", severity="info")
    with live_server.login() as client, client.stream("GET", "/v1/control/stream", timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        name, data = next(events)
        assert name == "snapshot" and [a["alert_id"] for a in data["alerts"]] == ["sensor_offline:p1/s7"]

        def raise_later() -> None:
            time.sleep(0.3)
            sink.raise_alert("car_park_full", "bham-1", "Bull Ring full", severity="critical", lat=52.477, lon=-1.894)
            sink.acknowledge("car_park_full:bham-1", "someone")
            sink.clear("sensor_offline", "p1/s7")

        threading.Thread(target=raise_later).start()
        got = [next(events) for _ in range(3)]
        assert [(n, d["event"], d["alert"]["alert_id"]) for n, d in got] == [
            ("alert", "raised", "car_park_full:bham-1"), ("alert", "acked", "car_park_full:bham-1"),
            ("alert", "cleared", "sensor_offline:p1/s7")]
        assert got[0][1]["alert"]["lat"] == pytest.approx(52.477)
        assert got[1][1]["alert"]["acked_by"] == "someone"
        started = time.monotonic()
        name, data = next(events)
        assert name == "heartbeat" and time.monotonic() - started < HEARTBEAT_S + 2
        assert abs(time.time() - time.mktime(time.strptime(data["server_time"][:19], "%Y-%m-%dT%H:%M:%S"))
                   + time.timezone) < 5
    # the browser is gone: its queue is dropped from the hub
    hub = live_server.app.state.control_alert_hub  # type: ignore[attr-defined]
    deadline = time.monotonic() + HEARTBEAT_S + 3
    while hub.listeners and time.monotonic() < deadline:
        time.sleep(0.1)
    assert hub.listeners == 0
    # the alert stays acknowledged in the database with user and time
    row = live_server.ctx.db.fetchall("SELECT acked_by, acked_at FROM alerts WHERE alert_id = %s", ("car_park_full:bham-1",))
    assert row[0][0] == "someone" and row[0][1] is not None

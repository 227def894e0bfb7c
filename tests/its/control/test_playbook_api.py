"""The operating-mode playbook over the real API, database and broker (`/v1/control/playbook`).

In `incident` mode (a camera-reported jam next to bunched WMATA buses and a full car park,
see `tests.its.control.playbook_city`) the playbook recommends the holds of the affected
route with their expected excess wait, the diversion away from the full car park with the
guided sites' chance of a free space and the detour around the incident edge with its
travel time; a dispatcher applies one and the log records who and when. In `normal` mode
it recommends nothing and applying answers 409.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from its.db import Database
from its.settings import Settings
from maps.from_gtfs import derive_network
from maps.store import save_network
from traffic.config import TrafficSettings
from traffic.service import ALERT_KIND, TrafficService
from traffic.store import load_camera_links

from .playbook_city import FULL, City, incident_city_fixture, jam
from .server import LiveServer, close_server, start_server

__all__ = ["incident_city_fixture"]



def _by_kind(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for a in body["actions"] if a["kind"] == kind]


def test_incident_mode_recommends_holds_diversions_and_a_detour_and_logs_what_was_applied(
        incident_city: City, db: Database) -> None:
    city = incident_city
    url = city.server.url
    anonymous = httpx.get(f"{url}/v1/control/playbook", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    with city.server.login() as http:
        body = http.get("/v1/control/playbook").json()
        assert body["mode"] == "incident", body
        assert any(i["subject"] == f"wmata:{city.jam_edge}" for i in body["incidents"])
        assert body["peak_tti"] == 1.3 and body["network_tti"] is not None
        assert set(body["sources"]) == {"telematics", "traffic", "parking"}, body["sources"]

        # holds on the route of the advised stop, each with its expected excess wait from the holding kernel
        advice = {a["advice_id"]: a for a in http.get("/v1/holding/advice").json()["advice"]}
        headway = _by_kind(body, "headway")
        assert headway
        for action in headway:
            holds = action["details"]["holds"]
            assert holds and all(h["advice_id"] in advice for h in holds)
            assert all(advice[h["advice_id"]]["route_id"] == action["details"]["route_id"] for h in holds)
            assert all(h["ewt_with_s"] <= h["ewt_without_s"] + 1e-6 for h in holds)
            effect = action["effect"]
            assert effect["metric"] == "excess wait time" and effect["unit"] == "s"
            assert effect["with_action"] < effect["without"] and effect["change"] < 0
            assert effect["without"] == pytest.approx(np.mean([h["ewt_without_s"] for h in holds]), abs=0.2)
        assert any(h["advice_id"] in advice and advice[h["advice_id"]]["stop_id"] == city.stop["stop_id"]
                   for a in headway for h in a["details"]["holds"])

        # away from the full car park, to sites likely to have a space
        (guide,) = [a for a in _by_kind(body, "guidance") if a["subject"] == FULL]
        min_p = city.parking.settings.guidance_sign_min_probability
        guided = guide["details"]["guided_sites"]
        assert guided and all(g["site_id"] != FULL and g["probability"] >= min_p for g in guided)
        assert guide["effect"]["with_action"] == pytest.approx(np.mean([g["probability"] for g in guided]), abs=1e-3)
        assert guide["details"]["sign_lines"][0].endswith("FULL") and guide["detail"].startswith(guide["details"]["sign_lines"][0])
        assert guide["effect"]["without"] is None or 0.0 <= guide["effect"]["without"] <= 1.0

        # the detour around the incident edge, faster than through it under the current estimate
        (detour,) = [a for a in _by_kind(body, "detour") if a["subject"] == f"wmata:{city.jam_edge}"]
        weights = city.traffic.router_.weights  # type: ignore[union-attr]
        edges = detour["details"]["detour_edges"]
        assert city.jam_edge not in edges and len(edges) >= 2
        assert detour["effect"]["with_action"] == pytest.approx(float(weights[edges].sum()), rel=0.05)
        assert detour["effect"]["without"] == pytest.approx(float(weights[city.jam_edge]), rel=0.05)
        assert detour["effect"]["with_action"] < detour["effect"]["without"]
        assert all(a["applied"] is None for a in body["actions"])

        # applying: CSRF, id checks, then the log with who and when
        no_csrf = httpx.post(f"{url}/v1/control/playbook/actions/{detour['action_id']}/apply",
                             cookies=http.cookies, timeout=10)
        assert no_csrf.status_code == 403
        bad = http.post("/v1/control/playbook/actions/not-an-id/apply", json={})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_parameter"
        unknown = http.post(f"/v1/control/playbook/actions/{'0' * 16}/apply", json={})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        applied = http.post(f"/v1/control/playbook/actions/{detour['action_id']}/apply", json={"note": "police on site"})
        assert applied.status_code == 200, applied.text
        entry = applied.json()
        assert entry["actor"] == "dana" and entry["mode"] == "incident" and entry["kind"] == "detour"
        assert entry["note"] == "police on site" and entry["effect"]["text"] == detour["effect"]["text"]
        assert entry["carried_out"] == []  # the traffic domain only logs a detour
        assert http.post(f"/v1/control/playbook/actions/{guide['action_id']}/apply").status_code == 200
        # a headway action: its holds are accepted as the dispatcher (the holding audit says who)
        route = headway[0]
        held = {h["advice_id"] for h in route["details"]["holds"]}
        done = http.post(f"/v1/control/playbook/actions/{route['action_id']}/apply")
        assert done.status_code == 200, done.text
        assert len(done.json()["carried_out"]) == len(held)
        assert all(line.startswith("accepted hold ") for line in done.json()["carried_out"])
        now_advice = {a["advice_id"]: a for a in http.get("/v1/holding/advice").json()["advice"]}
        assert all(now_advice[i]["status"] == "accepted" and now_advice[i]["decided_by"] == "dana"
                   for i in held if i in now_advice)
        assert {i for i in held if i in now_advice}
        rows = db.fetchall("SELECT actor, action_id, mode, domain, kind, subject FROM playbook_log ORDER BY log_id")
        assert rows == [("dana", detour["action_id"], "incident", "traffic", "detour", f"wmata:{city.jam_edge}"),
                        ("dana", guide["action_id"], "incident", "parking", "guidance", FULL),
                        ("dana", route["action_id"], "incident", "telematics", "headway", route["subject"])]

        again = {a["action_id"]: a for a in http.get("/v1/control/playbook").json()["actions"]}
        assert again[detour["action_id"]]["applied"]["by"] == "dana"
        assert again[guide["action_id"]]["applied"]["by"] == "dana"
        applied_ids = (detour["action_id"], guide["action_id"], route["action_id"])
        assert all(a["applied"] is None for k, a in again.items() if k not in applied_ids)
        logged = http.get("/v1/control/playbook/log").json()["entries"]
        assert [e["action_id"] for e in logged] == list(reversed(applied_ids))  # newest first
        one = http.get("/v1/control/playbook/log", params={"action_id": detour["action_id"]}).json()["entries"]
        assert len(one) == 1 and one[0]["log_id"] == entry["log_id"]
        for params in ({"since": "2026-01-01T00:00:00"}, {"limit": 0}, {"action_id": "x"}):
            r = http.get("/v1/control/playbook/log", params=params)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_parameter", params


@pytest.fixture(params=[0.5], ids=["default"])
def quiet_city(request: pytest.FixtureRequest, settings: Settings, db: Database,
               wmata_dir: Any) -> Iterator[tuple[LiveServer, TrafficService]]:
    """Only roads, with no evidence but free flow: `normal` mode (``incident_ratio`` from the param)."""
    save_network(db, derive_network(wmata_dir / "wmata_gtfs.zip", name="wmata").network)
    traffic = TrafficService(TrafficSettings(incident_ratio=request.param))
    server = start_server(settings, db, [traffic])
    deadline = time.monotonic() + 60
    while not traffic.ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert traffic.ready() and len(load_camera_links(db, "wmata").camera_id) == 0
    yield server, traffic
    close_server(server)


def test_normal_mode_recommends_nothing_and_refuses_to_apply(quiet_city: tuple[LiveServer, TrafficService]) -> None:
    server, _traffic = quiet_city
    with server.login() as http:
        body = http.get("/v1/control/playbook").json()
        assert body["mode"] == "normal" and body["actions"] == [] and body["incidents"] == []
        assert body["network_tti"] == pytest.approx(1.0, abs=1e-3)
        r = http.post(f"/v1/control/playbook/actions/{'0' * 16}/apply", json={})
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
        assert "normal" in r.json()["error"]["message"]
        assert http.get("/v1/control/playbook/log").json()["entries"] == []


@pytest.mark.parametrize("quiet_city", [0.01], ids=["no-incidents"], indirect=True)
def test_the_mode_turns_to_peak_when_the_network_index_reaches_the_reports_threshold(
        quiet_city: tuple[LiveServer, TrafficService], db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A jam that is no incident (``incident_ratio`` 0.01) raises the network index; with
    ``ITS_REPORTS_PEAK_TTI`` just above free flow the mode turns to `peak`, as a report hour would."""
    server, traffic = quiet_city
    monkeypatch.setenv("ITS_REPORTS_PEAK_TTI", "1.001")
    with server.login() as http:
        before = http.get("/v1/control/playbook").json()
        assert before["mode"] == "normal" and before["peak_tti"] == 1.001
        net = traffic.network
        assert net is not None
        jam(db, net, traffic, int(np.argmax(net.length_m)))
        assert not [a for a in server.ctx.alerts.active() if a.kind == ALERT_KIND]
        after = http.get("/v1/control/playbook").json()
        assert after["mode"] == "peak" and after["incidents"] == [], after
        assert after["network_tti"] >= 1.001 and after["network_tti"] == pytest.approx(traffic.snapshot.network_tti, abs=1e-3)  # type: ignore[union-attr]
        assert after["actions"] == []  # roads only: no detour without an incident edge, no buses, no car parks
        monkeypatch.setenv("ITS_REPORTS_PEAK_TTI", "5")
        assert http.get("/v1/control/playbook").json()["mode"] == "normal"

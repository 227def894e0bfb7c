"""Holding advice end to end: the arrivals service on a real database and a real Mosquitto.

The WMATA feed of the recorded day is imported (timepoints round-trip through the
database); the service starts from the store, is fed the recorded positions from 18:40 to
19:08 UTC as live messages, and refreshes on a clock following the recording. Its advice is
published retained on each vehicle's ``its/v1/vehicles/{agency}/{vehicle_id}/advice``,
superseded as the replay goes on, cleared when dismissed or when the buses fall silent;
dispatchers list, accept and dismiss it through the API (session cookie and CSRF token, like
every control route), each decision landing in ``holding_advice_log``. A second, secured
broker (the generated ACL) lets the API's account write advice and each bus read only its
own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from its.alerts import AlertSink
from its.app.control import control_routers
from its.app.factory import create_app
from its.auth import create_user
from its.broker import MosquittoBroker, mosquitto_binary, url_with_credentials
from its.db import Database
from its.device_registry import add_device, write_broker_auth
from its.mqtt import connect
from its.service import Context, LiveFeed
from its.settings import load_settings
from telematics.advice import advice_topic
from telematics.config import TelematicsSettings
from telematics.gtfs.database import import_feed_file
from telematics.schemas import AdviceList, AuditList, HoldingAdvice
from telematics.service import ArrivalsService

from .holding_fixtures import REPLAY_FROM, T_ADVICE, avl_rows, epoch, wmata_day_zip_fixture

__all__ = ["wmata_day_zip_fixture"]
pytestmark = pytest.mark.skipif(mosquitto_binary(None) is None, reason="no mosquitto binary")
ADVICE_FILTER = "its/v1/vehicles/+/+/advice"
GHOST = advice_topic("wmata", "ghost-bus")
DISPATCHER = ("dana", "dispatch-pass-1")


class Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


class Retained:
    """The retained messages under ``ADVICE_FILTER`` a new subscriber gets (a sentinel proves delivery).

    Each call retains its own sentinel topic: the service under test clears retained advice it
    did not issue (an earlier call's sentinel among them), possibly while this call runs.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self) -> dict[str, dict[str, Any]]:
        sentinel = f"its/v1/vehicles/test/sentinel-{time.time_ns()}/advice"
        pub = connect(self.url, f"sentinel-{time.time_ns()}")
        pub.client.publish(sentinel, b'{"sentinel": true}', qos=1, retain=True).wait_for_publish(5)
        seen: dict[str, bytes] = {}
        got = threading.Event()

        def on_message(_c: object, _u: object, msg: Any) -> None:
            if msg.topic == sentinel:
                got.set()
            elif msg.payload and "/sentinel-" not in msg.topic:
                seen[msg.topic] = bytes(msg.payload)

        sub = connect(self.url, f"retained-{time.time_ns()}", on_message=on_message)
        sub.subscribe(ADVICE_FILTER, 1)
        assert got.wait(10), "the sentinel never arrived"
        time.sleep(0.3)  # retained messages come in one burst with the sentinel's
        sub.close()
        pub.client.publish(sentinel, b"", qos=1, retain=True).wait_for_publish(5)
        pub.close()
        return {t: orjson.loads(p) for t, p in seen.items()}


class Listener:
    """Every message published under ``ADVICE_FILTER`` from now on, in order."""

    def __init__(self, url: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.conn = connect(url, f"listener-{time.time_ns()}", on_message=self._on)
        self.conn.subscribe(ADVICE_FILTER, 1)
        time.sleep(0.5)
        self.clear()

    def _on(self, _c: object, _u: object, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def wait(self, condition: Any, timeout_s: float = 10.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                got = list(self.messages)
            if condition(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"condition not met; messages: {got[:5]}")


@pytest.fixture(scope="module")
def mqtt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    broker = MosquittoBroker(tmp_path_factory.mktemp("advice-broker") / "mq")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def served(module_db: Database, wmata_day_zip: Path, wmata_dir: Path,
           mqtt: MosquittoBroker) -> Iterator[tuple[TestClient, ArrivalsService, Clock]]:
    """The API with the arrivals service, on the replay's clock at T_ADVICE, logged in as a dispatcher."""
    import_feed_file(module_db, wmata_day_zip, "wmata")
    create_user(module_db, *DISPATCHER, role="dispatcher")
    # advice an earlier process left retained for a bus that has none now
    ghost = connect(mqtt.url, f"ghost-{time.time_ns()}")
    ghost.client.publish(GHOST, b'{"advice_id": "from-before"}', qos=1, retain=True).wait_for_publish(5)
    ghost.close()
    settings = load_settings(database_url=module_db.url, mqtt_url=mqtt.url)
    ctx = Context(settings=settings, db=module_db, read_db=module_db, alerts=AlertSink(module_db),
                  live=LiveFeed(mqtt.url))
    clock = Clock(epoch(REPLAY_FROM))
    service = ArrivalsService(TelematicsSettings(history_days=0, recent_positions_min=0), clock=clock,
                              background=False)
    app = create_app(settings, [service], context=ctx, extra_routers=control_routers())
    with TestClient(app) as tc:
        deadline = time.monotonic() + 120
        while not service.ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.ready()
        clock.now_s = epoch(T_ADVICE)
        service.observe(avl_rows(wmata_dir / "wmata_avl.csv", T_ADVICE, REPLAY_FROM))
        service.refresh()
        yield tc, service, clock
    assert ctx.live is not None
    ctx.live.close()


def _login(tc: TestClient) -> dict[str, str]:
    r = tc.post("/v1/auth/login", json={"username": DISPATCHER[0], "password": DISPATCHER[1]})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def _advance(service: ArrivalsService, clock: Clock, wmata_dir: Path, until: str) -> None:
    """Feed the recorded positions up to ``until`` and refresh at that time."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now_s))
    clock.now_s = epoch(until)
    service.observe(avl_rows(wmata_dir / "wmata_avl.csv", until, since))
    service.refresh()


def test_advice_is_retained_per_vehicle_and_superseded(served: tuple[TestClient, ArrivalsService, Clock],
                                                       mqtt: MosquittoBroker, wmata_dir: Path) -> None:
    _tc, service, clock = served
    retained = Retained(mqtt.url)
    entries = service.advice.entries(clock.now_s)
    assert entries and all(e["published"] for e in entries)
    assert {e["control"] for e in entries} == {"timepoints"}  # stop_times.timepoint came back from the database
    got = retained()
    assert set(got) == {advice_topic("wmata", e["vehicle_id"]) for e in entries}  # the ghost's advice is cleared
    assert GHOST not in got
    for e in entries:
        msg = got[advice_topic("wmata", e["vehicle_id"])]
        assert (msg["advice_id"], msg["hold_s"], msg["stop_id"], msg["status"]) == (
            e["advice_id"], e["hold_s"], e["stop_id"], "advised")
        assert msg["depart_at"] > msg["arrive_at"] and msg["reason"] == e["reason"]
    # the replay goes on: advice moves to other stops and buses, each topic keeps only the latest
    listener = Listener(mqtt.url)
    for minute in ("19:10:00", "19:12:00", "19:14:00", "19:16:00"):
        _advance(service, clock, wmata_dir, f"2026-02-16T{minute}Z")
    now = retained()
    expected = {advice_topic("wmata", e["vehicle_id"]) for e in service.advice.entries(clock.now_s)}
    assert set(now) == expected

    def latest(messages: list[tuple[str, bytes]]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for topic, payload in messages:
            out[topic] = payload
        return out

    # what a live subscriber saw last on each topic is what a new one gets retained
    def consistent(messages: list[tuple[str, bytes]]) -> bool:
        last = latest(messages)
        seen = {t: orjson.loads(p) if p else None for t, p in last.items()}
        return (all(seen.get(t) == m for t, m in now.items() if got.get(t) != m)
                and all(m == now.get(t) for t, m in seen.items()))

    last = latest(listener.wait(consistent))
    changed = [t for t, p in last.items() if p and orjson.loads(p)["advice_id"] != got.get(t, {}).get("advice_id")]
    cleared = [t for t, p in last.items() if not p]
    assert changed or cleared, "four minutes of replay changed no advice"
    listener.conn.close()


def test_dispatcher_accepts_and_dismisses_with_audit(served: tuple[TestClient, ArrivalsService, Clock],
                                                     mqtt: MosquittoBroker, module_db: Database) -> None:
    tc, service, clock = served
    assert tc.get("/v1/holding/advice").status_code == 401  # a dispatcher session is required
    headers = _login(tc)
    listed = AdviceList.model_validate(tc.get("/v1/holding/advice").json())
    assert len(listed.advice) >= 2 and all(a.status == "advised" for a in listed.advice)
    first, second = listed.advice[0], listed.advice[1]
    listener = Listener(mqtt.url)
    # a state change needs the CSRF token
    assert tc.post(f"/v1/holding/advice/{first.advice_id}", json={"action": "accept"}).status_code == 403
    r = tc.post(f"/v1/holding/advice/{first.advice_id}", json={"action": "accept"}, headers=headers)
    assert r.status_code == 200, r.text
    accepted = HoldingAdvice.model_validate(r.json())
    assert (accepted.status, accepted.decided_by) == ("accepted", "dana") and accepted.decided_at is not None
    topic = advice_topic("wmata", first.vehicle_id)
    msgs = listener.wait(lambda m: any(t == topic for t, _ in m))
    assert orjson.loads([p for t, p in msgs if t == topic][-1])["status"] == "accepted"
    # dismissed: the bus's advice topic is cleared
    r = tc.post(f"/v1/holding/advice/{second.advice_id}", json={"action": "dismiss"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    topic2 = advice_topic("wmata", second.vehicle_id)
    listener.wait(lambda m: (topic2, b"") in m)
    assert topic2 not in Retained(mqtt.url)()
    # the decisions stick through a refresh, and the dismissed advice stays off the bus
    service.refresh(clock.now_s)
    now = {e["advice_id"]: e for e in service.advice.entries(clock.now_s)}
    if second.advice_id in now:
        assert now[second.advice_id]["status"] == "dismissed" and not now[second.advice_id]["published"]
    # the audit log: who, what, when, the advice as it stood
    rows = module_db.fetchall("SELECT action, actor, advice_id, vehicle_id, hold_s, reason FROM holding_advice_log"
                              " ORDER BY log_id")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("accepted", "dana", first.advice_id, first.vehicle_id), ("dismissed", "dana", second.advice_id, second.vehicle_id)]
    assert rows[0][4] == pytest.approx(first.hold_s, abs=1) and rows[0][5] == first.reason
    audit = AuditList.model_validate(tc.get("/v1/holding/audit", params={"limit": 10}).json())
    assert [e.action for e in audit.entries] == ["dismissed", "accepted"]
    only = tc.get("/v1/holding/audit", params={"vehicle_id": first.vehicle_id}).json()["entries"]
    assert [e["advice_id"] for e in only] == [first.advice_id]
    listener.conn.close()


def test_bad_input_gives_4xx_json(served: tuple[TestClient, ArrivalsService, Clock]) -> None:
    tc, service, clock = served
    headers = _login(tc)
    some = service.advice.entries(clock.now_s)[0]["advice_id"]
    cases = [
        ("/v1/holding/advice/0123456789abcdef", {"action": "accept"}, 404, "not_found"),
        ("/v1/holding/advice/" + "x" * 65, {"action": "accept"}, 422, "invalid_parameter"),
        (f"/v1/holding/advice/{some}", {"action": "hold"}, 422, "invalid_parameter"),
        (f"/v1/holding/advice/{some}", {"action": "accept", "by": "someone else"}, 422, "invalid_parameter"),
        (f"/v1/holding/advice/{some}", {}, 422, "invalid_parameter"),
        (f"/v1/holding/advice/{some}", [], 422, "invalid_parameter"),
    ]
    for path, body, status, code in cases:
        r = tc.post(path, json=body, headers=headers)
        assert r.status_code == status and r.json()["error"]["code"] == code, (path, body, r.text)
    r = tc.post(f"/v1/holding/advice/{some}", content=b"{not json", headers={**headers, "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500 and "error" in r.json()
    assert tc.get("/v1/holding/audit", params={"since": "2000-01-01T00:00:00+16:00"}).status_code == 200
    for params in ({"limit": 0}, {"limit": "many"}, {"since": "2026-02-16T19:00:00"}, {"since": "yesterday"},
                   {"since": "0001-01-01T00:00:00+05:00"}):
        r = tc.get("/v1/holding/audit", params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_parameter", params
    for params in ({"agency": "nope"}, {"route_id": "nope"}):
        r = tc.get("/v1/holding/advice", params=params)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    known = service.advice.entries(clock.now_s)[0]["route_id"]  # C53 on the real day
    assert tc.get("/v1/holding/advice", params={"route_id": known}).status_code == 200
    # nothing of this reached the audit log
    assert tc.get("/v1/holding/audit").json()["entries"] == tc.get(
        "/v1/holding/audit", params={"since": "2000-01-01T00:00:00Z"}).json()["entries"]


def test_advice_is_cleared_when_the_buses_fall_silent(served: tuple[TestClient, ArrivalsService, Clock],
                                                      mqtt: MosquittoBroker) -> None:
    _tc, service, clock = served
    before = Retained(mqtt.url)()
    assert before, "advice is retained before"
    listener = Listener(mqtt.url)
    clock.now_s += 600.0  # no position for 10 min: every bus is stale, no prediction, no advice
    service.refresh()
    assert service.advice.entries(clock.now_s) == []
    # the service publishes asynchronously: once each topic's clearing message is through, none is left
    listener.wait(lambda m: set(before) <= {t for t, p in m if p == b""})
    assert Retained(mqtt.url)() == {}
    listener.conn.close()


def test_the_broker_acl_lets_the_api_write_advice_and_each_bus_read_its_own(
        module_db: Database, tmp_path: Path) -> None:
    pw = {"bus-17": add_device(module_db, "bus-17", "vehicle"), "bus-18": add_device(module_db, "bus-18", "vehicle")}
    write_broker_auth(module_db, tmp_path / "auth")
    broker = MosquittoBroker(tmp_path / "mq", auth_dir=tmp_path / "auth")
    broker.start()
    try:
        assert broker.device_url is not None
        seen: dict[str, list[bytes]] = {"bus-17": [], "bus-18": []}

        def reader(bus: str, topic_filter: str) -> Any:
            conn = connect(url_with_credentials(broker.device_url, bus, pw[bus]), "",  # type: ignore[arg-type]
                           on_message=lambda _c, _u, m: seen[bus].append(bytes(m.payload)))
            conn.subscribe(topic_filter, 1)
            return conn

        platform = connect(broker.account_url("platform"), f"its-api-{time.time_ns()}")
        for bus in ("bus-17", "bus-18"):
            platform.client.publish(advice_topic("wmata", bus), orjson.dumps({"vehicle_id": bus}), qos=1,
                                    retain=True).wait_for_publish(5)
        own = reader("bus-17", advice_topic("wmata", "bus-17"))
        other = reader("bus-18", advice_topic("wmata", "bus-17"))  # another bus's advice: refused
        deadline = time.monotonic() + 10
        while not seen["bus-17"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert seen["bus-17"] == [b'{"vehicle_id":"bus-17"}'] and seen["bus-18"] == []
        # a bus cannot write advice, neither its own nor another's; a simulator account cannot either
        collected: list[tuple[str, bytes]] = []
        watcher = connect(broker.account_url("collector"), f"its-watch-{time.time_ns()}",
                          on_message=lambda _c, _u, m: collected.append((m.topic, bytes(m.payload))))
        watcher.subscribe(ADVICE_FILTER, 1)
        time.sleep(0.5)
        collected.clear()
        own.client.publish(advice_topic("wmata", "bus-17"), b'{"forged": 1}', qos=1).wait_for_publish(5)
        own.client.publish(advice_topic("wmata", "bus-18"), b'{"forged": 1}', qos=1).wait_for_publish(5)
        sim = connect(broker.account_url("publisher-telematics"), f"its-sim-{time.time_ns()}")
        sim.client.publish(advice_topic("wmata", "bus-18"), b'{"forged": 2}', qos=1).wait_for_publish(5)
        platform.client.publish(advice_topic("wmata", "bus-18"), b'{"control": 1}', qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while not collected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert collected == [(advice_topic("wmata", "bus-18"), b'{"control": 1}')]
        for conn in (own, other, platform, watcher, sim):
            conn.close()
    finally:
        broker.stop()

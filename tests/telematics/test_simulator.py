"""Fleet simulator: realistic generation on the Cairns schedule, detection by the live fleet
state, publishing over a real Mosquitto, and AVL replay messages."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest

from its.db import Database
from its.settings import Settings
from telematics.fleet import Fleet
from telematics.gtfs import Feed, read_feed, service_day_start
from telematics.ingest import parse_json_position
from telematics.simulator import FleetSimulation, avl_messages, fleet_messages, run_fleet

MONDAY = date(2014, 6, 2)


@pytest.fixture(scope="module")
def cairns_feed(cairns_zip: Path) -> Feed:
    return read_feed(cairns_zip)


@pytest.fixture(scope="module")
def sim(cairns_feed: Feed) -> FleetSimulation:
    return FleetSimulation(cairns_feed, MONDAY, seed=7)


def test_generation_is_plausible(sim: FleetSimulation, cairns_feed: Feed) -> None:
    day0 = service_day_start(MONDAY, cairns_feed.timezone)
    t = day0 + 8 * 3600
    first = dict(sim.positions(t))
    assert 10 < len(first) < 200
    ids = set(first)
    assert len({r.vehicle_id for r in sim.runs}) < len(sim.runs)  # trips chained into vehicle duties
    for _vid, p in first.items():
        assert -17.5 < p["lat"] < -16.5 and 145.4 < p["lon"] < 146.0
        assert 0 <= p["speed_mps"] <= 25 and 0 <= p["bearing"] < 360
    # realised times: every run is monotone, and delays are neither zero nor absurd
    late = []
    for run in sim.runs:
        assert np.all(np.diff(run.t_knots) >= 0)
        st = cairns_feed.stop_times[cairns_feed.stop_times["trip_id"] == run.trip_id]
        late.append(run.t_knots[-2] - (day0 + st["arrival_time"].iloc[-1]))
    late_arr = np.array(late)
    assert 0 < np.std(late_arr) < 600 and -120 < np.median(late_arr) < 600
    later = dict(sim.positions(t + 10))
    moved = [np.hypot(later[v]["lat"] - first[v]["lat"], later[v]["lon"] - first[v]["lon"]) * 111_000
             for v in ids & set(later)]
    assert np.median(moved) < 250  # ~10 s of driving plus GPS noise
    assert ids & set(later)


def test_fleet_detects_simulated_passings(sim: FleetSimulation, cairns_feed: Feed) -> None:
    """The live fleet state, fed the simulated pings, finds the realised stop times."""
    fleet = Fleet("cairns", cairns_feed)
    day0 = service_day_start(MONDAY, cairns_feed.timezone)
    start, errors = day0 + 7 * 3600, []
    truth = {r.trip_id: r for r in sim.runs}
    for t, topic, payload in fleet_messages(sim, "cairns", start, 10.0):
        if t > start + 3600:
            break
        for passing in fleet.observe(parse_json_position(topic, payload)[0]):
            run = truth[passing[2]]
            st = cairns_feed.stop_times[cairns_feed.stop_times["trip_id"] == passing[2]]
            j = int(np.flatnonzero(st["stop_sequence"].to_numpy() == passing[3])[0])
            # the simulated vehicle was at the stop from arrival to departure
            arrive, leave = run.t_knots[2 * j], run.t_knots[2 * j + 1]
            when = passing[4].timestamp()
            errors.append(0.0 if arrive - 1 <= when <= leave + 1 else min(abs(when - arrive), abs(when - leave)))
    err = np.array(errors)
    assert len(err) > 500
    assert np.median(err) < 10.0 and np.percentile(err, 90) < 40.0
    board = fleet.board(start + 3600)
    assert sum(e["predicted"] for items in board.arrivals.values() for e in items) > 50


def test_publishes_over_mqtt(broker_url: str, cairns_feed: Feed) -> None:
    received: list[tuple[str, bytes]] = []
    got = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append((msg.topic, bytes(msg.payload)))
        got.set()

    from its.settings import mqtt_endpoint

    host, port, *_ = mqtt_endpoint(broker_url)
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.connect(host, port)
    sub.subscribe("its/v1/vehicles/cairns/+/position", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    try:
        start = service_day_start(MONDAY, cairns_feed.timezone) + 8 * 3600
        began = time.time()
        sent = run_fleet(cairns_feed, broker_url, "cairns", duration_s=1.0, interval_s=10.0, speedup=60.0,
                         start_s=start)
        ended = time.time()
        deadline = time.monotonic() + 5
        while len(received) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert sent > 20 and len(received) == sent
    rows = [parse_json_position(topic, payload)[0] for topic, payload in received]
    assert all(r[0] == "cairns" and r[7] for r in rows)
    # a 2014 day at 60x: stamped with the wall clock of publication, naming no service date
    assert all(began - 1 <= r.time.timestamp() <= ended + 1 and r.start_date is None for r in rows)


def test_avl_replay_messages(wmata_dir: Path) -> None:
    messages = avl_messages(wmata_dir / "wmata_avl.csv", "wmata")
    first = [next(messages) for _ in range(100)]
    times = [m[0] for m in first]
    assert times == sorted(times)
    rows = [parse_json_position(topic, payload)[0] for _t, topic, payload in first]
    head = (wmata_dir / "wmata_avl.csv").read_text().splitlines()[1].split(",")  # WMATA: 5473, trip 8428100
    assert rows[0][1] == head[0] and rows[0][7] == head[4] and rows[0][9] == date(2026, 2, 16)
    shifted = next(avl_messages(wmata_dir / "wmata_avl.csv", "wmata", shift_to_s=time.time()))
    body = orjson.loads(shifted[2])
    assert abs(shifted[0] - time.time()) < 60 and "start_date" not in body and body["trip_id"] == head[4]


def test_retimed_messages_are_stamped_on_the_compressed_wall_clock(sim: FleetSimulation, cairns_feed: Feed,
                                                                   wmata_dir: Path) -> None:
    t0 = service_day_start(MONDAY, cairns_feed.timezone) + 8 * 3600
    wall0 = time.time() - 3600.0
    same = list(fleet_messages(sim, "cairns", t0, 10.0))[:50]
    retimed = list(fleet_messages(sim, "cairns", t0, 10.0, stamp=lambda t: wall0 + (t - t0) / 20.0))[:50]
    for (t, topic, plain), (t2, topic2, moved) in zip(same, retimed, strict=True):
        a, b = orjson.loads(plain), orjson.loads(moved)
        assert (t, topic, a["trip_id"]) == (t2, topic2, b["trip_id"])
        assert b["lat"] == pytest.approx(a["lat"], abs=5e-4)  # the same place but for the GPS noise drawn
        assert parse_json_position(topic, plain)[0].time.timestamp() == t and a["start_date"] == "20140602"
        assert parse_json_position(topic, moved)[0].time.timestamp() == pytest.approx(wall0 + (t - t0) / 20.0)
        assert "start_date" not in b
    now = time.time()
    replay = list(avl_messages(wmata_dir / "wmata_avl.csv", "wmata", shift_to_s=now, speedup=20.0))
    stamps = [orjson.loads(p)["ts"] for _t, _topic, p in replay]
    span = replay[-1][0] - replay[0][0]
    first, last = (parse_json_position("its/v1/vehicles/w/v/position", orjson.dumps({"ts": x, "lat": 1, "lon": 1}))
                   [0].time.timestamp() for x in (stamps[0], stamps[-1]))
    assert replay[0][0] == pytest.approx(now) and first == pytest.approx(now, abs=1.0)
    assert last - first == pytest.approx(span / 20.0, abs=1.0) and span > 4 * 3600


def test_fast_and_other_day_simulations_lose_nothing_at_the_collector(settings: Settings, db: Database,
                                                                      cairns_feed: Feed, wmata_dir: Path) -> None:
    """Issue #19 follow-up: `its simulate fleet --speedup 60` (or `--day` in the past) and a
    sped-up AVL replay used to stamp positions minutes or years away from the clock, which the
    collector's time window dead-letters. Through the real broker and collector, with the
    default window (60 s ahead, 7 days old), every message sent is stored."""
    from its.collector import Collector
    from telematics.ingest import ROUTES
    from telematics.simulator import run_replay

    assert settings.ingest_max_future_s == 60.0 and settings.mqtt_url
    collector = Collector(settings, db, ROUTES, client_id=f"test-sim-{time.time_ns()}")
    collector.start()
    try:
        past = service_day_start(MONDAY, cairns_feed.timezone) + 8 * 3600  # a 2014 service day
        sent = run_fleet(cairns_feed, settings.mqtt_url, "cairns", duration_s=2.0, interval_s=10.0, speedup=120.0,
                         start_s=past, max_vehicles=30)
        sent += run_replay(wmata_dir / "wmata_avl.csv", settings.mqtt_url, "wmata", duration_s=2.0, speedup=60.0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and db.fetchall(
                "SELECT (SELECT count(*) FROM vehicle_positions) + (SELECT count(*) FROM rejected_messages)")[0][0] < sent:
            time.sleep(0.2)
    finally:
        collector.stop()
    assert sent > 100
    assert db.fetchall("SELECT count(*) FROM rejected_messages")[0][0] == 0
    assert db.fetchall("SELECT count(*) FROM vehicle_positions")[0][0] == sent


def test_a_day_without_service_simulates_no_vehicle(cairns_feed: Feed) -> None:
    """A date outside the feed's calendar (its 2014 timetable on a day of 2099) runs no trip:
    an empty simulation that publishes nothing, not an error."""
    empty = FleetSimulation(cairns_feed, date(2099, 1, 5))
    t = service_day_start(date(2099, 1, 5), cairns_feed.timezone) + 9 * 3600.0
    assert empty.runs == [] and len(empty.active(t)) == 0 and empty.positions(t) == []

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
        sent = run_fleet(cairns_feed, broker_url, "cairns", duration_s=1.0, interval_s=10.0, speedup=60.0,
                         start_s=start)
        deadline = time.monotonic() + 5
        while len(received) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert sent > 20 and len(received) == sent
    rows = [parse_json_position(topic, payload)[0] for topic, payload in received]
    assert all(r[0] == "cairns" and r[7] for r in rows)


def test_avl_replay_messages(wmata_dir: Path) -> None:
    messages = avl_messages(wmata_dir / "wmata_avl.csv", "wmata")
    first = [next(messages) for _ in range(100)]
    times = [m[0] for m in first]
    assert times == sorted(times)
    rows = [parse_json_position(topic, payload)[0] for _t, topic, payload in first]
    assert rows[0][1] == "5473" and rows[0][7] == "8428100" and rows[0][9] == date(2026, 2, 16)
    shifted = next(avl_messages(wmata_dir / "wmata_avl.csv", "wmata", shift_to_s=time.time()))
    body = orjson.loads(shifted[2])
    assert abs(shifted[0] - time.time()) < 60 and "start_date" not in body and body["trip_id"] == "8428100"

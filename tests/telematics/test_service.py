"""One vehicle's failure never stops the board: a real `ArrivalsService` on the real database.

The WMATA feed is imported and the first 75 minutes of its real AVL are stored in
``vehicle_positions`` through the JSON ingestion parser, plus one position stamped 23 h
ahead (the ingest contract accepts up to 24 h), as a unit with a wrong clock leaves in the
store. The service starts from the store as in production: the start-up replay meets the
future row. Then one vehicle among the ~30 is poisoned at a time: a state a bug could
leave behind (a truncated pace record, a NaN service-day start, a trip the feed does not
know, a broken progress record that makes its next ping fail) and, through the real
message path, a ping stamped 23 h ahead. Each time the board refreshes, every other
vehicle's arrivals are exactly what they were, the poisoned vehicle falls back (its trip to
the schedule), the failure is logged with its id and counted in
``its_telematics_vehicle_failures_total``, and its next real ping brings it back.

Implausible positions (issue #19: a 5,000 km jump was shown publicly) go through the same
real message path: a fix outside the service area, an impossible jump inside it, and a fix
stamped a few minutes ahead of the clock; the first two are not applied, the last is applied
at the clock's time and does not hide the vehicle's next real pings. Live pings arrive at
their own time (the test's clock is moved to it while the message is handled).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from prometheus_client import REGISTRY

from its.alerts import AlertSink
from its.db import Database
from its.service import Context
from its.settings import load_settings
from telematics.board import vehicle_views
from telematics.config import TelematicsSettings
from telematics.fleet import Fleet, VehicleTrack
from telematics.gtfs.database import import_feed_file
from telematics.ingest import parse_json_position
from telematics.service import ArrivalsService, Snapshot
from telematics.store import write_positions

FUTURE_S = 23 * 3600.0
CUTOFF = "2026-02-16T17:15:00Z"


def _message(r: dict[str, Any], dt_s: float = 0.0) -> tuple[str, bytes]:
    """An AVL CSV row as a JSON position message (topic, payload), its time moved by ``dt_s``."""
    ts = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) + timedelta(seconds=dt_s)
    payload: dict[str, Any] = {"ts": ts.isoformat(), "lat": float(r["lat"]), "lon": float(r["lon"]),
                               "trip_id": r["trip_id"], "start_date": r["start_date"]}
    if r["speed_mps"]:
        payload["speed_mps"] = float(r["speed_mps"])
    return f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(payload)


class Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture(scope="module")
def avl(wmata_dir: Path) -> pd.DataFrame:
    return pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values(
        "timestamp", kind="stable")


@pytest.fixture(scope="module")
def stored(module_db: Database, wmata_dir: Path, avl: pd.DataFrame) -> tuple[Database, float, str]:
    """The database with the feed, 1.5 h of positions and one row of a vehicle stamped 23 h ahead."""
    import_feed_file(module_db, wmata_dir / "wmata_gtfs.zip", "wmata")
    head = avl[avl["timestamp"] < CUTOFF]
    rows = [row for r in head.to_dict("records") for row in parse_json_position(*_message(r))]
    skewed = head.iloc[-1].to_dict()
    rows += parse_json_position(*_message(skewed, FUTURE_S))
    assert write_positions(module_db, rows) == len(rows)
    last = max(r[2] for r in rows[:-1]).timestamp()  # the clock: the latest real ping
    return module_db, last, str(skewed["vehicle_id"])


def _failures(stage: str) -> float:
    return REGISTRY.get_sample_value("its_telematics_vehicle_failures_total",
                                     {"agency": "wmata", "stage": stage}) or 0.0


def _ignored(reason: str = "future") -> float:
    return REGISTRY.get_sample_value("its_telematics_positions_ignored_total",
                                     {"agency": "wmata", "reason": reason}) or 0.0


def _arrive(service: ArrivalsService, clock: Clock, r: dict[str, Any], dt_s: float = 0.0, **move: float) -> None:
    """Handle the AVL row ``r`` as a live message (its time moved by ``dt_s``, its position by
    ``move``: ``dlat``/``dlon`` degrees) received at the row's real time."""
    frozen = clock.now_s
    clock.now_s = max(frozen, _epoch(r["timestamp"]))
    try:
        if move:
            r = {**r, "lat": float(r["lat"]) + move.get("dlat", 0.0), "lon": float(r["lon"]) + move.get("dlon", 0.0)}
        service._on_json(*_message(r, dt_s))
    finally:
        clock.now_s = frozen


@pytest.fixture(scope="module")
def running(stored: tuple[Database, float, str]) -> Iterator[tuple[ArrivalsService, Clock]]:
    """The service started from the store (its replay meets the future row)."""
    db, last, _skewed = stored
    ctx = Context(settings=load_settings(database_url=db.url, mqtt_url=None), db=db, read_db=db,
                  alerts=AlertSink(db))
    clock = Clock(last)
    ignored = _ignored()
    service = ArrivalsService(TelematicsSettings(recent_positions_min=80, history_days=0), clock=clock,
                              background=False)
    service.start(ctx)
    assert service.ready() and _ignored() == ignored + 1  # the future row was skipped, nothing else
    yield service, clock
    service.stop()


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _by_vehicle(snap: Snapshot) -> dict[str, dict[tuple[str, str, int], tuple[float, float, float]]]:
    """Every served predicted arrival, grouped by vehicle: (stop, trip, sequence) -> (p10,
    arrival, p90) epoch s."""
    out: dict[str, dict[tuple[str, str, int], tuple[float, float, float]]] = {}
    for stop_id, items in snap.arrivals.items():
        for e in items:
            if e["predicted"]:
                out.setdefault(e["vehicle_id"], {})[(stop_id, e["trip_id"], e["stop_sequence"])] = (
                    _epoch(e["p10_arrival"]), _epoch(e["predicted_arrival"]), _epoch(e["p90_arrival"]))
    return out


def _assert_same_others(clean: Snapshot, after: Snapshot, victim: str) -> None:
    """Every vehicle but ``victim`` serves the same arrivals (to the second: the batch without
    the victim sums its segments in another order)."""
    want = {vid: items for vid, items in _by_vehicle(clean).items() if vid != victim}
    got = {vid: items for vid, items in _by_vehicle(after).items() if vid != victim}
    assert set(got) == set(want) and len(want) >= 15
    for vid, items in want.items():
        assert set(got[vid]) == set(items), vid
        for key, times in items.items():
            assert max(abs(a - b) for a, b in zip(times, got[vid][key], strict=True)) <= 1.0, (vid, key)


def test_start_up_replay_skips_the_future_row(running: tuple[ArrivalsService, Clock],
                                              stored: tuple[Database, float, str]) -> None:
    service, clock = running
    _db, last, skewed = stored
    v = service.fleets["wmata"].vehicles[skewed]
    assert v.observed_s <= last and v.trip_id is not None  # its real pings made it, not the future one
    snap = service.refresh(clock.now_s)
    predicted = _by_vehicle(snap)
    assert skewed in predicted and len(predicted) >= 20
    fresh = [x for x in snap.vehicles.values() if not x["stale"]]
    assert len(fresh) >= 20 and all(x["trip_id"] for x in fresh)


def _truncated_pace_record(v: VehicleTrack) -> None:
    v.segments = [(0, 0.0)]  # type: ignore[list-item]  # a record cut short: unpacking it raises


def _nan_service_day(v: VehicleTrack) -> None:
    v.day0_s = math.nan  # every prediction of the vehicle would be NaN


def _unknown_trip(v: VehicleTrack) -> None:
    v.trip_id = "no-such-trip"  # a trip the feed does not know: its view cannot be built


POISONS: dict[str, tuple[Callable[[VehicleTrack], None], str]] = {
    "truncated pace record": (_truncated_pace_record, "predict"),
    "NaN service-day start": (_nan_service_day, "predict"),
    "trip unknown to the feed": (_unknown_trip, "view"),
}


USED: set[str] = set()  # vehicles poisoned by earlier tests of the module


def _victim(fleet: Fleet, snap: Snapshot, avl: pd.DataFrame) -> VehicleTrack:
    """A fresh vehicle with predictions, mid-trip and still on that trip at its next ping,
    not poisoned before."""
    predicted = _by_vehicle(snap)
    for vid in sorted(predicted):
        v = fleet.vehicles[vid]
        nxt = _next_pings(avl, vid, v.observed_s)
        if (vid not in USED and v.next_stop >= 2 and len(predicted[vid]) >= 3 and nxt
                and nxt[0]["trip_id"] == v.trip_id):
            USED.add(vid)
            return v
    raise AssertionError("no vehicle left to poison")


def _next_pings(avl: pd.DataFrame, vehicle_id: str, after_s: float) -> list[dict[str, Any]]:
    """The vehicle's AVL rows after ``after_s`` (epoch s)."""
    after = datetime.fromtimestamp(after_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return avl[(avl["vehicle_id"] == vehicle_id) & (avl["timestamp"] > after)].to_dict("records")



@pytest.mark.parametrize("poison", sorted(POISONS))
def test_one_poisoned_vehicle_falls_back_alone(running: tuple[ArrivalsService, Clock], avl: pd.DataFrame,
                                               poison: str, caplog: pytest.LogCaptureFixture) -> None:
    service, clock = running
    fleet = service.fleets["wmata"]
    clean = service.refresh(clock.now_s)
    v = _victim(fleet, clean, avl)
    trip = v.trip_id
    spoil, stage = POISONS[poison]
    before = _failures(stage)
    spoil(v)
    with caplog.at_level(logging.ERROR, logger="telematics.guard"):
        poisoned = service.refresh(clock.now_s)
    _assert_same_others(clean, poisoned, v.vehicle_id)  # the board refreshed for every other vehicle
    # the poisoned vehicle falls back: unknown, its trip on the schedule
    assert v.vehicle_id not in _by_vehicle(poisoned)
    assert poisoned.vehicles[v.vehicle_id]["trip_id"] is None
    entries = [e for items in poisoned.arrivals.values() for e in items if e["trip_id"] == trip]
    assert entries and all(not e["predicted"] and e["fallback"] == "no_vehicle" for e in entries)
    assert _failures(stage) == before + 1
    assert any(v.vehicle_id in r.getMessage() and stage in r.getMessage() for r in caplog.records)
    # its next real ping brings it back
    _heal(service, clock, avl, v, trip)


def test_a_vehicle_whose_view_fails_is_listed_by_its_position(running: tuple[ArrivalsService, Clock],
                                                               avl: pd.DataFrame) -> None:
    """A progress record broken only where the view reads it: the vehicle stays in the
    vehicle list (position, no trip) and the failure is counted at stage ``view``."""
    service, clock = running
    fleet = service.fleets["wmata"]
    v = _victim(fleet, service.refresh(clock.now_s), avl)
    saved = v.next_stop
    before = _failures("view")
    v.next_stop = None  # type: ignore[assignment]  # comparing it raises in the view
    try:
        views, snaps = vehicle_views(fleet, clock.now_s)
    finally:
        v.next_stop = saved
    assert _failures("view") == before + 1
    view = views[v.vehicle_id]
    assert (view["lat"], view["lon"]) == (v.lat, v.lon) and view["trip_id"] is None and view["route_id"] is None
    assert len(views) == len(fleet.vehicles) == len(snaps)
    assert sum(1 for x in views.values() if x["trip_id"]) >= 15  # the others keep theirs


def _heal(service: ArrivalsService, clock: Clock, avl: pd.DataFrame, v: VehicleTrack, trip: str | None) -> None:
    r = _next_pings(avl, v.vehicle_id, v.observed_s)[0]
    _arrive(service, clock, r)
    assert v.trip_id == trip
    assert v.vehicle_id in _by_vehicle(service.refresh(clock.now_s))


def test_a_ping_that_fails_only_loses_its_vehicle(running: tuple[ArrivalsService, Clock], avl: pd.DataFrame,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A progress record broken by a bug makes the vehicle's next ping raise inside
    `Fleet.observe`: the ping is dropped, the vehicle falls back, the board refreshes."""
    service, clock = running
    fleet = service.fleets["wmata"]
    clean = service.refresh(clock.now_s)
    v = _victim(fleet, clean, avl)
    trip = v.trip_id
    before = _failures("observe")
    v.to_next = None  # type: ignore[assignment]
    pings = _next_pings(avl, v.vehicle_id, v.observed_s)
    with caplog.at_level(logging.ERROR, logger="telematics.guard"):
        _arrive(service, clock, pings[0])
    assert _failures("observe") == before + 1 and v.trip_id is None
    assert any(v.vehicle_id in r.getMessage() and "observe" in r.getMessage() for r in caplog.records)
    _assert_same_others(clean, service.refresh(clock.now_s), v.vehicle_id)
    _heal(service, clock, avl, v, trip)


def test_a_live_ping_stamped_a_day_ahead_is_not_applied(running: tuple[ArrivalsService, Clock],
                                                        avl: pd.DataFrame) -> None:
    """Through the real message path: the future ping is stored by the collector (the contract
    allows it) but the live state ignores it, so the vehicle's real pings keep coming in."""
    service, clock = running
    fleet = service.fleets["wmata"]
    clean = service.refresh(clock.now_s)
    v = _victim(fleet, clean, avl)
    pings = _next_pings(avl, v.vehicle_id, v.observed_s)
    ignored = _ignored()
    _arrive(service, clock, pings[0], FUTURE_S)
    assert _ignored() == ignored + 1 and v.observed_s < clock.now_s + 1.0
    assert _by_vehicle(service.refresh(clock.now_s)) == _by_vehicle(clean)  # nothing changed at all
    _arrive(service, clock, pings[0])  # the real one
    assert v.observed_s == _epoch(pings[0]["timestamp"])


@pytest.mark.parametrize(("name", "flag", "move"), [("5,000 km away", "area", {"dlat": 45.0}),
                                                   ("12 km jump within the area", "speed", {"dlat": 0.11})])
def test_an_implausible_position_is_not_shown_and_the_next_real_one_is(
        running: tuple[ArrivalsService, Clock], avl: pd.DataFrame, name: str, flag: str, move: dict[str, float]) -> None:
    service, clock = running
    fleet = service.fleets["wmata"]
    clean = service.refresh(clock.now_s)
    v = _victim(fleet, clean, avl)
    where = (v.lat, v.lon, v.observed_s, v.trip_id)
    pings = _next_pings(avl, v.vehicle_id, v.observed_s)
    area = service.gate.areas["wmata"]
    assert area is not None and area.contains(where[0], where[1])
    if flag == "speed" and v.lat > (area.south + area.north) / 2:
        move = {"dlat": -move["dlat"]}  # towards the middle of the area: still inside it
    ignored = _ignored(flag)
    _arrive(service, clock, pings[0], **move)
    assert _ignored(flag) == ignored + 1, name
    assert (v.lat, v.lon, v.observed_s, v.trip_id) == where  # not applied: the vehicle is where it was
    snap = service.refresh(clock.now_s)
    shown = snap.vehicles[v.vehicle_id]
    assert (shown["lat"], shown["lon"]) == pytest.approx((where[0], where[1]))  # nor shown anywhere else
    assert _by_vehicle(snap) == _by_vehicle(clean)
    _arrive(service, clock, pings[1])  # the next real ping is applied as usual
    assert v.observed_s == _epoch(pings[1]["timestamp"]) and v.trip_id == where[3]


def test_a_ping_a_few_minutes_ahead_is_applied_at_the_clock_and_freezes_nothing(
        running: tuple[ArrivalsService, Clock], avl: pd.DataFrame) -> None:
    """Issue #19: a position stamped ahead of the clock (within ITS_TELEMATICS_MAX_FUTURE_S)
    made its vehicle look fresh in the future and its next real pings were dropped as out of
    order. It is applied at the clock's time; the next real ping comes in."""
    service, clock = running
    fleet = service.fleets["wmata"]
    v = _victim(fleet, service.refresh(clock.now_s), avl)
    pings = _next_pings(avl, v.vehicle_id, v.observed_s)
    arrival = _epoch(pings[0]["timestamp"])
    clamped = REGISTRY.get_sample_value("its_telematics_positions_clamped_total", {"agency": "wmata"}) or 0.0
    _arrive(service, clock, pings[0], 240.0)  # its unit's clock is 4 min fast
    assert v.observed_s == arrival  # applied at the time it arrived, not 4 min ahead
    assert REGISTRY.get_sample_value("its_telematics_positions_clamped_total", {"agency": "wmata"}) == clamped + 1
    later = [r for r in pings[1:] if _epoch(r["timestamp"]) < arrival + 240.0][:2]
    assert later  # real pings stamped before the skewed one's time
    for r in later:
        _arrive(service, clock, r)
        assert v.observed_s == _epoch(r["timestamp"])

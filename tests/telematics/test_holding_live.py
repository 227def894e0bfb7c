"""The live holding rule on real objects: the WMATA fleet replayed to 19:08 UTC of the recorded day.

The recorded AVL (from 18:40) is fed to a `Fleet` of the day's WMATA feed as the live service does;
`HoldingAdvisor` advises from the board's predictions. Every advice is checked against the
kernel the eval uses (`telematics.holding.headway_holds`, one rule), the control stops
against the feed's timepoints, and the timetabled routes (scheduled headways above 12 min)
against the rule that a late bus is never held there. The routes' roles come from the day's
schedule (`route_roles`): C53 frequent, D40 and D96 timetabled on the real data; six frequent
and two timetabled Cairns routes on the stand-in (`tests.standins`).
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from telematics.advice import AdviceBoard, advice_topic
from telematics.board import Board
from telematics.config import HoldingRoute, TelematicsSettings
from telematics.fleet import Fleet
from telematics.gtfs import read_feed, service_day_start
from telematics.holding import RouteParams, control_stops, feed_timepoints, headway_holds
from telematics.holding_live import HoldAdvice, HoldingAdvisor

from .holding_fixtures import (
    DAY,
    REPLAY_FROM,
    T_ADVICE,
    avl_rows,
    epoch,
    route_roles,
    wmata_day_zip_fixture,
)

__all__ = ["wmata_day_zip_fixture"]
CONFIG = TelematicsSettings(history_days=0, recent_positions_min=0)


@pytest.fixture(scope="module")
def live(wmata_day_zip: Path, wmata_dir: Path) -> tuple[Fleet, Board, float]:
    """The fleet at T_ADVICE, fed the recorded positions since REPLAY_FROM, and its board."""
    fleet = Fleet("wmata", read_feed(wmata_day_zip), CONFIG)
    for row in avl_rows(wmata_dir / "wmata_avl.csv", T_ADVICE, REPLAY_FROM):
        fleet.observe(row)
    now = epoch(T_ADVICE)
    return fleet, fleet.board(now), now


@pytest.fixture(scope="module")
def roles(live: tuple[Fleet, Board, float]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The frequent and the timetabled routes of the day around T_ADVICE (`route_roles`)."""
    fleet, _board, now = live
    frequent, timetabled = route_roles(fleet, DAY, now, CONFIG.holding_frequent_headway_s)
    assert frequent and len(timetabled) >= 2, (frequent, timetabled)
    return frequent, timetabled


def _next_control_row(fleet: Fleet, mask: np.ndarray, trip: str, next_stop: int) -> int | None:
    lo, hi = fleet.trip_rows[trip]
    ahead = np.flatnonzero(mask[lo + next_stop:hi])
    return lo + next_stop + int(ahead[0]) if len(ahead) else None


def test_advice_follows_the_one_rule_at_timepoints(live: tuple[Fleet, Board, float],
                                                   roles: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    fleet, board, now = live
    frequent, timetabled = roles
    advisor = HoldingAdvisor(CONFIG)
    t0 = time.perf_counter()
    advice = advisor.advise(fleet, now, board.predicted)
    took_ms = (time.perf_counter() - t0) * 1000
    print(f"advice for {len(fleet.vehicles)} buses ({len(board.predicted)} predictions) in {took_ms:.1f} ms")
    assert advice, f"the recorded evening has bunched buses on {frequent}: some advice is expected"
    assert len({a.vehicle_id for a in advice}) == len(advice) == len({a.advice_id for a in advice})
    assert {a.route_id for a in advice if a.frequent} & set(frequent)
    assert {a.route_id for a in advice if a.frequent} <= set(frequent)
    assert {a.route_id for a in advice if not a.frequent} & set(timetabled)
    assert {a.route_id for a in advice if not a.frequent} <= set(timetabled)
    timepoint = feed_timepoints(fleet.feed.stop_times)
    assert timepoint is not None
    for a in advice:
        lo, hi = fleet.trip_rows[a.trip_id]
        k = lo + a.stop_index
        assert timepoint[k] and k < hi - 1 and fleet.st_stop_list[k] == a.stop_id, a  # a timepoint, not the last stop
        assert a.control == "timepoints"
        v = fleet.vehicles[a.vehicle_id]
        assert (v.trip_id, v.service_date) == (a.trip_id, a.service_date) and a.stop_index >= v.next_stop
        assert CONFIG.holding_min_hold_s <= a.hold_s <= a.cap_s + 1e-6
        share = CONFIG.holding_origin_cap_share if a.at_origin else CONFIG.holding_cap_share
        assert a.cap_s == pytest.approx(share * a.scheduled_headway_s)
        assert a.frequent == (a.scheduled_headway_s <= CONFIG.holding_frequent_headway_s)
        assert a.scheduled_departure_s == service_day_start(a.service_date, fleet.timezone) + fleet.st_dep[k]
        # the reported headways give back the hold through the eval's kernel
        lead = np.nan if a.forward_headway_s is None else a.ready_s - a.forward_headway_s
        follow = np.nan if a.backward_headway_s is None else a.ready_s + a.backward_headway_s
        params = RouteParams.from_headways([a.scheduled_headway_s], frequent_headway_s=CONFIG.holding_frequent_headway_s,
                                           gain=CONFIG.holding_gain, cap_share=CONFIG.holding_cap_share,
                                           origin_cap_share=CONFIG.holding_origin_cap_share)
        again = headway_holds([0], [a.ready_s], [lead], [follow], [a.scheduled_departure_s], params, [a.at_origin])
        assert a.hold_s == pytest.approx(float(again[0]), abs=1e-6), a
        assert str(round(a.hold_s)) in a.reason
        if not a.frequent:  # timetabled: never past the scheduled departure
            assert a.depart_s <= a.scheduled_departure_s + 1e-6
            assert "timetabled route" in a.reason


def test_a_late_bus_on_a_timetabled_route_is_never_held(live: tuple[Fleet, Board, float],
                                                        roles: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    fleet, board, now = live
    _frequent, timetabled = roles
    advisor = HoldingAdvisor(CONFIG)
    advised = {a.vehicle_id for a in advisor.advise(fleet, now, board.predicted)}
    mask = advisor.control_stops(fleet).mask
    late, early = [], []
    for v in fleet.vehicles.values():
        if (v.trip_id is None or now - v.observed_s > CONFIG.stale_after_s
                or fleet.trip_route[v.trip_id] not in timetabled):
            continue
        k = _next_control_row(fleet, mask, v.trip_id, v.next_stop)
        p = None if k is None else board.predicted.get((v.trip_id, v.service_date, k))
        if p is None:
            continue
        sched = service_day_start(v.service_date, fleet.timezone) + fleet.st_dep[k]
        (late if p[0] >= sched else early).append(v.vehicle_id)
    assert late, f"the recorded evening has late buses on {timetabled}"
    assert not advised & set(late)
    assert advised & set(early)  # control: early buses on those routes are advised


def test_control_stops_without_timepoints_and_from_a_route_list(live: tuple[Fleet, Board, float],
                                                                roles: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    fleet, board, now = live
    frequent, timetabled = roles
    listed_route, (kept, disabled) = frequent[0], timetabled[:2]  # C53; D40, D96 on the real data
    # a per-route list replaces the timepoints of that route; a disabled route is never advised
    trips = [t for t in fleet.trip_rows if fleet.trip_route[t] == listed_route]
    lo, _hi = fleet.trip_rows[trips[0]]
    listed = [fleet.st_stop_list[lo + 3], fleet.st_stop_list[lo + 10]]
    config = CONFIG.model_copy(update={"holding_routes": {listed_route: HoldingRoute(control_stops=listed, gain=1.0),
                                                          disabled: HoldingRoute(enabled=False)}})
    advisor = HoldingAdvisor(config)
    ctl = advisor.control_stops(fleet)
    others = set(fleet.trip_route.values()) - {listed_route, disabled}
    assert kept in others
    assert ctl.route_label == {listed_route: "route list", disabled: "disabled"} | dict.fromkeys(others, "timepoints")
    routes = np.array([fleet.trip_route[t] for t in fleet.st_trip])
    assert set(np.asarray(fleet.st_stop)[ctl.mask & (routes == listed_route)]) <= set(listed)
    assert (ctl.mask & (routes == listed_route)).any()
    assert not (ctl.mask & (routes == disabled)).any()
    advice = advisor.advise(fleet, now, board.predicted)
    assert advice
    for a in advice:
        assert a.route_id != disabled
        assert a.route_id != listed_route or (a.stop_id in listed and a.control == "route list")
    # without timepoints in the feed: the eval's fallback, the first stop and every 480 s of schedule
    bare = dataclasses.replace(fleet.feed, stop_times=fleet.feed.stop_times.drop(columns="timepoint"))
    plain = Fleet("wmata", bare, CONFIG)
    ctl = HoldingAdvisor(CONFIG).control_stops(plain)
    assert set(ctl.route_label.values()) == {"first stop and every 480 s of schedule"}
    ptr = np.r_[sorted(lo for lo, _ in plain.trip_rows.values()), len(plain.st_trip)]
    assert np.array_equal(ctl.mask, control_stops(plain.st_dep, ptr, None))
    first = np.asarray(ptr[:-1])
    assert ctl.mask[first].all()


def test_advice_is_frozen_while_the_bus_holds_at_its_stop(live: tuple[Fleet, Board, float]) -> None:
    fleet, board, now = live
    advisor = HoldingAdvisor(CONFIG)
    advice = advisor.advise(fleet, now, board.predicted)
    a = max(advice, key=lambda x: x.hold_s)
    v = fleet.vehicles[a.vehicle_id]
    saved = (v.along_m, v.next_stop, list(v.passed_s), v.observed_s)
    try:  # the bus reaches the stop and stands there: the advice stays as given
        stop_m = float(fleet.paths.stop_dist_m[a.trip_id][a.stop_index])
        v.along_m = stop_m + 10.0
        v.next_stop = a.stop_index + 1
        v.passed_s = [*v.passed_s[:a.stop_index], *[np.nan] * (a.stop_index - len(v.passed_s)), a.ready_s]
        v.observed_s = a.ready_s + 5.0
        again = {x.vehicle_id: x for x in advisor.advise(fleet, a.ready_s + 5.0, board.predicted)}
        assert again[a.vehicle_id] is a
        # once the hold has run out (plus the grace) it is gone
        v.observed_s = a.depart_s + 120.0
        later = {x.vehicle_id: x for x in advisor.advise(fleet, a.depart_s + 120.0, board.predicted)}
        assert later.get(a.vehicle_id) is None or later[a.vehicle_id].advice_id != a.advice_id
        # and a bus that left the stop (100 m beyond) is not held there any more
        v.along_m, v.next_stop, v.passed_s, v.observed_s = saved
        fresh = HoldingAdvisor(CONFIG)
        assert a.advice_id in {x.advice_id for x in fresh.advise(fleet, now, board.predicted)}
        v.along_m, v.next_stop, v.observed_s = stop_m + 100.0, a.stop_index + 1, a.ready_s + 5.0
        gone = {x.vehicle_id: x for x in fresh.advise(fleet, a.ready_s + 5.0, board.predicted)}
        assert gone.get(a.vehicle_id) is None or gone[a.vehicle_id].advice_id != a.advice_id
    finally:
        v.along_m, v.next_stop, v.passed_s, v.observed_s = saved


def test_advice_json_is_what_the_api_and_the_vehicle_get(live: tuple[Fleet, Board, float]) -> None:
    fleet, board, now = live
    a: HoldAdvice = HoldingAdvisor(CONFIG).advise(fleet, now, board.predicted)[0]
    body = a.to_json()
    assert body["hold_s"] == round(a.hold_s) and body["arrive_at"].endswith("Z") and body["depart_at"] > body["arrive_at"]
    assert body["service_date"] == DAY.isoformat() and body["stop_name"]


def test_advice_board_publishes_supersedes_and_clears(live: tuple[Fleet, Board, float]) -> None:
    fleet, board, now = live
    advice = HoldingAdvisor(CONFIG).advise(fleet, now, board.predicted)
    a, b = advice[0], advice[1]
    topic_a, topic_b = advice_topic("wmata", a.vehicle_id), advice_topic("wmata", b.vehicle_id)
    # advised holds go to the buses at once (default) ...
    board_ = AdviceBoard(CONFIG)
    sent = dict(board_.update([a, b], now))
    assert set(sent) == {topic_a, topic_b} and orjson.loads(sent[topic_a])["status"] == "advised"
    assert board_.update([a, b], now + 1) == []  # nothing changed: nothing sent
    small = dataclasses.replace(a, hold_s=a.hold_s + CONFIG.holding_republish_s / 2)
    assert board_.update([small, b], now + 2) == []  # a small change is not worth a message
    moved = dataclasses.replace(a, hold_s=a.hold_s + CONFIG.holding_republish_s)
    assert [t for t, _ in board_.update([moved, b], now + 3)] == [topic_a]  # superseded
    assert board_.update([b], now + 4) == [(topic_a, b"")]  # no advice any more: cleared
    # ... or only once accepted; a dismissal clears the bus's topic
    strict = AdviceBoard(CONFIG.model_copy(update={"holding_publish_unaccepted": False}))
    assert strict.update([a, b], now) == []
    entry, sent_ = strict.decide(a.advice_id, "accept", "dana", datetime.fromtimestamp(now + 5, UTC))
    assert (entry["status"], entry["decided_by"], entry["published"]) == ("accepted", "dana", True)
    assert [(t, orjson.loads(p)["status"]) for t, p in sent_] == [(topic_a, "accepted")]
    _, sent_ = strict.decide(a.advice_id, "dismiss", "alex", datetime.fromtimestamp(now + 6, UTC))
    assert sent_ == [(topic_a, b"")]
    assert strict.update([a, b], now + 7) == []  # the decision sticks to the advice
    with pytest.raises(KeyError):
        strict.decide("0123456789abcdef", "accept", "dana", datetime.fromtimestamp(now, UTC))
    with pytest.raises(ValueError, match="action"):
        strict.decide(a.advice_id, "hold", "dana", datetime.fromtimestamp(now, UTC))

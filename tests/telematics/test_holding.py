"""The holding-advice kernel: the rule's properties and a 500-bus timing (reported, not asserted)."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.holding import RouteParams, advise, headway_holds, schedule_holds

# route 0 frequent (10 min), route 1 timetabled (20 min)
PARAMS = RouteParams.from_headways([600.0, 1200.0], gain=0.6, cap_share=0.2, origin_cap_share=0.5)
times = st.floats(min_value=-3000.0, max_value=3000.0, allow_nan=False)
maybe = st.one_of(st.just(float("nan")), times)


@settings(max_examples=300, deadline=None)
@given(route=st.integers(0, 1), lead=maybe, follow=maybe, sched=maybe, origin=st.booleans())
def test_hold_is_between_zero_and_the_cap(route: int, lead: float, follow: float, sched: float,
                                          origin: bool) -> None:
    hold = headway_holds([route], [0.0], [lead], [follow], [sched], PARAMS, [origin])[0]
    cap = (PARAMS.origin_cap_s if origin else PARAMS.cap_s)[route]
    assert 0.0 <= hold <= cap + 1e-9


@settings(max_examples=300, deadline=None)
@given(lead=maybe, follow=maybe, late=st.floats(min_value=0.0, max_value=3000.0), origin=st.booleans())
def test_a_late_bus_on_a_timetabled_route_is_never_held(lead: float, follow: float, late: float,
                                                       origin: bool) -> None:
    # ready `late` s after its scheduled departure: never held, whatever the neighbours
    assert headway_holds([1], [late], [lead], [follow], [0.0], PARAMS, [origin])[0] == 0.0
    # nor when its schedule is unknown
    assert headway_holds([1], [late], [lead], [follow], [np.nan], PARAMS, [origin])[0] == 0.0


@settings(max_examples=200, deadline=None)
@given(lead=maybe, follow=maybe, early=st.floats(min_value=0.0, max_value=3000.0))
def test_an_early_bus_on_a_timetabled_route_is_held_at_most_to_its_schedule(lead: float, follow: float,
                                                                           early: float) -> None:
    hold = headway_holds([1], [-early], [lead], [follow], [0.0], PARAMS)[0]
    assert hold <= early + 1e-9


def test_a_late_bus_on_a_frequent_route_is_held_for_the_headway() -> None:
    # 10 min late but right behind its leader, the follower far back: headways matter, not the timetable
    hold = headway_holds([0], [600.0], [540.0], [1500.0], [0.0], PARAMS)[0]
    assert hold > 0.0


def test_the_rule_evens_out_a_bunched_pair() -> None:
    # bus ready 100 s after its leader left, follower due 1100 s later (H = 600 s)
    ready, lead, follow = 1000.0, 900.0, 2100.0
    hold = headway_holds([0], [ready], [lead], [follow], [np.nan], PARAMS)[0]
    before = abs((follow - ready) - (ready - lead))
    dep = ready + hold
    after = abs((follow - dep) - (dep - lead))
    assert hold == PARAMS.cap_s[0]  # gain 0.6 * (1100 - 100) / 2 = 300 s, capped at 120 s
    assert after < before
    # with the full gain and no cap it departs exactly between leader and follower
    even = RouteParams.from_headways([600.0], gain=1.0, cap_share=10.0)
    dep = ready + headway_holds([0], [ready], [lead], [follow], [np.nan], even)[0]
    assert abs((dep - lead) - (follow - dep)) < 1e-9


def test_a_bus_with_a_short_backward_headway_is_not_held() -> None:
    assert headway_holds([0], [1000.0], [300.0], [1100.0], [np.nan], PARAMS)[0] == 0.0


def test_missing_neighbours_count_as_the_scheduled_headway() -> None:
    # no leader known: forward headway = H = 600; follower 900 s back -> gain * 150
    hold = headway_holds([0], [0.0], [np.nan], [900.0], [np.nan], PARAMS)[0]
    assert abs(hold - 0.6 * 150.0) < 1e-9


def test_schedule_holds_wait_only_when_early() -> None:
    h = schedule_holds([100.0, 300.0, 0.0], [250.0, 200.0, np.nan])
    assert list(h) == [150.0, 0.0, 0.0]
    assert schedule_holds([0.0], [500.0], cap_s=60.0)[0] == 60.0


def test_advise_finds_leader_and_follower_among_the_predictions() -> None:
    # stop key 7 (route 0): buses predicted at 1000 (deciding), 1900 (behind), 1050 (other stop key)
    key = np.array([7, 7, 8])
    pred = np.array([1000.0, 1900.0, 1050.0])
    hold = advise(key, [0, 0, 0], pred, [np.nan] * 3, [True, False, True], [950.0, 950.0, 100.0], PARAMS)
    # row 0: leader left at 950 (h_f 50), follower at 1900 (h_b 900): 0.6 * 425 = 255, capped 120
    assert hold[0] == PARAMS.cap_s[0]
    assert hold[1] == 0.0  # not deciding
    # row 2 alone at key 8: leader left at 100 (h_f 950), no follower (h_b = H = 600): not held
    assert hold[2] == 0.0
    # the same bus with a follower close behind is not held
    close = advise([7, 7], [0, 0], [1000.0, 1040.0], [np.nan] * 2, [True, False], [950.0, 950.0], PARAMS)
    assert close[0] == 0.0


def _fleet(n_buses: int, stops_ahead: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Predictions of a fleet: 10 buses per route, each predicted at its next control stops."""
    routes = n_buses // 10
    bus = np.repeat(np.arange(n_buses), stops_ahead)
    route = bus // 10
    k = np.tile(np.arange(stops_ahead), n_buses)
    first = rng.integers(0, 8, size=n_buses)[bus]
    stop_key = route * 20 + first + k
    pred = 3600.0 * (bus % 10) / 10 + rng.normal(0.0, 120.0, size=len(bus)) + 300.0 * (k + 1)
    return {"stop_key": stop_key, "route": route, "pred": pred, "sched": pred + rng.normal(0, 60, len(bus)),
            "deciding": k == 0, "last": pred - rng.uniform(300, 900, len(bus)), "routes": np.array(routes)}


def test_advise_for_a_500_bus_fleet_timing() -> None:
    rng = np.random.default_rng(0)
    fleet = _fleet(500, 6, rng)
    params = RouteParams.from_headways(rng.uniform(300.0, 1800.0, int(fleet["routes"])))
    spent = []
    for _ in range(20):
        t0 = time.perf_counter()
        hold = advise(fleet["stop_key"], fleet["route"], fleet["pred"], fleet["sched"], fleet["deciding"],
                      fleet["last"], params)
        spent.append(time.perf_counter() - t0)
    print(f"advise: 500 buses x 6 control stops ahead = {len(hold)} predictions: "
          f"median {1000 * np.median(spent):.2f} ms per update (max {1000 * max(spent):.2f} ms)")
    assert (hold[~fleet["deciding"]] == 0).all()
    assert (hold >= 0).all() and (hold <= params.cap_s[fleet["route"]] + 1e-9).all()
    assert (hold[fleet["deciding"]] > 0).any()

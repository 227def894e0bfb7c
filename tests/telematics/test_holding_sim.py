"""The counterfactual holding simulator: replay, control effects, and reproduction of the WMATA day."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from telematics.avl import read_avl
from telematics.gtfs import read_feed
from telematics.holding import RouteParams
from telematics.holding_days import recorded_day
from telematics.holding_sim import PassengerArrivals, SimDay, recorded_cv, score, simulate

H = 600.0


def _line(starts: list[float], n_stops: int = 12, run_s: float = 120.0, control_every: int = 3,
          slow: dict[tuple[int, int], float] | None = None) -> SimDay:
    """Trips of one route over ``n_stops`` stops, scheduled every `H` s, leaving at ``starts``
    (s after their scheduled departures); ``slow[(trip, row)]`` adds running time there."""
    n = len(starts)
    rows = n * n_stops
    k = np.tile(np.arange(n_stops), n)
    trip = np.repeat(np.arange(n), n_stops)
    sched = 1000.0 * 0 + trip * H + k * run_s
    run = np.where(k == n_stops - 1, 0.0, run_s)
    for (j, i), extra in (slow or {}).items():
        run[j * n_stops + i] += extra
    zero = np.zeros(rows)
    return SimDay(trip_ptr=np.arange(0, rows + 1, n_stops), trip_route=np.zeros(n, dtype=np.int64),
                  trip_next=np.full(n, -1), start_s=np.arange(n) * H + np.asarray(starts),
                  end_s=sched[n_stops - 1::n_stops], stop_key=k.astype(np.int64), sched_s=sched, run_s=run,
                  extra_dwell_s=zero, wait_s=zero, profile_s=np.where(k == n_stops - 1, 0.0, run_s),
                  control=(k % control_every == 0) & (k < n_stops - 1), origin=k == 0,
                  recorded_s=np.full(rows, np.nan))


def _pax(day: SimDay, rate_per_s: float, seed: int = 0) -> PassengerArrivals:
    return PassengerArrivals.draw(int(day.stop_key.max()) + 1, rate_per_s, -3600.0,
                                  float(day.sched_s.max()) + 7200.0, np.random.default_rng(seed))


def test_without_passengers_or_control_the_day_replays_exactly() -> None:
    day = _line([0.0, 30.0, -20.0, 200.0], slow={(1, 4): 90.0})
    params = RouteParams.from_headways([H], gain=0.6, cap_share=0.2)
    res = simulate(day, "none", params, _pax(day, 0.0))
    # departure = start + cumulative running time (no dwell, no hold)
    step = np.r_[0.0, day.run_s[:-1]]
    first = np.repeat(day.trip_ptr[:-1], np.diff(day.trip_ptr))
    c = np.cumsum(step)
    expected = day.start_s[day.row_trip] + c - c[first]
    assert np.allclose(res.arrival_s, expected)
    assert (res.hold_s == 0).all() and (res.boardings == 0).all()


def test_boarding_dwell_counts_the_passengers_since_the_last_bus() -> None:
    day = _line([0.0, 0.0, 0.0])
    params = RouteParams.from_headways([H])
    pax = _pax(day, 0.02)
    res = simulate(day, "none", params, pax, board_s=3.0, dead_s=5.0)
    mid = ~day.last_row & ~day.origin
    dwell = res.departure_s - res.arrival_s
    # dwell: 5 s + 3 s per passenger waiting when the bus arrives (since the previous bus left)
    n_stops = int(day.trip_ptr[1])
    prev = np.r_[res.arrival_s[:n_stops] - H, res.departure_s[:-n_stops]]
    waiting = np.asarray([pax.board(int(c), p, a, a)[0] for c, p, a in zip(day.stop_key, prev, res.arrival_s,
                                                                          strict=True)])
    assert np.allclose(dwell[mid], np.where(waiting[mid] > 0, 5.0, 0.0) + 3.0 * waiting[mid])
    # those arriving during the dwell board too
    assert (res.boardings[mid] >= waiting[mid]).all()
    # about rate * headway boardings per stop after the first bus
    later = mid & (day.row_trip > 0)
    assert 0.5 * 0.02 * H < res.boardings[later].mean() < 1.5 * 0.02 * H


def test_headway_holding_evens_out_a_bunched_pair_and_respects_the_cap() -> None:
    # trip 2 leaves 500 s late, right ahead of trip 3: a bunched pair behind a long gap
    day = _line([0.0, 0.0, 500.0, 0.0, 0.0, 0.0], n_stops=15)
    params = RouteParams.from_headways([H], gain=0.6, cap_share=0.2, origin_cap_share=0.5)
    pax = _pax(day, 0.005)
    res = {s: simulate(day, s, params, pax) for s in ("none", "schedule", "headway")}
    scored = {s: score(day, r, params).loc[0] for s, r in res.items()}
    assert scored["headway"]["headway_cv"] < 0.8 * scored["none"]["headway_cv"]
    assert scored["headway"]["ewt_s"] < scored["none"]["ewt_s"]
    assert scored["headway"]["holds"] > 0 and scored["none"]["holds"] == 0
    held = res["headway"].hold_s
    assert (held[~day.control] == 0).all()
    assert held[day.control & day.origin].max() <= params.origin_cap_s[0] + 1e-9
    assert held[day.control & ~day.origin].max() <= params.cap_s[0] + 1e-9
    # holding only adds in-vehicle time
    assert scored["headway"]["ivt_s"] >= scored["none"]["ivt_s"]


def test_schedule_holding_keeps_early_buses_to_the_timetable() -> None:
    day = _line([-200.0, -150.0, 0.0])
    params = RouteParams.from_headways([H])
    res = simulate(day, "schedule", params, _pax(day, 0.0))
    ctrl = day.control
    assert (res.departure_s[ctrl] >= day.sched_s[ctrl] - 1e-9).all()


def test_unknown_strategy_is_refused() -> None:
    day = _line([0.0])
    with pytest.raises(ValueError, match="strategy"):
        simulate(day, "magic", RouteParams.from_headways([H]), _pax(day, 0.0))


@pytest.mark.eval
def test_uncontrolled_simulation_reproduces_the_recorded_wmata_headway_cv(real_wmata_dir: Path) -> None:
    wmata_dir = real_wmata_dir
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    rate = 5.0 / 3600.0
    day, routes, headway, _ = recorded_day(feed, read_avl(wmata_dir / "wmata_avl.csv"), rate_per_s=rate,
                                           board_s=3.0, dead_s=5.0)
    assert routes == ["C53", "D40", "D96"]
    assert headway[0] <= 720.0 < headway[1]  # C53 frequent, D40 timetabled
    params = RouteParams.from_headways(headway)
    pax = PassengerArrivals.draw(int(day.stop_key.max()) + 1, rate, float(day.start_s.min()) - 3600.0,
                                 float(day.sched_s.max()) + 7200.0, np.random.default_rng(1))
    res = simulate(day, "none", params, pax)
    passing = np.where(day.last_row, res.arrival_s, res.departure_s)
    recorded, simulated = recorded_cv(day, day.recorded_s), recorded_cv(day, passing)
    error = (simulated / recorded - 1.0).abs()
    print("recorded CV", recorded.round(4).to_dict(), "simulated", simulated.round(4).to_dict())
    assert (error < 0.10).all(), error
    # the replay stays close to the recording stop by stop (no drift)
    assert np.nanmedian(np.abs(passing - day.recorded_s)) < 30.0

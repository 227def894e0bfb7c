"""Segment time learning (causal), pace filter and arrival accumulation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.downstream import (
    EARLY_SHADE_SCALE_S,
    HALTED,
    HOLD_S,
    MOVING_OFF,
    StopTable,
    VehicleStates,
    blend_with_delay,
    correctable,
    departure_lateness,
    early_shade,
    monotone_along,
    motion_flags,
    motion_state,
    predict_downstream,
    still_for,
)
from telematics.gtfs import Feed, TripPaths
from telematics.predict import (
    PaceFilter,
    RecencyMean,
    RemainingTimes,
    ResidualCorrector,
    SegmentEstimate,
    SegmentTimes,
    predict_arrivals,
)
from telematics.windows import MBTA_WINDOWS
from tests.telematics.core_fixtures import (  # noqa: F401  (fixtures by name)
    wmata_fixture,
    wmata_paths_fixture,
)
from tests.telematics.degenerate import edge_feeds_fixture, edge_fixture, edge_paths_fixture  # noqa: F401


def test_segment_times_use_only_known_observations() -> None:
    model = SegmentTimes(recency_s=1800.0, prior_weight=0.5)
    code = model.codes(["A", "A", "B"], ["B", "B", "C"])
    assert code[0] == code[1] != code[2]
    # segment A->B scheduled 100 s, observed 200 s from t=1000 on
    model.update(np.array([code[0]] * 5), np.arange(1000, 1500, 100.0), np.full(5, 200.0),
                 np.full(5, 100.0))
    before = model.estimate(code[:1], [900.0], [0.0], [100.0])
    after = model.estimate(code[:1], [1600.0], [0.0], [100.0])
    assert abs(before.mean_s[0] - 100.0) < 10.0  # nothing known yet: the schedule
    assert before.weight[0] == 0.0
    assert 180.0 < after.mean_s[0] < 215.0
    assert after.weight[0] > 3.0
    # the fleet running slow lifts the prior of an unobserved segment (B->C), shrunk by
    # `fleet_prior` pseudo-observations: 5 recency-weighted ones against 20
    other = model.estimate(code[2:], [1600.0], [0.0], [100.0])
    count = np.exp(-(1600.0 - np.arange(1000, 1500, 100.0)) / 1800.0).sum()
    ratio = np.log(2.0) * count / (count + model.fleet_prior)
    assert other.mean_s[0] == pytest.approx(100.0 * np.exp(ratio + 0.5 * 0.35**2))
    assert 110.0 < other.mean_s[0] < 120.0


def test_fleet_ratio_needs_many_observations() -> None:
    # the first observations of a day are few (and biased towards quick segments): one
    # segment run twice as fast as scheduled barely moves the fleet ratio, twenty move it half-way
    model = SegmentTimes(recency_s=3600.0, fleet_prior=20.0)
    code = model.codes(["A"], ["B"])
    model.update(code, [0.0], [50.0], [100.0])
    assert model.fleet_log_ratio([-1.0])[0] == 0.0  # nothing known yet
    assert model.fleet_log_ratio([0.0])[0] == pytest.approx(np.log(0.5) / 21.0)
    model.update(np.repeat(code, 19), np.zeros(19), np.full(19, 50.0), np.full(19, 100.0))
    assert model.fleet_log_ratio([0.0])[0] == pytest.approx(np.log(0.5) / 2.0)
    # an hour later the same observations weigh 1/e as much
    late = 20.0 * np.exp(-1.0)
    assert model.fleet_log_ratio([3600.0])[0] == pytest.approx(np.log(0.5) * late / (late + 20.0))


def test_time_of_day_profile_from_history() -> None:
    model = SegmentTimes()
    code = model.codes(["A"], ["B"])
    tod = np.r_[np.full(20, 8 * 3600.0), np.full(20, 14 * 3600.0)]
    model.add_history(np.repeat(code, 40), tod, np.r_[np.full(20, 300.0), np.full(20, 120.0)])
    rush = model.estimate(code, [0.0], [8 * 3600.0 + 60], [100.0])
    midday = model.estimate(code, [0.0], [14 * 3600.0 + 60], [100.0])
    assert rush.mean_s[0] > 250.0 and 100.0 < midday.mean_s[0] < 150.0


def test_pace_filter_tracks_and_reverts() -> None:
    state, var = PaceFilter().run(np.full(10, np.log(1.3)))
    assert 0.02 < state[-1] < 0.5 * np.log(1.3)  # mean reversion keeps a slow vehicle near the norm
    assert var[-1] < var[0]
    fast, _ = PaceFilter(reversion=1.0, obs_var=0.01).run(np.full(10, np.log(1.3)))
    assert abs(fast[-1] - np.log(1.3)) < 0.02  # a confident filter follows the observations


def test_predict_arrivals_accumulates_per_group() -> None:
    group = np.array([0, 0, 0, 1, 1])
    seg = SegmentEstimate(mean_s=np.array([100.0, 60, 60, 30, 30]), std_s=np.full(5, 10.0),
                          weight=np.ones(5))
    now = np.array([0.0, 0, 0, 50, 50])
    pred = predict_arrivals(group, now, now, np.array([0.5, 1, 1, 1, 1]), seg,
                            np.array([0, 1, 2, 0, 1]), np.zeros(5), np.zeros(5))
    np.testing.assert_allclose(pred.arrival_s, [50, 110, 170, 80, 110])
    assert np.all(pred.p10_s < pred.arrival_s) and np.all(pred.p90_s > pred.arrival_s)
    assert np.all(np.diff(pred.p90_s[:3] - pred.p10_s[:3]) > 0)  # uncertainty grows ahead


def test_recency_mean_is_causal_and_weights_recent_values() -> None:
    stats = RecencyMean(np.array([7, 7, 7, 9]), np.array([0.0, 100.0, 3700.0, 50.0]),
                        np.array([10.0, 20.0, 40.0, 5.0]), time_constant_s=3600.0)
    mean, _, count = stats.query(np.array([7, 7, 7, 8]), np.array([-1.0, 150.0, 3700.0, 1e4]))
    assert np.isnan(mean[0]) and count[0] == 0.0  # nothing known yet
    assert mean[1] == pytest.approx((10 * np.exp(-150 / 3600) + 20 * np.exp(-50 / 3600))
                                    / (np.exp(-150 / 3600) + np.exp(-50 / 3600)))
    w = np.exp(-np.array([3700.0, 3600.0, 0.0]) / 3600.0)
    assert mean[2] == pytest.approx(np.dot(w, [10.0, 20.0, 40.0]) / w.sum())  # newest weighs most
    assert count[3] == 0.0  # unknown key


def test_remaining_times_keep_motion_states_of_neighbouring_segments_apart() -> None:
    # halted (state 4) on segment 3 must not be read as moving (state 0) on segment 4
    model = RemainingTimes(np.full(6, 3), np.full(6, 20.0), np.full(6, 4), np.zeros(6),
                           np.full(6, 90.0), prior_weight=0.5)
    got = model.estimate(np.array([3, 4, 3]), np.full(3, 20.0), np.array([4, 0, 0]),
                         np.full(3, 100.0), np.full(3, 30.0))
    assert 80.0 < got[0] < 95.0
    assert got[1] == pytest.approx(30.0) and got[2] == pytest.approx(30.0)  # the prior


def test_motion_flags_from_reported_speed() -> None:
    still = np.array([0.0, 10.0, 40.0, 40.0, 0.0, 200.0])
    speed = np.array([0.0, 5.0, 3.0, 0.0, np.nan, 0.4])
    flags = motion_flags(still, speed)
    assert list(flags) == [HALTED, 0, MOVING_OFF, 0, 0, 0]
    assert list(motion_flags(still, None)) == [0] * 6  # no speed reported: no flags
    # halted vehicles (advancing between pings, reporting no speed) are a motion state of
    # their own; stopped, long stopped and layover states are unchanged
    layover = np.array([False, False, False, False, False, True])
    assert list(motion_state(layover, still, speed)) == [4, 0, 1, 1, 0, 2]
    assert list(motion_state(layover, still)) == [0, 0, 1, 1, 0, 2]
    # the flags are the lowest bits of the residual situation; halted vehicles are corrected
    base = ResidualCorrector.situation(np.zeros(6), still, layover, np.full(6, 100.0))
    flagged = ResidualCorrector.situation(np.zeros(6), still, layover, np.full(6, 100.0), flags)
    assert list(flagged - base) == list(flags) and np.all(base % 4 == 0)
    assert list(correctable(flagged, still) >= 0) == [True, False, True, True, False, True]
    assert list(correctable(base, still) >= 0) == [False, False, True, True, False, True]


def test_remaining_times_learn_a_slow_spot() -> None:
    # from 0-50 m into segment 3 vehicles needed 120 s to the next stop; elsewhere no data
    model = RemainingTimes(np.full(6, 3), np.full(6, 20.0), np.zeros(6), np.arange(6) * 60.0,
                           np.full(6, 120.0), prior_weight=0.5)
    got = model.estimate(np.array([3, 3, 3, 3]), np.array([10.0, 10.0, 10.0, 300.0]),
                         np.array([0, 0, 1, 0]), np.array([-1.0, 1000.0, 1000.0, 1000.0]),
                         np.full(4, 40.0))
    assert got[0] == pytest.approx(40.0)  # nothing known yet: the prior
    assert 100.0 < got[1] < 125.0  # the observations, shrunk a little towards the prior
    assert got[2] == pytest.approx(40.0) and got[3] == pytest.approx(40.0)  # other state / bin


def _states(table: StopTable, lo: int, now_s: float, along_m: float, still_s: float) -> VehicleStates:
    return VehicleStates(now_s=np.array([now_s]), along_m=np.array([along_m]), still_s=np.array([still_s]),
                         pace=np.zeros(1), pace_var=np.full(1, 0.05), trip_lo=np.array([lo]),
                         day0_s=np.zeros(1))


def test_shared_step_departure_hold_and_blend(wmata: Feed, wmata_paths: TripPaths) -> None:
    st = wmata.stop_times
    model = SegmentTimes()
    table = StopTable.build(st["trip_id"].to_numpy(), st["stop_id"].to_numpy(),
                            st["arrival_time"].to_numpy(dtype=float), wmata_paths.stop_dist_m, model)
    trip = str(st["trip_id"].iloc[0])
    lo = int(np.flatnonzero(st["trip_id"].to_numpy() == trip)[0])
    hi = int(table.trip_hi[lo])
    sched0 = float(table.sched_s[lo])
    # waiting at the origin before its departure: leaves on schedule, at every stop after it
    waiting = predict_downstream(table, _states(table, lo, sched0 - 300.0, table.dist_m[lo], 200.0), model)
    assert waiting.waiting[0] and waiting.before_start[0] and waiting.leave_s[0] == sched0
    assert list(waiting.row) == list(range(lo + 1, hi))
    assert np.all(np.diff(waiting.arrival_s) > 0) and waiting.arrival_s[0] > sched0
    # departures from that origin ran 120 s late lately: the expected departure moves
    late = departure_lateness([table.seg_code[lo]] * 4, [sched0 - 300.0] * 4, [120.0] * 4)
    moved = predict_downstream(table, _states(table, lo, sched0 - 300.0, table.dist_m[lo], 200.0), model,
                               departures=late)
    assert moved.leave_s[0] == pytest.approx(sched0 + 120.0 * 4 / 5)
    assert np.allclose(moved.arrival_s - waiting.arrival_s, moved.leave_s[0] - sched0)
    # mid-route, stopped well ahead of schedule: holds until its scheduled time there
    k = lo + (hi - lo) // 2
    at = float(table.dist_m[k]) + 1.0
    early = float(table.sched_s[k]) - 600.0
    held = predict_downstream(table, _states(table, lo, early, at, HOLD_S + 1.0), model)
    moving = predict_downstream(table, _states(table, lo, early, at, 0.0), model)
    assert held.leave_s[0] == pytest.approx(table.sched_s[k], abs=1.0)
    assert moving.leave_s[0] == early and not moving.waiting[0]
    assert np.all(held.arrival_s > moving.arrival_s)
    # the blend with delay propagation moves the quantiles with the arrival; the served arrival
    # is then shaded early by early_shade(horizon) of the way to the p10 (the quantiles stay)
    blended = 0.8 * 110.0 + 0.2 * 200.0
    now = np.array([blended - 1260.0, 0.0, blended - 1260.0, blended - 60.0])  # 21 min, -, 21 min, 1 min ahead
    arrival, p10, p90 = blend_with_delay(np.full(4, 100.0), np.array([80.0, np.nan, 80.0, 80.0]),
                                         np.array([150.0, np.nan, 150.0, 150.0]), np.full(4, 200.0), np.full(4, 10.0),
                                         now)
    assert p90[0] - blended == pytest.approx(50.0) and blended - p10[0] == pytest.approx(20.0)
    assert arrival[1] == pytest.approx(blended)  # no spread known: not shaded
    assert arrival[0] == arrival[2] == pytest.approx(blended - 0.15 * 20.0)  # 21 min ahead: 0.15 of the way
    assert arrival[3] == pytest.approx(blended)  # 1 min ahead: the window is symmetric, not shaded
    # motion states learned apart and still time from pings
    assert list(motion_state([False, False, False, True], [0.0, 40.0, 400.0, 0.0])) == [0, 1, 3, 2]
    assert list(still_for(np.array([0.0, 10, 20, 30, 40]), np.array([0.0, 50, 52, 54, 90]))) == [
        0.0, 0.0, 20.0, 30.0, 0.0]  # since the start of the last advancing interval


def test_shared_step_learns_halted_vehicles_apart(wmata: Feed, wmata_paths: TripPaths) -> None:
    st = wmata.stop_times
    model = SegmentTimes()
    table = StopTable.build(st["trip_id"].to_numpy(), st["stop_id"].to_numpy(),
                            st["arrival_time"].to_numpy(dtype=float), wmata_paths.stop_dist_m, model)
    lo = 0
    k = lo + (int(table.trip_hi[lo]) - lo) // 2
    now = float(table.sched_s[k])
    # vehicles that had just halted 1 m past stop k needed 200 s to the next stop
    remaining = RemainingTimes(np.full(6, table.seg_code[k]), np.full(6, 1.0), np.full(6, 4), np.full(6, now - 100.0),
                               np.full(6, 200.0))

    def first_arrival(speed: np.ndarray | None) -> float:
        states = VehicleStates(now_s=np.array([now]), along_m=np.array([table.dist_m[k] + 1.0]),
                               still_s=np.zeros(1), pace=np.zeros(1), pace_var=np.full(1, 0.05),
                               trip_lo=np.array([lo]), day0_s=np.zeros(1), speed_mps=speed)
        pred = predict_downstream(table, states, model, remaining)
        assert pred.row[0] == k + 1
        return float(pred.arrival_s[0] - now)

    halted, moving, unknown = first_arrival(np.zeros(1)), first_arrival(np.full(1, 8.0)), first_arrival(None)
    assert 150.0 < halted < 210.0  # what halted vehicles took, shrunk a little towards the prior
    assert moving == unknown == first_arrival(np.full(1, np.nan))  # moving: no halted data used
    assert moving < 150.0


# ---------------------------------------------------------------- degenerate inputs (property-based)

_finite = {"allow_nan": False, "allow_infinity": False}


def _half_seconds(lo: int, hi: int) -> st.SearchStrategy[float]:
    """Times (s) on a 0.5 s grid: ties are exact ties (the keys resolve milliseconds, not 1e-255 s)."""
    return st.integers(2 * lo, 2 * hi).map(lambda k: k / 2.0)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 6), max_size=12), data=st.data())
def test_predict_arrivals_on_any_batch(sizes: list[int], data: st.DataObject) -> None:
    """Any number of vehicles with any number of segments ahead (none at all: every vehicle at
    its last stop): one arrival per row, finite, ordered along each vehicle's stops, inside its band."""
    group = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
    n = len(group)
    ahead = (np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)).astype(np.int64)
    floats = st.lists(st.floats(1.0, 3600.0, **_finite), min_size=n, max_size=n)
    mean = np.array(data.draw(floats))
    std = mean * np.array(data.draw(st.lists(st.floats(0.0, 2.0, **_finite), min_size=n, max_size=n)))
    now = np.repeat(np.array(data.draw(st.lists(st.floats(0.0, 2e9, **_finite), min_size=len(sizes),
                                                max_size=len(sizes)))), sizes)
    frac = np.where(ahead == 0, data.draw(st.floats(0.0, 1.0, **_finite)), 1.0)
    pace = np.full(n, data.draw(st.floats(-2.0, 2.0, **_finite)))
    pred = predict_arrivals(group, now, now, frac, SegmentEstimate(mean, std, np.ones(n)), ahead, pace,
                            np.full(n, 0.05))
    assert len(pred.arrival_s) == len(pred.p10_s) == len(pred.p90_s) == n
    assert np.all(np.isfinite(pred.arrival_s)) and np.all(pred.arrival_s >= now)
    assert np.all(pred.p10_s <= pred.arrival_s + 1e-6) and np.all(pred.arrival_s <= pred.p90_s + 1e-6)
    same = group[1:] == group[:-1]
    assert np.all(np.diff(pred.arrival_s)[same] >= 0.0)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.tuples(st.integers(0, 4), _half_seconds(0, 36_000), st.floats(-1e3, 1e3, **_finite)),
                       max_size=20),
       queries=st.lists(st.tuples(st.integers(-1, 6), _half_seconds(-36_000, 72_000)), max_size=10))
def test_recency_mean_on_any_history(values: list[tuple[int, float, float]],
                                     queries: list[tuple[int, float]]) -> None:
    """Nothing learnt yet, unknown keys, queries before, between or long after the values:
    the mean is NaN exactly where nothing of the key is known by then, else it lies within
    the key's known values. (The values span 10 time constants: running sums over all keys
    lose relative precision on a key whose values all weigh less than about e-10 of the
    total, whose effective count is then negligible anyway.)"""
    code, known, value = (np.array(c, dtype=float) for c in zip(*values, strict=True)) if values else (
        np.zeros(0), np.zeros(0), np.zeros(0))
    stats = RecencyMean(code.astype(np.int64), known, value, time_constant_s=3600.0)
    q_code = np.array([q[0] for q in queries], dtype=np.int64)
    q_at = np.array([q[1] for q in queries], dtype=float)
    mean, var, count = stats.query(q_code, q_at)
    assert mean.shape == var.shape == count.shape == (len(queries),)
    for i, (c, at) in enumerate(queries):
        seen = value[(code == c) & (known <= at)]
        if len(seen) == 0:
            assert np.isnan(mean[i]) and count[i] == 0.0
        else:
            tol = 1e-6 * (1.0 + np.abs(value).max())  # differences of running sums
            assert seen.min() - tol <= mean[i] <= seen.max() + tol and count[i] > 0.0


@settings(max_examples=100, deadline=None)
@given(at=st.lists(st.floats(-1e9, 4e9, **_finite), max_size=8), sched=st.floats(0.0, 1e4, **_finite),
       observed=st.lists(st.tuples(st.floats(0.0, 2e9, **_finite), st.floats(0.0, 1e4, **_finite)), max_size=6))
def test_segment_times_on_any_history(at: list[float], sched: float, observed: list[tuple[float, float]]) -> None:
    """Segment estimates (and the corrections built on empty histories) are finite and positive
    whatever was observed, including nothing, and whenever they are asked for."""
    model = SegmentTimes()
    code = model.codes(["A"], ["B"])
    if observed:
        model.update(np.repeat(code, len(observed)), [o[0] for o in observed], [o[1] for o in observed],
                     np.full(len(observed), sched))
    model.add_history(np.zeros(0, dtype=np.int64), [], [])
    q = np.array(at, dtype=float)
    est = model.estimate(np.repeat(code, len(q)), q, q % 86400.0, np.full(len(q), sched))
    assert np.all(np.isfinite(est.mean_s)) and np.all(est.mean_s > 0.0) and np.all(np.isfinite(est.std_s))
    fix = ResidualCorrector().correction(np.zeros(len(q), dtype=np.int64), q, [], [], [])
    assert np.all(fix == 0.0)
    none = RemainingTimes([], [], [], [], [])
    assert np.all(np.isfinite(none.estimate(np.repeat(code, len(q)), np.zeros(len(q)), np.zeros(len(q)), q,
                                            np.full(len(q), 60.0))))
    assert len(PaceFilter().run([])[0]) == 0


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_shared_step_on_any_vehicle_state(edge: Feed, edge_paths: TripPaths, data: st.DataObject) -> None:
    """`predict_downstream` for any batch of vehicles on the edge-case feed (a one-stop trip,
    a trip past midnight, a stop far from its path; before the origin, past the last stop,
    long stopped, any pace), with no model learnt yet: every vehicle gets one finite
    prediction per stop still ahead of it, in stop order, within its band and not before now."""
    st_ = edge.stop_times
    model = SegmentTimes()
    table = StopTable.build(st_["trip_id"].to_numpy(), st_["stop_id"].to_numpy(),
                            st_["arrival_time"].to_numpy(dtype=float), edge_paths.stop_dist_m, model)
    firsts = np.flatnonzero(np.r_[True, st_["trip_id"].to_numpy()[1:] != st_["trip_id"].to_numpy()[:-1]])
    n = data.draw(st.integers(0, 6))
    lo = np.array(data.draw(st.lists(st.sampled_from(firsts.tolist()), min_size=n, max_size=n)), dtype=np.int64)
    draw = lambda s: np.array(data.draw(st.lists(s, min_size=n, max_size=n)), dtype=float)  # noqa: E731
    now = draw(st.floats(1.7e9, 1.8e9, **_finite))
    states = VehicleStates(
        now_s=now, along_m=draw(st.floats(-500.0, 3000.0, **_finite)), still_s=draw(st.floats(0.0, 3600.0, **_finite)),
        pace=draw(st.floats(-1.5, 1.5, **_finite)), pace_var=draw(st.floats(0.0, 0.5, **_finite)), trip_lo=lo,
        day0_s=now - draw(st.floats(0.0, 90000.0, **_finite)),
        speed_mps=draw(st.one_of(st.just(float("nan")), st.floats(0.0, 20.0, **_finite))))
    empty = departure_lateness(np.zeros(0, dtype=np.int64), [], [])  # nothing learnt: the "index -1" case
    pred = predict_downstream(table, states, model, RemainingTimes([], [], [], [], []), empty)
    hi = table.trip_hi[lo]
    nxt = np.searchsorted(table.sort_key, np.maximum(states.along_m, table.dist_m[lo]) + table.sort_key[lo]
                          - table.dist_m[lo], side="right")
    expected = np.where(np.minimum(nxt, hi) < hi, hi - np.maximum(np.minimum(nxt, hi), lo + 1), 0)
    assert np.bincount(pred.state, minlength=n).tolist() == expected.tolist()
    assert np.all(np.isfinite(pred.arrival_s)) and np.all(pred.arrival_s >= now[pred.state] - 1e-6)
    assert np.all(pred.p10_s <= pred.arrival_s + 1e-6) and np.all(pred.arrival_s <= pred.p90_s + 1e-6)
    same = pred.state[1:] == pred.state[:-1]
    assert np.all(np.diff(pred.row)[same] == 1) and np.all(np.diff(pred.arrival_s)[same] >= -1e-6)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 6), max_size=10), data=st.data())
def test_monotone_pass_orders_each_vehicles_stops(sizes: list[int], data: st.DataObject) -> None:
    """After `monotone_along` each vehicle's arrivals are non-decreasing along its stops;
    vehicles already in order are untouched, the others keep their mean arrival (the
    least-squares fit), and the quantiles move with their arrival."""
    group = np.repeat(np.arange(len(sizes)), sizes)
    arrival = np.array(data.draw(st.lists(st.integers(0, 600).map(float), min_size=len(group),
                                          max_size=len(group)))) + 1.7e9
    fitted, p10, p90 = monotone_along(group, arrival, arrival - 30.0, arrival + 60.0)
    for g in range(len(sizes)):
        rows = group == g
        assert np.all(np.diff(fitted[rows]) >= 0.0)
        if np.all(np.diff(arrival[rows]) >= 0.0):
            assert np.array_equal(fitted[rows], arrival[rows])
        assert fitted[rows].sum() == pytest.approx(arrival[rows].sum(), abs=1e-3)
    np.testing.assert_allclose(fitted - p10, 30.0, atol=1e-6)
    np.testing.assert_allclose(p90 - fitted, 60.0, atol=1e-6)


def test_early_shading_follows_the_asymmetry_of_the_accuracy_windows() -> None:
    band_ends = [hi for _, hi, *_ in MBTA_WINDOWS[:-1]] + [sum(MBTA_WINDOWS[-1][:2]) / 2]
    shares = early_shade(band_ends)
    asymmetry = np.array([late + early for *_, early, late in MBTA_WINDOWS])
    assert shares == pytest.approx(asymmetry / EARLY_SHADE_SCALE_S)
    assert shares[0] == 0.0 and np.all(np.diff(shares) > 0)  # symmetric 0-3 min window: none
    assert early_shade([0.0, 5000.0]) == pytest.approx([0.0, shares[-1]])  # held beyond the bands

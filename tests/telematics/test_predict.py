"""Segment time learning (causal), pace filter and arrival accumulation."""

from __future__ import annotations

import numpy as np
import pytest

from telematics.downstream import (
    HALTED,
    HOLD_S,
    MOVING_OFF,
    StopTable,
    VehicleStates,
    blend_with_delay,
    correctable,
    departure_lateness,
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
from tests.telematics.core_fixtures import (  # noqa: F401  (fixtures by name)
    wmata_fixture,
    wmata_paths_fixture,
)


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
    # the blend with delay propagation moves the quantiles with the arrival
    arrival, p10, p90 = blend_with_delay(np.array([100.0]), np.array([80.0]), np.array([150.0]),
                                         np.array([200.0]), np.array([10.0]))
    assert arrival[0] == pytest.approx(0.8 * 110.0 + 0.2 * 200.0)
    assert p90[0] - arrival[0] == pytest.approx(50.0) and arrival[0] - p10[0] == pytest.approx(20.0)
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

"""Segment time learning (causal), pace filter and arrival accumulation."""

from __future__ import annotations

import numpy as np
import pytest

from telematics.downstream import (
    HOLD_S,
    StopTable,
    VehicleStates,
    blend_with_delay,
    departure_lateness,
    motion_state,
    predict_downstream,
    still_for,
)
from telematics.gtfs import Feed, TripPaths
from telematics.predict import (
    PaceFilter,
    RecencyMean,
    RemainingTimes,
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
    # the fleet running slow lifts the prior of an unobserved segment (B->C)
    other = model.estimate(code[2:], [1600.0], [0.0], [100.0])
    assert other.mean_s[0] > 120.0


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

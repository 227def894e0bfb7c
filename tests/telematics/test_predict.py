"""Segment time learning (causal), pace filter and arrival accumulation."""

from __future__ import annotations

import numpy as np
import pytest

from telematics.predict import (
    PaceFilter,
    RecencyMean,
    RemainingTimes,
    SegmentEstimate,
    SegmentTimes,
    predict_arrivals,
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

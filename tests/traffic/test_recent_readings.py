"""Recent readings of each segment, their robust level, and the check of a model against them."""

from __future__ import annotations

import numpy as np
import pytest

from traffic.boosted import fit_boosted_model
from traffic.congestion import symmetric_adjacency
from traffic.recent_readings import ReadingCheck, recent_level

STEP = 300.0


def test_recent_level_is_a_median_one_stray_reading_does_not_move() -> None:
    level, noise = recent_level(np.array([[20.0, 21.0, 3.0, 20.5, np.nan], [np.nan] * 5]))
    assert level[0] == pytest.approx(20.25) and noise[0] == pytest.approx(0.5)
    assert np.isnan(level[1]) and np.isnan(noise[1])


def test_the_check_hands_a_segment_to_its_median_only_when_the_median_is_clearly_better() -> None:
    check = ReadingCheck(3, k=4, ratio=0.5)
    read = np.array([True, True, False])
    model = np.array([30.0, 30.0, 30.0])
    median = np.array([10.0, 29.0, 10.0])
    # segment 0 reads 10 (the model 20 off, the median exact); segment 1 reads 30
    check.record(read, np.array([10.0, 30.0, 10.0]), model, median)
    assert not check.median_wins().any()  # one reading is too few to decide (k // 2 = 2)
    check.record(read, np.array([10.0, 30.0, 10.0]), model, median)
    assert check.median_wins().tolist() == [True, False, False]  # segment 2 was never scored
    assert check.choose(model, median).tolist() == [10.0, 30.0, 30.0]
    for _ in range(4):  # segment 0 mends: the model is right again and the old errors roll out
        check.record(read, np.array([30.0, 30.0, 10.0]), model, median)
    assert not check.median_wins()[0]
    with pytest.raises(ValueError):
        ReadingCheck(3, k=1)


def test_a_stuck_sensor_is_handed_to_its_readings_and_healthy_ones_stay_with_the_model() -> None:
    rng = np.random.default_rng(5)
    n_times = 800
    common = 28.0 + rng.normal(scale=1.0, size=n_times)
    train = np.column_stack([common + rng.normal(scale=0.5, size=n_times) for _ in range(3)])
    adj = symmetric_adjacency([0, 1], [1, 2], [1.0, 1.0], 3)
    model = fit_boosted_model(np.arange(n_times) * STEP, train, np.full(3, 30.0), STEP, adj,
                              np.random.default_rng(1), n_trees=60, bags=2, replays=2)
    state = model.state()
    # live: segments 0 and 2 healthy (as in training); segment 1 stuck at 9 m/s, read every other step
    estimates = []
    for t in range(60):
        healthy = 28.0 + rng.normal(scale=1.0) + rng.normal(scale=0.5, size=2)
        state.observe(np.array([0, 2]), np.full(2, t * STEP), healthy)
        if t % 2 == 0:
            state.observe(np.array([1]), np.array([t * STEP]), np.array([9.0]))
        pred = state.predict(t * STEP)
        if t % 2:
            estimates.append(pred[1])
    assert state.check.median_wins().tolist() == [False, True, False]
    assert estimates[-1] == pytest.approx(9.0)  # the median of its readings, whatever the trees say

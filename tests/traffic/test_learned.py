"""The learned per-segment model on synthetic data with known answers, and inside the estimator."""

from __future__ import annotations

import numpy as np
import pytest

from traffic.congestion import CongestionEstimator, symmetric_adjacency
from traffic.learned import (
    RECENT_READINGS,
    SegmentModel,
    SegmentModelState,
    fit_segment_model,
    lad_batched,
    n_features,
)

STEP = 300.0


def test_lad_recovers_coefficients_despite_gross_outliers() -> None:
    rng = np.random.default_rng(0)
    rows = 600
    a = np.column_stack([rng.normal(size=(rows, 2)), np.ones(rows), rng.normal(size=rows)])[None]
    true = np.array([1.5, -2.0, 3.0, 0.5])
    y = a[0] @ true + rng.laplace(scale=0.1, size=rows)
    y[rng.random(rows) < 0.15] += 40.0  # one-sided gross errors: least squares would be pulled far off
    coef = lad_batched(a, y[None], ridge=1e-6, eps=1e-3)[0]
    assert np.allclose(coef, true, atol=0.1)
    ls = np.linalg.lstsq(a[0], y, rcond=None)[0]
    assert abs(ls[2] - true[2]) > 3.0  # the mean is not the median


def test_lad_constant_column_is_the_median_and_ridge_shrinks_the_rest() -> None:
    y = np.array([[0.0, 1.0, 2.0, 10.0, 100.0]])
    x = np.arange(5.0)
    a = np.stack([np.column_stack([x, np.ones(5), x ** 2])])
    coef = lad_batched(a, y, ridge=1e9, eps=1e-4)[0]  # slopes penalised to 0, constant (last but one) free
    assert coef[[0, 2]] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert coef[1] == pytest.approx(2.0, abs=0.01)


def _model(n: int, k: int = 1) -> SegmentModel:
    nb = np.array([[(i + 1) % n] for i in range(n)], dtype=np.int64)[:, :k]
    return SegmentModel(nb, np.zeros((n, n_features(k))), np.full(n, 30.0), STEP, clip=5.0, level_floor=-20.0)


def test_state_features_use_own_evidence_before_t_and_others_at_t() -> None:
    state = SegmentModelState(_model(2))
    state.observe(np.array([0, 0]), np.array([0.0, STEP]), np.array([20.0, 10.0]))  # applied in time order
    assert state.base[0] == pytest.approx(15.0)  # first value, then weight 0.5
    assert state.slow[0] == pytest.approx(0.8 * 20.0 + 0.2 * 10.0)
    f, base, fresh = state.features(STEP)
    assert fresh.tolist() == [True, False]
    assert base[0] == pytest.approx(20.0)  # segment 0 was observed at t: its own state before t
    k = 1
    own0 = f[0, 3 * k + 4:]
    assert own0[0] == pytest.approx(0.0)  # last observation before t minus base
    assert own0[3] == pytest.approx(np.exp(-1 / 3))  # one step old
    # segment 1 (never observed: base = free flow) sees its neighbour 0's innovation and level at t
    assert base[1] == pytest.approx(30.0)
    assert f[1, 0] == pytest.approx(-5.0)  # 10 - 20 clipped to -5
    assert f[1, 1] == pytest.approx(-20.0)  # level 10 - 30 capped at the floor, own level 0
    assert f[1, 2] == 0.0 and f[1, 3 * k + 3] == 0.0  # segment 1 is not congested
    assert f[0, 3 * k + 3] == 1.0  # segment 0's base (20) is below 85 % of free flow
    # a later time: the observation at STEP is now own evidence
    f2, base2, fresh2 = state.features(2 * STEP)
    assert not fresh2.any() and base2[0] == pytest.approx(15.0)
    assert f2[1, 0] == 0.0  # no neighbour evidence at 2 * STEP


def test_prediction_of_an_observed_segment_is_its_base_and_zero_coefficients_give_the_base() -> None:
    state = SegmentModelState(_model(3))
    state.observe(np.array([0, 1]), np.array([0.0, 0.0]), np.array([25.0, 12.0]))
    state.observe(np.array([0]), np.array([STEP]), np.array([15.0]))
    pred = state.predict(STEP)
    assert pred.tolist() == pytest.approx([20.0, 12.0, 30.0])


def _coupled(n_times: int, rng: np.random.Generator) -> np.ndarray:
    """Segment 1 = segment 0 + 3 (noise 0.1); segments 0 and 2 independent AR(1) around 20 m/s."""
    x = np.full((n_times, 2), 20.0)
    for t in range(1, n_times):
        x[t] = 20.0 + 0.9 * (x[t - 1] - 20.0) + rng.normal(scale=1.5, size=2)
    return np.column_stack([x[:, 0], x[:, 0] + 3.0 + rng.normal(scale=0.1, size=n_times), x[:, 1]])


def test_fit_learns_which_segment_predicts_another_at_the_same_time() -> None:
    rng = np.random.default_rng(5)
    train, test = _coupled(1500, rng), _coupled(600, rng)
    times = np.arange(1500) * STEP
    model = fit_segment_model(times, train, np.full(3, 40.0), STEP, np.random.default_rng(1), k=1,
                              clip=50.0, level_floor=-40.0, ridge=1e-3, eps=0.01)
    assert model.neighbours[:, 0].tolist()[:2] == [1, 0]  # the coupled pair find each other
    # replay the test: segment 1 hidden, segment 0 seen at every step -> segment 1 = segment 0 + 3
    state = SegmentModelState(model)
    err, persist = [], []
    for t in range(600):
        state.observe(np.array([0, 2]), np.full(2, t * STEP), test[t, [0, 2]])
        if t % 2 == 0:
            state.observe(np.array([1]), np.array([t * STEP]), test[t, [1]])
        elif t > 10:
            err.append(abs(state.predict(t * STEP)[1] - test[t, 1]))
            persist.append(abs(test[t - 1, 1] - test[t, 1]))
    assert np.mean(err) < 0.3 < np.mean(persist)


def test_estimator_with_a_model_reports_the_model_speeds() -> None:
    model = _model(3)
    model.coef[:, 3 * 1 + 4 + 4] = 2.0  # constant: base + 2 m/s where not observed now
    adj = symmetric_adjacency([0, 1], [1, 2], [1.0, 1.0], 3)
    est = CongestionEstimator(adj, np.full(3, 30.0), model=model)
    est.observe([0, 1], 0.0, [25.0, 12.0])
    est.observe([0], STEP, [15.0])
    state = est.update(STEP)
    assert state.speed_mps.tolist() == pytest.approx([20.0, 14.0, 32.0])
    assert 0 < state.confidence[0] <= 1 and state.confidence[2] < state.confidence[0]
    plain = CongestionEstimator(adj, np.full(3, 30.0))
    plain.observe([0], STEP, [15.0])
    assert plain.update(STEP).speed_mps[0] < 20.0  # without a model: graph smoothing of the own reading
    with pytest.raises(ValueError, match="model has a different number of edges"):
        CongestionEstimator(adj, np.full(3, 30.0), model=_model(4))


def test_recent_readings_before_a_step_leave_out_the_step_itself() -> None:
    model = fit_segment_model(np.arange(50) * STEP, np.full((50, 2), 20.0), np.full(2, 20.0), STEP,
                              np.random.default_rng(0))
    state = SegmentModelState(model)
    assert np.isnan(state.recent_before(0.0)).all() and state.recent_before(0.0).shape == (2, RECENT_READINGS)
    for t in range(RECENT_READINGS + 2):  # segment 0 read at every step, segment 1 at the first only
        state.observe(np.array([0] if t else [0, 1]), np.full(1 if t else 2, t * STEP),
                      np.full(1 if t else 2, 10.0 + t))
    last = (RECENT_READINGS + 1) * STEP
    assert state.recent_before(last)[0].tolist() == [10.0 + t for t in range(RECENT_READINGS, 0, -1)]
    assert state.recent_before(last + STEP)[0].tolist() == [10.0 + t for t in range(RECENT_READINGS + 1, 1, -1)]
    assert state.recent_before(last)[1, 0] == 10.0 and np.isnan(state.recent_before(last)[1, 1:]).all()
    assert np.isnan(state.recent_before(0.0)[1]).all()  # read at 0: nothing before it

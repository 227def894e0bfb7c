"""The gradient-boosted speed model on synthetic data with a known non-linear answer."""

from __future__ import annotations

import numpy as np
import pytest

from traffic.boosted import BoostedModelState, fit_boosted_model, graph_neighbours
from traffic.congestion import CongestionEstimator, symmetric_adjacency
from traffic.learned import SegmentModelState, fit_segment_model

STEP = 300.0
FREE = 30.0


def test_graph_neighbours_are_the_heaviest_edges_and_self_where_there_are_too_few() -> None:
    adj = symmetric_adjacency([0, 0, 0, 1], [1, 2, 3, 2], [0.2, 0.9, 0.5, 0.7], 5)
    nb = graph_neighbours(adj, 2)
    assert nb[0].tolist() == [2, 3]
    assert nb[2].tolist() == [0, 1]
    assert nb[3].tolist() == [0, 3]  # one neighbour, then itself
    assert nb[4].tolist() == [4, 4]  # isolated


def _jams(n_times: int, rng: np.random.Generator) -> np.ndarray:
    """Segment 0 free (~30 m/s) with jam episodes (~8 m/s); segment 1 shares segment 0's jams
    but not its free-flow noise (its own ~28 m/s otherwise); segment 2 independent."""
    jam = np.zeros(n_times, dtype=bool)
    t = 0
    while t < n_times:
        t += int(rng.integers(20, 60))
        jam[t:t + int(rng.integers(5, 15))] = True
    s0 = np.where(jam, 8.0, FREE) + rng.normal(scale=1.0, size=n_times)
    s1 = np.where(jam, s0 - 2.0, 28.0 + rng.normal(scale=1.0, size=n_times)) + rng.normal(scale=0.2, size=n_times)
    s2 = FREE + rng.normal(scale=1.0, size=n_times)
    return np.column_stack([s0, s1, s2])


def test_trees_learn_the_jam_the_linear_model_averages_away() -> None:
    rng = np.random.default_rng(3)
    train, test = _jams(3000, rng), _jams(1500, rng)
    times = np.arange(3000) * STEP
    adj = symmetric_adjacency([0, 1], [1, 2], [1.0, 0.5], 3)
    freeflow = np.full(3, FREE)
    boosted = fit_boosted_model(times, train, freeflow, STEP, adj, np.random.default_rng(1), n_trees=150, bags=2)
    linear = fit_segment_model(times, train, freeflow, STEP, np.random.default_rng(1))
    assert boosted.n == 3 and len(boosted.members) == 2
    assert boosted.members[0].graph_neighbours[1].tolist()[0] == 0
    # replay: segment 0 seen at every step, segment 1 hidden every other step
    states = {"boosted": boosted.state(), "linear": SegmentModelState(linear)}
    err: dict[str, list[float]] = {name: [] for name in states}
    for t in range(1500):
        for name, state in states.items():
            state.observe(np.array([0, 2]), np.full(2, t * STEP), test[t, [0, 2]])
            if t % 2 == 0:
                state.observe(np.array([1]), np.array([t * STEP]), test[t, [1]])
            elif t > 10:
                err[name].append(abs(state.predict(t * STEP)[1] - test[t, 1]))
    mae = {name: float(np.mean(e)) for name, e in err.items()}
    assert mae["boosted"] < 0.8 * mae["linear"], mae


def test_an_observed_segment_keeps_its_base_and_the_estimator_takes_the_model() -> None:
    rng = np.random.default_rng(0)
    train = _jams(600, rng)
    adj = symmetric_adjacency([0, 1], [1, 2], [1.0, 1.0], 3)
    model = fit_boosted_model(np.arange(600) * STEP, train, np.full(3, FREE), STEP, adj, rng, n_trees=20, bags=2)
    state = model.state()
    assert isinstance(state, BoostedModelState)
    state.observe(np.array([0, 1, 2, 2]), np.array([0.0, 0.0, -STEP, 0.0]), np.array([25.0, 12.0, 29.0, 27.0]))
    state.observe(np.array([0]), np.array([STEP]), np.array([15.0]))
    pred = state.predict(STEP)
    assert pred[0] == pytest.approx(20.0)  # observed at t: its base mean including the reading
    x, _, fresh = state.features(STEP)
    assert fresh.tolist() == [True, False, False] and x.shape[0] == 3
    # trend of the last two readings before t: unknown when read at t or read once
    assert np.isnan(x[0, -2]) and np.isnan(x[1, -2]) and x[2, -2] == pytest.approx(-2.0)
    assert x[:, -1].tolist() == [0.0, 1.0, 2.0]  # the segment
    est = CongestionEstimator(adj, np.full(3, FREE), model=model)
    est.observe([0, 1], 0.0, [25.0, 12.0])
    est.observe([0], STEP, [15.0])
    assert est.update(STEP).speed_mps[0] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="model has a different number of edges"):
        CongestionEstimator(symmetric_adjacency([0], [1], [1.0], 2), np.full(2, FREE), model=model)


def test_neighbour_surprise_and_the_next_step_carry_what_was_read_and_estimated() -> None:
    rng = np.random.default_rng(0)
    train = _jams(600, rng)
    adj = symmetric_adjacency([0, 1], [1, 2], [1.0, 1.0], 3)
    model = fit_boosted_model(np.arange(600) * STEP, train, np.full(3, FREE), STEP, adj, rng, n_trees=20, bags=2,
                              replays=2)
    member = model.members[0]
    nb = np.hstack([member.linear.neighbours, member.graph_neighbours])
    n_nb = nb.shape[1]
    state = model.state()
    state.observe(np.array([0, 1, 2]), np.zeros(3), np.array([25.0, 12.0, 27.0]))
    state.observe(np.array([0]), np.array([STEP]), np.array([15.0]))
    pred = state.predict(STEP)
    x, _, fresh = state.features(STEP)
    assert fresh.tolist() == [True, False, False]
    network = x[:, -3]  # median surprise over the segments read at t: here segment 0's alone
    assert np.all(network == network[0]) and network[0] < 0  # 15 read where about 25 was expected
    surprise = x[:, -3 - n_nb:-3]
    assert np.array_equal(np.isnan(surprise), nb != 0)  # only segment 0 was read at t
    assert np.allclose(surprise[nb == 0], network[0])
    # one step on, nothing read: the previous filled speed is the reading, else the bag's estimate
    x2, base2, fresh2 = state.features(2 * STEP)
    assert not fresh2.any()
    previous = x2[:, -3 - 3 * n_nb - 1]
    assert previous[0] == pytest.approx(15.0 - base2[0])
    assert previous[1:] == pytest.approx(pred[1:] - base2[1:])
    # a gap longer than one step forgets the previous step
    x4, _, _ = state.features(4 * STEP)
    assert np.isnan(x4[:, -3 - 3 * n_nb - 1]).all()

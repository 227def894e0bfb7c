"""Gradient-boosted speed model on top of the per-segment linear model (sensor networks).

The linear model of :mod:`traffic.learned` is one median fit per segment: it cannot bend
where congestion does (a jam next door means little at free flow and much when the
segment is already slowing). This model keeps the linear model's streaming state and
features and learns, with gradient-boosted trees (LightGBM, L1 loss: the conditional
median, which minimises the MAE), one pooled correction over all segments. Its design,
per segment at time ``t``:

* the linear model's design row (:meth:`traffic.learned.SegmentModelState.features`) and
  its prediction (minus the base);
* free flow and the base as a share of free flow (the regime, continuous);
* for the ``k`` most correlated segments of the linear model and the ``g`` nearest
  segments of the graph (largest adjacency weight): the reading at ``t`` minus that
  segment's base, unclipped, and its share of free flow minus the segment's own base
  share; missing (NaN, which the trees route apart) when the segment has no reading at ``t``.

The target is ``speed - base`` as in the linear model. Training replays the training
speeds through the same :class:`BoostedModelState` code with seeded random visible
subsets, as the evaluation hides them, and learns on the hidden rows only. Speeds in any
consistent unit (the estimator uses m/s); times in s.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from traffic.learned import SegmentModel, SegmentModelState, fit_segment_model

__all__ = ["BoostedModelState", "BoostedSegmentModel", "fit_boosted_model", "graph_neighbours"]

FloatArray = npt.NDArray[np.float64]
#: LightGBM settings; compared on Los-loop day 3 trained on days 1-2 (see the README).
BOOSTER_PARAMS: dict[str, object] = {
    "objective": "l1", "learning_rate": 0.03, "num_leaves": 63, "min_child_samples": 200,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "deterministic": True,
    "force_row_wise": True, "verbose": -1,
}
N_TREES = 1000


@dataclass(frozen=True)
class BoostedSegmentModel:
    """Fitted model: the linear per-segment model, graph neighbours and the trees.

    Attributes
    ----------
    linear : the per-segment linear model whose state and design this model extends.
    graph_neighbours : ``(n, g)`` indices of each segment's nearest segments on the graph.
    booster : trees predicting ``speed - base`` (speed unit) from :meth:`BoostedModelState.features`.
    """

    linear: SegmentModel
    graph_neighbours: npt.NDArray[np.int64]
    booster: lgb.Booster

    @property
    def n(self) -> int:
        return self.linear.n

    def state(self) -> BoostedModelState:
        """A fresh streaming state (no observations yet)."""
        return BoostedModelState(self)


class BoostedModelState:
    """Streaming state of a :class:`BoostedSegmentModel` (the linear model's state underneath)."""

    def __init__(self, model: BoostedSegmentModel) -> None:
        self.model = model
        self.linear = SegmentModelState(model.linear)

    def observe(self, edge: npt.NDArray[np.int64], time_s: FloatArray, speed: FloatArray) -> None:
        """Add observations (any order; each segment's are applied in time order)."""
        self.linear.observe(edge, time_s, speed)

    def features(self, time_s: float) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Design ``(n, p)``, base ``(n,)`` and which segments are observed at ``time_s``."""
        return boosted_design(self.linear, self.model.graph_neighbours, time_s)

    def predict(self, time_s: float) -> FloatArray:
        """Speed of every segment at ``time_s``: the trees where the segment has no observation
        at ``time_s``, else its base mean including that observation."""
        x, base, fresh = self.features(time_s)
        pred = base + np.asarray(self.model.booster.predict(x), dtype=np.float64)
        return np.where(fresh, self.linear.base, pred)


def boosted_design(state: SegmentModelState, graph_nb: npt.NDArray[np.int64],
                   time_s: float) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """The design of :class:`BoostedModelState` from a linear state (see the module docstring)."""
    f, base, fresh = state.features(time_s)
    m = state.model
    ff = m.freeflow
    linear = np.einsum("np,np->n", f, m.coef)
    share = base / ff
    innov = np.where(fresh, state.last - base, np.nan)
    rel = np.where(fresh, state.last / ff, np.nan)
    nb = np.hstack([m.neighbours, graph_nb])
    # change between the segment's last two readings before t (not known for a segment read at t)
    trend = np.where(fresh | ~np.isfinite(state.prev_time), np.nan, state.last - state.prev_last)
    x = np.hstack([f, linear[:, None], ff[:, None], share[:, None], innov[nb], rel[nb] - share[:, None],
                   share[nb] - share[:, None], trend[:, None]])
    return x, base, fresh


def graph_neighbours(adjacency: sp.spmatrix | sp.sparray, g: int) -> npt.NDArray[np.int64]:
    """``(n, g)`` indices of each node's ``g`` largest-weight neighbours (itself where it has fewer)."""
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    a = (a + a.T).tolil()
    a.setdiag(0)
    a = a.tocsr()
    n = a.shape[0]
    out = np.repeat(np.arange(n, dtype=np.int64)[:, None], g, axis=1)
    for i in range(n):  # one sort per row of a sparse matrix: build time only
        cols, w = a.indices[a.indptr[i]:a.indptr[i + 1]], a.data[a.indptr[i]:a.indptr[i + 1]]
        top = cols[np.argsort(-w, kind="stable")[:g]]
        out[i, :len(top)] = top
    return out


def fit_boosted_model(
    time_s: FloatArray,
    speed: FloatArray,
    freeflow: FloatArray,
    step_s: float,
    adjacency: sp.spmatrix | sp.sparray,
    rng: np.random.Generator,
    observed_frac: float = 0.5,
    g: int = 4,
    replays: int = 5,
    warmup: int = 12,
    n_trees: int = N_TREES,
) -> BoostedSegmentModel:
    """Fit the linear model, then the trees, on dense training speeds ``(n_times, n)`` (NaN where missing).

    Parameters
    ----------
    time_s : ``(n_times,)`` UTC epoch times (s), increasing, ``step_s`` apart.
    speed : training speeds (speed unit).
    freeflow : ``(n,)`` free-flow speeds.
    step_s : sampling interval (s).
    adjacency : ``(n, n)`` segment graph weights (for :func:`graph_neighbours`).
    rng : draws the visible subsets (``observed_frac`` of the segments per timestamp) of both fits.
    g : graph neighbours per segment.
    replays : replays of the training speeds for the trees, each with fresh visible subsets.
    warmup : first timestamps of a replay left out (their state is still filling).
    n_trees : boosting rounds.
    """
    nt, n = speed.shape
    linear = fit_segment_model(time_s, speed, freeflow, step_s, rng, observed_frac)
    gnb = graph_neighbours(adjacency, min(g, max(n - 1, 1)))
    n_vis = round(observed_frac * n)
    rows: list[FloatArray] = []
    targets: list[FloatArray] = []
    for _ in range(max(replays, 1)):
        state = SegmentModelState(linear)
        for t in range(nt):
            visible = np.zeros(n, dtype=bool)
            visible[rng.permutation(n)[:n_vis]] = True
            visible &= np.isfinite(speed[t])
            e = np.nonzero(visible)[0]
            state.observe(e, np.full(len(e), time_s[t]), speed[t, e])
            if t < warmup:
                continue
            x, base, _ = boosted_design(state, gnb, float(time_s[t]))
            hidden = ~visible & np.isfinite(speed[t])
            rows.append(x[hidden])
            targets.append(speed[t, hidden] - base[hidden])
    x_all, y_all = np.concatenate(rows), np.concatenate(targets)
    params = dict(BOOSTER_PARAMS, seed=int(rng.integers(2**31 - 1)), num_threads=0)
    booster = lgb.train(params, lgb.Dataset(x_all, y_all), num_boost_round=n_trees)
    return BoostedSegmentModel(linear, gnb, booster)

"""Gradient-boosted speed model on top of the per-segment linear model (sensor networks).

The linear model of :mod:`traffic.learned` is one median fit per segment: it cannot bend
where congestion does (a jam next door means little at free flow and much when the
segment is already slowing). This model keeps the linear model's streaming state and
features and learns, with gradient-boosted trees (LightGBM, L1 loss: the conditional
median, which minimises the MAE), one pooled correction over all segments. Its design,
per segment at time ``t``:

* the median of the segment's last readings minus its base, and that median and their
  median absolute deviation as shares of free flow (:func:`traffic.recent_readings.recent_level`:
  a level one stray reading does not move, and the segment's reading noise);
* the linear model's design row (:meth:`traffic.learned.SegmentModelState.features`) and
  its prediction (minus the base);
* free flow and the base as a share of free flow (the regime, continuous);
* for the ``k`` most correlated segments of the linear model and the ``g`` nearest
  segments of the graph (largest adjacency weight): the reading at ``t`` minus that
  segment's base, unclipped, and its share of free flow minus the segment's own base
  share; missing (NaN, which the trees route apart) when the segment has no reading at ``t``;
  those segments' base shares minus the segment's own;
* the previous step's filled speeds (the reading, else the model's estimate) of the segment
  and of those segments, relative to the segment's base;
* those segments' filled speeds at ``t`` (the reading, else the linear estimate) as a share
  of free flow minus the segment's base share (one hop of message passing);
* their surprise at ``t``: the reading minus what the linear model would have estimated had
  the segment been hidden, as a share of free flow (NaN when not read), and the median
  surprise over every segment read at ``t`` (a shock the whole network shares);
* the change between the segment's last two readings, and the segment itself (categorical).

The target is ``speed - base`` as in the linear model. Training replays the training
speeds through the same streaming state (:class:`traffic.learned.SegmentModelState` and
:func:`boosted_design`) with seeded random visible subsets, as the evaluation hides them,
and learns on the hidden rows only (there the previous step's filled speed of a hidden
segment is the linear estimate; live, it is the bag's own estimate, which measured better: a
second training pass with the trees' estimates in that slot gained nothing for 3.5 times the
fitting time). A bag of members, each with its own linear model,
subsets and trees, is averaged. Live, a :class:`traffic.recent_readings.ReadingCheck` replaces
the bag's estimate by the segment's recent median where, over its last readings, that median
has been clearly better (a stuck or shifted sensor the training days did not show). Speeds in
any consistent unit (the estimator uses m/s); times in s.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from traffic.learned import SegmentModel, SegmentModelState, fit_segment_model
from traffic.recent_readings import ReadingCheck, recent_level

__all__ = ["BoostedMember", "BoostedModelState", "BoostedSegmentModel", "boosted_design", "fit_boosted_model",
           "graph_neighbours"]

FloatArray = npt.NDArray[np.float64]
#: LightGBM settings; compared on Los-loop day 3 trained on days 1-2 (see the README).
BOOSTER_PARAMS: dict[str, object] = {
    "objective": "l1", "learning_rate": 0.03, "num_leaves": 127, "min_child_samples": 200,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.5, "deterministic": True,
    "force_row_wise": True, "verbose": -1,
}
N_TREES = 1000
BAGS = 3


@dataclass(frozen=True)
class BoostedMember:
    """One member of the bag: a linear per-segment model and the trees fitted over it.

    Attributes
    ----------
    linear : the per-segment linear model whose state and design the trees extend.
    graph_neighbours : ``(n, g)`` indices of each segment's nearest segments on the graph.
    booster : trees predicting ``speed - base`` (speed unit) from :func:`boosted_design`.
    """

    linear: SegmentModel
    graph_neighbours: npt.NDArray[np.int64]
    booster: lgb.Booster


@dataclass(frozen=True)
class BoostedSegmentModel:
    """Fitted model: a bag of :class:`BoostedMember` (each fitted on its own visible subsets);
    the prediction is the mean of the members'."""

    members: tuple[BoostedMember, ...]

    @property
    def n(self) -> int:
        return self.members[0].linear.n

    def state(self) -> BoostedModelState:
        """A fresh streaming state (no observations yet)."""
        return BoostedModelState(self)


class BoostedModelState:
    """Streaming state of a :class:`BoostedSegmentModel` (each member's linear state underneath)."""

    def __init__(self, model: BoostedSegmentModel) -> None:
        self.model = model
        self.linear = [SegmentModelState(m.linear) for m in model.members]
        self._filled = [_FilledSpeeds(model.n, m.linear.step_s) for m in model.members]
        self.check = ReadingCheck(model.n)

    def observe(self, edge: npt.NDArray[np.int64], time_s: FloatArray, speed: FloatArray) -> None:
        """Add observations (any order; each segment's are applied in time order)."""
        for state in self.linear:
            state.observe(edge, time_s, speed)

    def features(self, time_s: float, member: int = 0) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Design ``(n, p)`` of one member, base ``(n,)`` and which segments are observed at ``time_s``
        (the previous step's filled speeds are those :meth:`predict` kept at the last earlier time)."""
        x, base, fresh, _ = boosted_design(self.linear[member], self.model.members[member].graph_neighbours,
                                           time_s, self._filled[member].before(time_s))
        return x, base, fresh

    def predict(self, time_s: float) -> FloatArray:
        """Speed of every segment at ``time_s``: where the segment has no observation at ``time_s``,
        the members' mean, or the median of its recent readings where :attr:`check` found that
        median clearly better; else its base mean including that observation (the same in every
        member: the base depends on the observations only)."""
        pred = np.zeros(self.model.n)
        for i, member in enumerate(self.model.members):
            x, base, fresh = self.features(time_s, i)
            pred += base + np.asarray(member.booster.predict(x), dtype=np.float64)
        pred /= len(self.model.members)
        # the rows of segments read at t were estimated as if hidden: score them, then choose
        reading = self.linear[0].last
        median, _ = recent_level(self.linear[0].recent_before(time_s))
        self.check.record(fresh, reading, pred, median)
        pred = self.check.choose(pred, median)
        for filled in self._filled:  # the next step's previous filled speeds: the bag's estimate
            filled.keep(np.where(fresh, reading, pred))
        return np.where(fresh, self.linear[0].base, pred)


def boosted_design(state: SegmentModelState, graph_nb: npt.NDArray[np.int64], time_s: float,
                   previous: FloatArray | None = None) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_], FloatArray]:
    """The design of :class:`BoostedModelState` from a linear state (see the module docstring).

    ``previous``: every segment's filled speed one step before ``time_s`` (NaN or None: unknown).
    Returns the design, the base, which segments are read at ``time_s``, and the filled speed
    at ``time_s``: the reading where there is one, else the linear model's estimate.
    """
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
    prev = np.full(m.n, np.nan) if previous is None else previous
    filled = np.where(fresh, state.last, base + linear)
    # reading minus the linear estimate the segment would have had hidden (f is computed as if hidden)
    surprise = np.where(fresh, (state.last - base - linear) / ff, np.nan)
    network = float(np.median(surprise[fresh])) if fresh.any() else np.nan
    level, noise = recent_level(state.recent_before(time_s))
    x = np.hstack([(level - base)[:, None], (level / ff)[:, None], (noise / ff)[:, None],
                   f, linear[:, None], ff[:, None], share[:, None], innov[nb], rel[nb] - share[:, None],
                   share[nb] - share[:, None], (prev - base)[:, None], (prev / ff)[nb] - share[:, None],
                   (filled / ff)[nb] - share[:, None], surprise[nb], np.full((m.n, 1), network),
                   trend[:, None], np.arange(m.n, dtype=np.float64)[:, None]])
    return x, base, fresh, filled


class _FilledSpeeds:
    """Filled speeds (:func:`boosted_design`) of the last step, rolled when time moves on."""

    def __init__(self, n: int, step_s: float) -> None:
        self.step_s = step_s
        self.time_s, self.current = -np.inf, np.full(n, np.nan)
        self.previous = np.full(n, np.nan)

    def before(self, time_s: float) -> FloatArray:
        """Filled speeds one step before ``time_s`` (NaN when that step was not estimated)."""
        if time_s > self.time_s:
            recent = time_s - self.time_s <= 1.5 * self.step_s
            self.previous = self.current if recent else np.full(len(self.current), np.nan)
            self.time_s = time_s
        return self.previous

    def keep(self, filled: FloatArray) -> None:
        self.current = filled


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
    replays: int = 10,
    warmup: int = 12,
    n_trees: int = N_TREES,
    bags: int = BAGS,
) -> BoostedSegmentModel:
    """Fit ``bags`` members on dense training speeds ``(n_times, n)`` (NaN where missing).

    Each member fits a linear model (:func:`traffic.learned.fit_segment_model`), then trees
    over its design, each on its own visible subsets.

    Parameters
    ----------
    time_s : ``(n_times,)`` UTC epoch times (s), increasing, ``step_s`` apart.
    speed : training speeds (speed unit).
    freeflow : ``(n,)`` free-flow speeds.
    step_s : sampling interval (s).
    adjacency : ``(n, n)`` segment graph weights (for :func:`graph_neighbours`).
    rng : draws the visible subsets (``observed_frac`` of the segments per timestamp) of every fit.
    g : graph neighbours per segment.
    replays : replays of the training speeds for the trees, each with fresh visible subsets.
    warmup : first timestamps of a replay left out (their state is still filling).
    n_trees : boosting rounds per member.
    bags : members.
    """
    n = speed.shape[1]
    gnb = graph_neighbours(adjacency, min(g, max(n - 1, 1)))
    members = tuple(_fit_member(time_s, speed, freeflow, step_s, gnb, rng, observed_frac, replays, warmup, n_trees)
                    for _ in range(max(bags, 1)))
    return BoostedSegmentModel(members)


def _fit_member(time_s: FloatArray, speed: FloatArray, freeflow: FloatArray, step_s: float,
                gnb: npt.NDArray[np.int64], rng: np.random.Generator, observed_frac: float, replays: int,
                warmup: int, n_trees: int) -> BoostedMember:
    """One member of :func:`fit_boosted_model`: the trees learn on the hidden rows of the replays."""
    nt, n = speed.shape
    linear = fit_segment_model(time_s, speed, freeflow, step_s, rng, observed_frac)
    n_vis = round(observed_frac * n)
    rows: list[FloatArray] = []
    targets: list[FloatArray] = []
    for _ in range(max(replays, 1)):
        state = SegmentModelState(linear)
        filled = _FilledSpeeds(n, step_s)
        for t in range(nt):
            visible = np.zeros(n, dtype=bool)
            visible[rng.permutation(n)[:n_vis]] = True
            visible &= np.isfinite(speed[t])
            e = np.nonzero(visible)[0]
            state.observe(e, np.full(len(e), time_s[t]), speed[t, e])
            x, base, _, now = boosted_design(state, gnb, float(time_s[t]), filled.before(float(time_s[t])))
            filled.keep(now)
            if t < warmup:
                continue
            hidden = ~visible & np.isfinite(speed[t])
            rows.append(x[hidden])
            targets.append(speed[t, hidden] - base[hidden])
    x_all, y_all = np.concatenate(rows), np.concatenate(targets)
    params = dict(BOOSTER_PARAMS, seed=int(rng.integers(2**31 - 1)), num_threads=0)
    data = lgb.Dataset(x_all, y_all, categorical_feature=[x_all.shape[1] - 1])  # the segment
    return BoostedMember(linear, gnb, lgb.train(params, data, num_boost_round=n_trees))

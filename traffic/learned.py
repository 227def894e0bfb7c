"""Per-segment speed model learned from dense training speeds (sensor networks).

Where every segment has a speed history (loop detectors), each hidden segment's speed at
time ``t`` is predicted from what is known at ``t`` — its own earlier observations and the
observations of other segments at ``t`` — by a linear model fitted per segment by least
absolute deviations (the conditional median, which minimises the MAE):

* base ``b_i``: exponentially weighted mean (weight ``0.5`` per observation) of the
  segment's observations before ``t``; the target is ``speed_i(t) - b_i``;
* own features: last observation minus ``b_i``, a slower weighted mean (``0.2``) minus
  ``b_i``, free flow minus ``b_i``, ``exp(-age / 3 steps)`` of the last observation, 1;
* neighbour features: for the ``k`` segments whose innovations correlate most with the
  segment's on the training data (learnt, not the graph), their innovation at ``t``
  (observation minus their own base, clipped to ``±clip``; 0 when not observed at ``t``),
  their congestion level (observation minus free flow, capped at 0) minus the segment's
  own (0 when not observed at ``t``), and the mean of those levels minus the segment's own;
* regime: when the segment's base is below ``85 %`` of free flow (congested), the
  neighbour innovations and the first three own features enter again with their own
  coefficients, plus a congested indicator (congestion is not free flow scaled down).

The fit replays the training speeds (twice, each time with a seeded random half of the
segments visible per timestamp, as in the evaluation) through the same streaming
:class:`SegmentModelState`, so training and live features are computed by the same code;
each segment's coefficients are shrunk towards those of one pooled fit over all segments. Speeds in any consistent
unit (the estimator uses m/s); times in s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["SegmentModel", "SegmentModelState", "SpeedModel", "SpeedModelState", "fit_segment_model", "lad_batched",
           "n_features"]

FloatArray = npt.NDArray[np.float64]
BASE_ALPHA = 0.5  # weight of a new observation in the base mean
SLOW_ALPHA = 0.2  # weight of a new observation in the slow mean
AGE_SCALE_STEPS = 3.0  # e-folding (steps) of the age feature
NO_OBSERVATION_AGE = 50.0  # age (steps) assumed before a segment's first observation
CONGESTED_RATIO = 0.85  # base / free flow below which the congested-regime features are on
N_OWN = 6  # own features (see the module docstring), the last columns of the design
N_REGIME = 4  # own-feature copies and indicator of the congested regime
RECENT_READINGS = 6  # readings kept per segment (:meth:`SegmentModelState.recent_before`)


class SpeedModelState(Protocol):
    """Streaming state of a learned speed model, as :class:`traffic.congestion.CongestionEstimator` drives it."""

    def observe(self, edge: npt.NDArray[np.int64], time_s: FloatArray, speed: FloatArray) -> None: ...

    def predict(self, time_s: float) -> FloatArray: ...


class SpeedModel(Protocol):
    """A learned speed model: :class:`SegmentModel` or :class:`traffic.boosted.BoostedSegmentModel`."""

    @property
    def n(self) -> int: ...

    def state(self) -> SpeedModelState: ...


def n_features(k: int) -> int:
    """Columns of the design for ``k`` neighbours."""
    return 3 * k + N_REGIME + N_OWN


@dataclass(frozen=True)
class SegmentModel:
    """Fitted per-segment model.

    Attributes
    ----------
    neighbours : ``(n, k)`` indices of each segment's most correlated segments.
    coef : ``(n, n_features(k))`` coefficients: neighbour innovations, neighbour levels,
        congested-regime neighbour innovations and own features, regime indicator, own features.
    freeflow : ``(n,)`` free-flow speed (speed unit).
    step_s : sampling interval (s); ages are counted in steps.
    clip : innovation clip (speed unit).
    level_floor : lowest congestion level (speed minus free flow, speed unit, negative).
    """

    neighbours: npt.NDArray[np.int64]
    coef: FloatArray
    freeflow: FloatArray
    step_s: float
    clip: float
    level_floor: float

    @property
    def n(self) -> int:
        return len(self.freeflow)

    def state(self) -> SegmentModelState:
        """A fresh streaming state (no observations yet)."""
        return SegmentModelState(self)


class SegmentModelState:
    """Streaming state of a :class:`SegmentModel`: feed observations, predict every segment."""

    def __init__(self, model: SegmentModel) -> None:
        self.model = model
        n, ff = model.n, model.freeflow
        # current state (after every observation so far) and state before the last observation time
        self.base, self.slow, self.last = ff.copy(), ff.copy(), ff.copy()
        self.prev_base, self.prev_slow, self.prev_last = ff.copy(), ff.copy(), ff.copy()
        self.last_time = np.full(n, -np.inf)
        self.prev_time = np.full(n, -np.inf)
        self.seen = np.zeros(n, dtype=bool)
        self.recent = np.full((n, RECENT_READINGS + 1), np.nan)  # last readings, newest first

    def observe(self, edge: npt.NDArray[np.int64], time_s: FloatArray, speed: FloatArray) -> None:
        """Add observations (any order; each segment's are applied in time order)."""
        if not len(edge):
            return
        order = np.lexsort((time_s, edge))
        e, t, v = edge[order], time_s[order], speed[order]
        starts = np.concatenate([[True], e[1:] != e[:-1]])
        rank = np.arange(len(e)) - np.maximum.accumulate(np.where(starts, np.arange(len(e)), 0))
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            self._push(e[sel], t[sel], v[sel])

    def _push(self, e: npt.NDArray[np.int64], t: FloatArray, v: FloatArray) -> None:
        newer = t > self.last_time[e]
        ne = e[newer]
        self.recent[ne] = np.hstack([v[newer][:, None], self.recent[ne, :-1]])
        self.prev_base[ne], self.prev_slow[ne] = self.base[ne], self.slow[ne]
        self.prev_last[ne], self.prev_time[ne] = self.last[ne], self.last_time[ne]
        first = ~self.seen[e]
        self.base[e] = np.where(first, v, (1 - BASE_ALPHA) * self.base[e] + BASE_ALPHA * v)
        self.slow[e] = np.where(first, v, (1 - SLOW_ALPHA) * self.slow[e] + SLOW_ALPHA * v)
        self.last[e] = v
        self.last_time[e] = np.maximum(self.last_time[e], t)
        self.seen[e] = True

    def recent_before(self, time_s: float) -> FloatArray:
        """``(n, RECENT_READINGS)`` each segment's last readings before ``time_s``, newest first (NaN
        where fewer): a reading at ``time_s`` is left out, as the own features leave it out."""
        fresh = self.last_time > time_s - 0.5 * self.model.step_s
        return np.where(fresh[:, None], self.recent[:, 1:], self.recent[:, :-1])

    def features(self, time_s: float) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Features ``(n, n_features(k))`` and base ``(n,)`` of every segment at ``time_s`` from evidence
        before ``time_s`` (own) and at ``time_s`` (others), and which segments are observed at it."""
        m = self.model
        fresh = self.last_time > time_s - 0.5 * m.step_s
        base = np.where(fresh, self.prev_base, self.base)
        slow = np.where(fresh, self.prev_slow, self.slow)
        last = np.where(fresh, self.prev_last, self.last)
        age = np.where(fresh, time_s - self.prev_time, time_s - self.last_time) / m.step_s
        age = np.where(np.isfinite(age), age, NO_OBSERVATION_AGE)
        innov = np.where(fresh, np.clip(self.last - base, -m.clip, m.clip), 0.0)
        level = np.where(fresh, np.clip(self.last - m.freeflow, m.level_floor, 0.0), 0.0)
        nb_fresh = fresh[m.neighbours]
        nb_level = level[m.neighbours].sum(axis=1) / np.maximum(nb_fresh.sum(axis=1), 1)
        own_level = np.minimum(base - m.freeflow, 0.0)
        own = np.column_stack([
            last - base, slow - base, m.freeflow - base, np.exp(-age / AGE_SCALE_STEPS),
            np.ones(m.n), np.where(nb_fresh.any(axis=1), nb_level - own_level, 0.0),
        ])
        nb_innov = innov[m.neighbours]
        nb_rel = np.where(nb_fresh, level[m.neighbours] - own_level[:, None], 0.0)
        congested = (base < CONGESTED_RATIO * m.freeflow).astype(np.float64)[:, None]
        return (np.hstack([nb_innov, nb_rel, nb_innov * congested, own[:, :3] * congested, congested, own]),
                base, fresh)

    def predict(self, time_s: float) -> FloatArray:
        """Speed of every segment at ``time_s``: the model where the segment has no observation
        at ``time_s``, else its base mean including that observation."""
        f, base, fresh = self.features(time_s)
        pred = base + np.einsum("np,np->n", f, self.model.coef)
        return np.where(fresh, self.base, pred)


def lad_batched(a: FloatArray, y: FloatArray, ridge: float, iterations: int = 15,
                eps: float = 0.5 / 3.6, prior: FloatArray | None = None) -> FloatArray:
    """Least-absolute-deviation fits of ``(m, rows, p)`` designs by reweighted least squares.

    ``ridge`` pulls every coefficient but the one of the constant column (the last but one,
    see :data:`N_OWN`) towards ``prior`` (``(p,)``, default 0); residuals below ``eps`` get
    the weight of ``eps``. Returns ``(m, p)`` coefficients.
    """
    p = a.shape[2]
    pen = np.full(p, ridge)
    pen[p - 2] = 0.0
    target = pen * (np.zeros(p) if prior is None else prior)
    at = np.ascontiguousarray(a.transpose(0, 2, 1))
    w: FloatArray = np.ones(y.shape)
    coef: FloatArray = np.zeros((a.shape[0], p))
    for _ in range(iterations + 1):
        aw = at * w[:, None, :]
        lhs = aw @ a + np.diag(pen)[None]
        # a fit without any row (a segment with no history) leaves the free constant undetermined:
        # pin it to 0 there (its other coefficients go to the prior); other fits are untouched
        lhs[:, p - 2, p - 2] = np.where(lhs[:, p - 2, p - 2] > 0, lhs[:, p - 2, p - 2], 1.0)
        rhs = (aw @ y[..., None])[..., 0] + target[None]
        coef = np.asarray(np.linalg.solve(lhs, rhs[..., None])[..., 0], dtype=np.float64)
        w = np.asarray(1.0 / np.maximum(np.abs(y - (a @ coef[..., None])[..., 0]), eps), dtype=np.float64)
    return coef


def fit_segment_model(
    time_s: FloatArray,
    speed: FloatArray,
    freeflow: FloatArray,
    step_s: float,
    rng: np.random.Generator,
    observed_frac: float = 0.5,
    k: int = 3,
    clip: float = 10.0 / 3.6,
    level_floor: float = -60.0 / 3.6,
    ridge: float = 300.0 / 3.6,
    shrink: float = 900.0 / 3.6,
    eps: float = 0.5 / 3.6,
    replays: int = 2,
    warmup: int = 12,
) -> SegmentModel:
    """Fit the model on dense training speeds ``(n_times, n)`` (NaN where missing).

    Parameters
    ----------
    time_s : ``(n_times,)`` UTC epoch times (s), increasing, ``step_s`` apart.
    speed : training speeds (speed unit; ``clip``, ``level_floor``, ``eps`` in the same unit,
        defaults for m/s: 10, -60 and 0.5 km/h; the default ``ridge`` is scaled alike).
    freeflow : ``(n,)`` free-flow speeds.
    step_s : sampling interval (s).
    rng : draws the visible subsets (``observed_frac`` of the segments per timestamp).
    k : neighbours per segment.
    ridge : penalty of the pooled LAD fit (every segment's rows together) towards 0.
    shrink : penalty of each segment's LAD fit towards the pooled coefficients (a segment
        has few congested rows; the pooled fit carries what segments share).
    replays : replays of the training speeds, each with fresh visible subsets (more rows).
    warmup : first timestamps of a replay left out of the fit (their state is still filling).
    """
    nt, n = speed.shape
    k = min(k, n - 1)
    n_vis = round(observed_frac * n)

    def draw() -> npt.NDArray[np.bool_]:
        visible = np.zeros((nt, n), dtype=bool)
        for t in range(nt):
            visible[t, rng.permutation(n)[:n_vis]] = True
        return visible & np.isfinite(speed)

    visible = [draw() for _ in range(max(replays, 1))]
    # neighbours: most correlated clipped innovations against the base mean
    probe = SegmentModel(np.zeros((n, 0), np.int64), np.zeros((n, n_features(0))), freeflow, step_s, clip,
                         level_floor)
    innovations = _replay(probe, time_s, speed, visible[0])[1]
    ok = np.isfinite(innovations[warmup:])
    u = np.where(ok, np.clip(innovations[warmup:], -clip, clip), 0.0)
    u -= u.sum(axis=0) / np.maximum(ok.sum(axis=0), 1)
    u = np.where(ok, u, 0.0)
    sd = np.sqrt((u ** 2).sum(axis=0))
    corr = (u.T @ u) / np.maximum(np.outer(sd, sd), 1e-12)
    np.fill_diagonal(corr, -np.inf)
    neighbours = np.argsort(-corr, axis=1, kind="stable")[:, :k].astype(np.int64)
    model = SegmentModel(neighbours, np.zeros((n, n_features(k))), freeflow, step_s, clip, level_floor)
    runs = [_replay(model, time_s, speed, v) for v in visible]
    a = np.nan_to_num(np.concatenate([f[warmup:] for f, _ in runs])).transpose(1, 0, 2)
    y = np.concatenate([i[warmup:] for _, i in runs]).T
    known = np.isfinite(y)
    a, y = a * known[..., None], np.where(known, y, 0.0)
    p = a.shape[2]
    pooled = lad_batched(a.reshape(1, -1, p), y.reshape(1, -1), ridge, eps=eps)[0]
    coef = lad_batched(a, y, shrink, eps=eps, prior=pooled)
    return SegmentModel(neighbours, coef, freeflow, step_s, clip, level_floor)


def _replay(model: SegmentModel, time_s: FloatArray, speed: FloatArray,
            visible: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """Stream the training speeds: features ``(nt, n, p)`` and targets ``speed - base`` ``(nt, n)``."""
    state = SegmentModelState(model)
    nt, n = speed.shape
    feats = np.zeros((nt, n, n_features(model.neighbours.shape[1])))
    target = np.full((nt, n), np.nan)
    for t in range(nt):
        e = np.nonzero(visible[t])[0]
        state.observe(e, np.full(len(e), time_s[t]), speed[t, e])
        feats[t], base, _ = state.features(float(time_s[t]))
        target[t] = speed[t] - base
    return feats, target

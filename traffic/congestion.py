"""Network-wide speed estimation from sparse evidence (pure numpy/scipy).

Model
-----
Every edge ``i`` has a historical profile speed ``h_i(t)`` for the time of day. The
estimator works on the *deviation* ``x_i = speed_i - h_i(t)``:

* Own evidence: each edge keeps its last ``memory`` observations (probe speeds, BPR speeds
  from camera flows); their median is the edge's observed level ``y_i`` (robust to single
  outliers), weighted by ``c_i = min(1, w_i / full_weight) * exp(-age_i / own_decay_s)``.
* Propagation: deviations are smoothed over a symmetric similarity graph ``W`` (the road
  line graph weighted by class similarity and distance, or the given segment adjacency),
  with a shrinkage ``eps`` towards the profile where evidence is weak::

      minimise  sum_i c_i (x_i - (y_i - h_i))^2 + lambda x' L x + eps |x|^2

  i.e. ``(diag(c) + lambda L + eps I) x = c (y - h)`` with ``L = D - W`` the graph
  Laplacian. The same system with right-hand side ``c`` gives each edge's evidence share
  ``s_i`` in [0, 1] (its confidence); ``1 - s_i`` is the historical share. Both are solved
  together by Jacobi-preconditioned conjugate gradients, warm-started from the previous
  update: a full-network update is a few dozen sparse mat-vecs, no per-edge Python.

Speeds are in m/s throughout (any consistent unit works for the pure functions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from traffic.config import TrafficSettings
from traffic.learned import SpeedModel

__all__ = [
    "LEVELS",
    "SOURCES",
    "CongestionEstimator",
    "CongestionState",
    "SpeedProfile",
    "classify_levels",
    "laplacian",
    "symmetric_adjacency",
]

LEVELS = ("free", "moderate", "heavy", "jammed")
SOURCES = ("probe", "flow", "propagated", "historical")
PROBE, FLOW = 0, 1

FloatArray = npt.NDArray[np.float64]


def classify_levels(speed_ratio: npt.ArrayLike, settings: TrafficSettings | None = None) -> npt.NDArray[np.int8]:
    """Congestion level code (index into :data:`LEVELS`) of each speed/free-flow ratio."""
    s = settings or TrafficSettings()
    r = np.asarray(speed_ratio, dtype=np.float64)
    thresholds = np.array([s.level_free_ratio, s.level_moderate_ratio, s.level_heavy_ratio])
    if not (np.diff(thresholds) < 0).all():
        raise ValueError("level thresholds must decrease: free > moderate > heavy")
    return np.asarray((r[..., None] < thresholds).sum(axis=-1), dtype=np.int8)


def symmetric_adjacency(rows: npt.ArrayLike, cols: npt.ArrayLike, weights: npt.ArrayLike, n: int) -> sp.csr_matrix:
    """Symmetric similarity matrix ``(n, n)`` from weighted pairs.

    A pair given in both directions keeps the larger weight; self-loops and non-positive
    weights are dropped.
    """
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    keep = (r != c) & np.isfinite(w) & (w > 0)
    directed = sp.csr_matrix((w[keep], (r[keep], c[keep])), shape=(n, n))
    return sp.csr_matrix(directed.maximum(directed.T))


def laplacian(adjacency: sp.csr_matrix) -> sp.csr_matrix:
    """Graph Laplacian ``D - W`` of a symmetric non-negative adjacency."""
    deg = np.asarray(adjacency.sum(axis=1)).ravel()
    return (sp.diags(deg) - adjacency).tocsr()


@dataclass(frozen=True)
class SpeedProfile:
    """Usual speed of each edge by time of day.

    Attributes
    ----------
    speeds_mps : ``(n_slots, n_edges)`` mean speed (m/s); NaN where unknown.
    slot_s : slot width (s); ``n_slots * slot_s`` must be 86,400.
    utc_offset_s : local time minus UTC (s), so slots follow local time of day.
    """

    speeds_mps: FloatArray
    slot_s: int
    utc_offset_s: int = 0

    def __post_init__(self) -> None:
        if self.speeds_mps.ndim != 2 or self.speeds_mps.shape[0] * self.slot_s != 86_400:
            raise ValueError("profile needs (86400 / slot_s, n_edges) speeds")

    def slot(self, time_s: float) -> int:
        """Slot index of a UTC epoch time (s)."""
        return int(((time_s + self.utc_offset_s) % 86_400) // self.slot_s)

    def at(self, time_s: float) -> FloatArray:
        """Profile speed (m/s) of every edge at ``time_s`` (NaN where unknown)."""
        return np.asarray(self.speeds_mps[self.slot(time_s)])

    @classmethod
    def from_observations(
        cls,
        edge: npt.ArrayLike,
        time_s: npt.ArrayLike,
        speed_mps: npt.ArrayLike,
        n_edges: int,
        slot_s: int = 900,
        utc_offset_s: int = 0,
        weight: npt.ArrayLike | None = None,
    ) -> SpeedProfile:
        """Weighted mean speed per (slot, edge) of past observations (NaN where none)."""
        e = np.asarray(edge, dtype=np.int64)
        t = np.asarray(time_s, dtype=np.float64)
        v = np.asarray(speed_mps, dtype=np.float64)
        w = np.ones_like(v) if weight is None else np.asarray(weight, dtype=np.float64)
        n_slots = 86_400 // slot_s
        s = (((t + utc_offset_s) % 86_400) // slot_s).astype(np.int64)
        key = s * n_edges + e
        total = np.bincount(key, weights=v * w, minlength=n_slots * n_edges)
        count = np.bincount(key, weights=w, minlength=n_slots * n_edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
        return cls(mean.reshape(n_slots, n_edges), slot_s, utc_offset_s)


@dataclass
class CongestionState:
    """The estimate of every edge at one time.

    Attributes
    ----------
    time_s : UTC epoch time of the estimate (s).
    speed_mps : estimated speed (m/s).
    profile_mps : historical profile speed used (m/s).
    freeflow_mps : free-flow speed (m/s).
    confidence : share (0..1) of the estimate carried by current evidence, own or propagated.
    level : index into :data:`LEVELS`.
    source_mix : ``(n_edges, 4)`` shares of :data:`SOURCES` (rows sum to 1).
    travel_time_s : ``length / speed`` (s), NaN when no lengths were given.
    """

    time_s: float
    speed_mps: FloatArray
    profile_mps: FloatArray
    freeflow_mps: FloatArray
    confidence: FloatArray
    level: npt.NDArray[np.int8]
    source_mix: npt.NDArray[np.float32]
    travel_time_s: FloatArray

    @property
    def n_edges(self) -> int:
        return len(self.speed_mps)


@dataclass
class _Memory:
    """Ring buffer of the last ``k`` observations of every edge."""

    k: int
    n: int
    speed: FloatArray = field(init=False)
    time: FloatArray = field(init=False)
    weight: FloatArray = field(init=False)
    source: npt.NDArray[np.int8] = field(init=False)
    ptr: npt.NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.speed = np.full((self.k, self.n), np.nan)
        self.time = np.full((self.k, self.n), -np.inf)
        self.weight = np.zeros((self.k, self.n))
        self.source = np.zeros((self.k, self.n), dtype=np.int8)
        self.ptr = np.zeros(self.n, dtype=np.int64)

    def push(self, edge: npt.NDArray[np.int64], time_s: FloatArray, speed: FloatArray,
             weight: FloatArray, source: npt.NDArray[np.int8]) -> None:
        order = np.lexsort((time_s, edge))
        e = edge[order]
        if not len(e):
            return
        starts = np.concatenate([[True], e[1:] != e[:-1]])
        group_first = np.maximum.accumulate(np.where(starts, np.arange(len(e)), 0))
        rank = np.arange(len(e)) - group_first
        counts = np.bincount(e, minlength=self.n)
        size = counts[e]
        keep = rank >= size - self.k  # only the newest k of each edge
        e, rank, size = e[keep], rank[keep], size[keep]
        pos = (self.ptr[e] + rank - np.maximum(size - self.k, 0)) % self.k
        sel = order[keep]
        self.speed[pos, e] = speed[sel]
        self.time[pos, e] = time_s[sel]
        self.weight[pos, e] = weight[sel]
        self.source[pos, e] = source[sel]
        written = np.minimum(counts, self.k)
        self.ptr = (self.ptr + written) % self.k


class CongestionEstimator:
    """Estimate every edge's speed from sparse observations, a graph and a profile.

    Parameters
    ----------
    adjacency : symmetric ``(n, n)`` non-negative similarity of edges (see
        :func:`symmetric_adjacency`, :func:`traffic.graph.line_graph_similarity`).
    freeflow_mps : free-flow speed of each edge (m/s).
    profile : historical profile; None → free-flow speed at all times.
    length_m : edge lengths (m) for travel times; None → travel times are NaN.
    settings : estimator constants (:class:`traffic.config.TrafficSettings`).
    model : per-edge model learned from dense speed history (m/s,
        :func:`traffic.boosted.fit_boosted_model` or :func:`traffic.learned.fit_segment_model`); when given, it sets the speed of every
        edge (the graph solve still gives confidence and source shares). None → the graph
        smoothing sets the speeds (networks without such a history, e.g. probe-only roads).
    """

    def __init__(
        self,
        adjacency: sp.csr_matrix,
        freeflow_mps: npt.ArrayLike,
        profile: SpeedProfile | None = None,
        length_m: npt.ArrayLike | None = None,
        settings: TrafficSettings | None = None,
        model: SpeedModel | None = None,
    ) -> None:
        self.settings = settings or TrafficSettings()
        self.freeflow_mps = np.asarray(freeflow_mps, dtype=np.float64)
        n = len(self.freeflow_mps)
        if adjacency.shape != (n, n):
            raise ValueError(f"adjacency must be ({n}, {n}), got {adjacency.shape}")
        if profile is not None and profile.speeds_mps.shape[1] != n:
            raise ValueError("profile has a different number of edges")
        self.n_edges = n
        if model is not None and model.n != n:
            raise ValueError("model has a different number of edges")
        self._model = None if model is None else model.state()
        self.profile = profile
        self.length_m = None if length_m is None else np.asarray(length_m, dtype=np.float64)
        s = self.settings
        self._lap = (s.smoothing * laplacian(sp.csr_matrix(adjacency, dtype=np.float64))).tocsr()
        self._lap_diag = self._lap.diagonal()
        self._memory = _Memory(s.memory, n)
        self._warm: FloatArray = np.zeros((n, 2))
        self.last_state: CongestionState | None = None
        self.last_iterations = 0

    # ------------------------------------------------------------------ evidence
    def observe(
        self,
        edge: npt.ArrayLike,
        time_s: npt.ArrayLike,
        speed_mps: npt.ArrayLike,
        weight: npt.ArrayLike | float = 1.0,
        source: str = "probe",
    ) -> int:
        """Add speed observations; return how many were accepted.

        Parameters
        ----------
        edge : edge index of each observation.
        time_s : UTC epoch time (s).
        speed_mps : observed speed (m/s); non-finite or non-positive values are dropped.
        weight : evidence weight (e.g. probe count), broadcast.
        source : ``"probe"`` or ``"flow"``.
        """
        if source not in ("probe", "flow"):
            raise ValueError("source must be 'probe' or 'flow'")
        e = np.atleast_1d(np.asarray(edge, dtype=np.int64))
        t = np.broadcast_to(np.asarray(time_s, dtype=np.float64), e.shape)
        v = np.broadcast_to(np.asarray(speed_mps, dtype=np.float64), e.shape)
        w = np.broadcast_to(np.asarray(weight, dtype=np.float64), e.shape)
        ok = (e >= 0) & (e < self.n_edges) & np.isfinite(v) & (v > 0) & np.isfinite(t) & (w > 0)
        code = np.full(int(ok.sum()), PROBE if source == "probe" else FLOW, dtype=np.int8)
        self._memory.push(e[ok], np.ascontiguousarray(t[ok]), np.ascontiguousarray(v[ok]),
                          np.ascontiguousarray(w[ok]), code)
        if self._model is not None:
            self._model.observe(e[ok], np.ascontiguousarray(t[ok]), np.ascontiguousarray(v[ok]))
        return int(ok.sum())

    def profile_at(self, time_s: float) -> FloatArray:
        """Historical profile (m/s) at ``time_s``, free-flow speed where unknown."""
        if self.profile is None:
            return self.freeflow_mps.copy()
        p = self.profile.at(time_s)
        return np.where(np.isfinite(p), p, self.freeflow_mps)

    def own_evidence(self, time_s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per-edge observed level (m/s, NaN when none), its weight ``c`` and flow share."""
        s, mem = self.settings, self._memory
        fresh = (mem.time <= time_s) & (mem.time >= time_s - s.max_age_s) & np.isfinite(mem.speed)
        vals = np.where(fresh, mem.speed, np.nan)
        srt = np.sort(vals, axis=0)  # NaN last
        cnt = fresh.sum(axis=0)
        lo = np.clip((cnt - 1) // 2, 0, mem.k - 1)
        hi = np.clip(cnt // 2, 0, mem.k - 1)
        cols = np.arange(self.n_edges)
        level = np.where(cnt > 0, 0.5 * (srt[lo, cols] + srt[hi, cols]), np.nan)
        newest = np.where(fresh, mem.time, -np.inf).max(axis=0)
        age = np.where(cnt > 0, time_s - newest, np.inf)
        wsum = np.where(fresh, mem.weight, 0.0).sum(axis=0)
        c = np.minimum(1.0, wsum / s.full_weight) * np.exp(-age / s.own_decay_s)
        c = np.where(cnt > 0, c, 0.0)
        flow_w = np.where(fresh & (mem.source == FLOW), mem.weight, 0.0).sum(axis=0)
        flow_share = np.where(wsum > 0, flow_w / np.where(wsum > 0, wsum, 1.0), 0.0)
        return level, c, flow_share

    # ------------------------------------------------------------------ solve
    def _solve(self, c: FloatArray, rhs: FloatArray) -> FloatArray:
        """Solve ``(diag(c + eps) + lambda L) X = rhs`` for 2 columns by preconditioned CG."""
        s = self.settings
        diag = c + s.shrinkage

        def matvec(x: FloatArray) -> FloatArray:
            return np.asarray(diag[:, None] * x + self._lap @ x)

        inv_m = 1.0 / (diag + self._lap_diag)
        x = self._warm.copy()
        r = rhs - matvec(x)
        z = inv_m[:, None] * r
        p = z.copy()
        rz = (r * z).sum(axis=0)
        bnorm = np.maximum(np.linalg.norm(rhs, axis=0), 1e-12)
        it = 0
        for it in range(1, s.solver_max_iter + 1):
            if (np.linalg.norm(r, axis=0) <= s.solver_tol * bnorm).all():
                it -= 1
                break
            ap = matvec(p)
            pap = (p * ap).sum(axis=0)
            alpha = np.where(pap > 0, rz / np.where(pap > 0, pap, 1.0), 0.0)
            x += alpha * p
            r -= alpha * ap
            z = inv_m[:, None] * r
            rz_new = (r * z).sum(axis=0)
            beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
            p = z + beta * p
            rz = rz_new
        self.last_iterations = it
        self._warm = x
        return x

    def update(self, time_s: float) -> CongestionState:
        """Estimate every edge at ``time_s`` (UTC epoch s) from the evidence observed so far."""
        s = self.settings
        profile = self.profile_at(time_s)
        level, c, flow_share = self.own_evidence(time_s)
        dev = np.where(c > 0, level - profile, 0.0)
        x = self._solve(c, np.column_stack([c * dev, c]))
        raw = profile + x[:, 0] if self._model is None else self._model.predict(float(time_s))
        speed = np.clip(raw, s.min_speed_mps, s.max_speed_ratio * self.freeflow_mps)
        share = np.clip(x[:, 1], 0.0, 1.0)
        direct = np.minimum(c / (c + s.shrinkage + self._lap_diag), share)
        mix = np.column_stack([direct * (1 - flow_share), direct * flow_share, share - direct, 1.0 - share])
        tt = self.length_m / speed if self.length_m is not None else np.full(self.n_edges, np.nan)
        state = CongestionState(
            time_s=float(time_s), speed_mps=speed, profile_mps=profile, freeflow_mps=self.freeflow_mps,
            confidence=share, level=classify_levels(speed / self.freeflow_mps, s),
            source_mix=mix.astype(np.float32), travel_time_s=tt,
        )
        self.last_state = state
        return state

"""Travel time index history: an in-memory series of network TTI samples and bucketing.

Pure logic over numpy arrays (no I/O): the live service appends one sample per estimate
update and the history route reads a window of it, optionally averaged into fixed buckets.
Times are UTC epoch seconds; TTI is a ratio (1.0 = free flow).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import numpy.typing as npt

__all__ = ["TtiSeries", "bucket_means", "default_step_s", "iso_times"]

FloatArray = npt.NDArray[np.float64]


class TtiSeries:
    """Time-ordered (time_s, tti) samples kept for ``max_age_s`` seconds (thread-safe).

    Storage is two numpy arrays trimmed of samples older than ``max_age_s`` before the
    newest, so memory is bounded by the sample rate × max age (a week of 30-s samples is
    ~320 kB).
    """

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = float(max_age_s)
        self._t = np.zeros(0, np.float64)
        self._v = np.zeros(0, np.float64)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._t)

    def extend(self, time_s: npt.ArrayLike, tti: npt.ArrayLike) -> None:
        """Add samples (any order; non-finite or non-positive TTI dropped; a repeated time keeps the last)."""
        t = np.atleast_1d(np.asarray(time_s, dtype=np.float64))
        v = np.atleast_1d(np.asarray(tti, dtype=np.float64))
        ok = np.isfinite(t) & np.isfinite(v) & (v > 0)
        with self._lock:
            self._merge(t[ok], v[ok])

    def append(self, time_s: float, tti: float) -> None:
        """Add one sample; newer than the last (the live case) it is appended without a sort."""
        if not (math.isfinite(time_s) and math.isfinite(tti) and tti > 0):
            return
        with self._lock:
            if len(self._t) and time_s <= self._t[-1]:
                self._merge(np.array([time_s]), np.array([tti]))
                return
            self._t = np.append(self._t, time_s)
            self._v = np.append(self._v, tti)
            if self._t[0] < time_s - self.max_age_s:
                first = int(np.searchsorted(self._t, time_s - self.max_age_s))
                self._t, self._v = self._t[first:], self._v[first:]

    def _merge(self, t: FloatArray, v: FloatArray) -> None:
        t_all = np.concatenate([self._t, t])
        v_all = np.concatenate([self._v, v])
        if not len(t_all):
            return
        order = np.argsort(t_all, kind="stable")
        t_all, v_all = t_all[order], v_all[order]
        last = np.r_[t_all[1:] != t_all[:-1], True]
        t_all, v_all = t_all[last], v_all[last]
        keep = t_all >= t_all[-1] - self.max_age_s
        self._t, self._v = t_all[keep], v_all[keep]

    def window(self, since_s: float, until_s: float = math.inf) -> tuple[FloatArray, FloatArray]:
        """Copies of the samples with ``since_s <= time < until_s``."""
        with self._lock:
            lo = int(np.searchsorted(self._t, since_s, side="left"))
            hi = int(np.searchsorted(self._t, until_s, side="left"))
            return self._t[lo:hi].copy(), self._v[lo:hi].copy()


def default_step_s(span_s: float, max_points: int = 720) -> int:
    """Bucket width (s) that keeps at most ``max_points`` epoch-aligned buckets over ``span_s`` seconds."""
    return max(1, math.ceil(span_s / max(max_points - 1, 1)))


def bucket_means(time_s: npt.ArrayLike, tti: npt.ArrayLike, step_s: float) -> tuple[FloatArray, FloatArray]:
    """Mean TTI per bucket of ``step_s`` seconds aligned on the epoch; empty buckets are left out.

    Returns the bucket start times (epoch s, ascending) and the mean TTI of each.
    """
    t = np.asarray(time_s, dtype=np.float64)
    v = np.asarray(tti, dtype=np.float64)
    if step_s <= 0:
        raise ValueError("step_s must be positive")
    if not len(t):
        return np.zeros(0), np.zeros(0)
    bucket = np.floor(t / step_s).astype(np.int64)
    ids, inv = np.unique(bucket, return_inverse=True)
    sums = np.bincount(inv, weights=v, minlength=len(ids))
    counts = np.bincount(inv, minlength=len(ids))
    return ids.astype(np.float64) * step_s, sums / counts


def iso_times(time_s: npt.ArrayLike) -> list[str]:
    """UTC ISO 8601 strings (second precision, ``Z``) of epoch seconds, vectorised."""
    t = np.floor(np.asarray(time_s, dtype=np.float64)).astype("datetime64[s]")
    return [s + "Z" for s in np.datetime_as_string(t, unit="s").tolist()]

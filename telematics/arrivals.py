"""Stop arrival detection: the time a vehicle passes each stop, interpolated between pings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["StopPassings", "passing_times"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class StopPassings:
    """Passing times of one vehicle run at each stop of its trip (arrays shape (n_stops,)).

    Attributes
    ----------
    time_s : ndarray
        Interpolated passing time (s, same clock as the pings), NaN where the pings do not
        bracket the stop (before the first ping, after the last, or across a long gap).
    known_at_s : ndarray
        Time of the ping after the passing, i.e. when the passing became known (s), NaN
        likewise.
    """

    time_s: FloatArray
    known_at_s: FloatArray


def passing_times(times_s: npt.ArrayLike, along_m: npt.ArrayLike, stop_dist_m: npt.ArrayLike,
                  *, max_gap_s: float = 300.0) -> StopPassings:
    """Times a vehicle passes each stop, interpolated linearly between the bracketing pings.

    Parameters
    ----------
    times_s : array_like, shape (m,)
        Ping times (s), increasing.
    along_m : array_like, shape (m,)
        Matched distance along the trip path (m); made non-decreasing here.
    stop_dist_m : array_like, shape (n,)
        Distance of each stop along the path (m).
    max_gap_s : float
        Pings further apart than this (s) do not give a passing time.

    Returns
    -------
    StopPassings
        Passing and known-at times per stop.
    """
    t = np.asarray(times_s, dtype=np.float64)
    d = np.maximum.accumulate(np.asarray(along_m, dtype=np.float64)) if len(t) else np.zeros(0)
    stops = np.asarray(stop_dist_m, dtype=np.float64)
    out = np.full(len(stops), np.nan)
    known = np.full(len(stops), np.nan)
    if len(t) < 2:
        return StopPassings(out, known)
    i = np.searchsorted(d, stops, side="left")
    ok = (i >= 1) & (i < len(d))
    i = np.clip(i, 1, len(d) - 1)
    d0, d1, t0, t1 = d[i - 1], d[i], t[i - 1], t[i]
    ok &= (d1 > d0) & (t1 - t0 <= max_gap_s)
    frac = np.clip((stops - d0) / np.where(d1 > d0, d1 - d0, 1.0), 0.0, 1.0)
    out[ok] = (t0 + frac * (t1 - t0))[ok]
    known[ok] = t1[ok]
    return StopPassings(out, known)

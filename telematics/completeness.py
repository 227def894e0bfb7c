"""Prediction completeness: did every vehicle in service have a prediction for the stops ahead?

A (ping, stop) pair *should* have a prediction when the ping belongs to a recorded trip
(a run) and the vehicle actually passed that stop of the run within ``horizon_s`` after
the ping. It *had* one when a scored prediction made at that ping was for that passing.
Completeness is the share of the pairs that should that had; pure array functions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["expected_pairs", "pair_coverage", "trip_minute_coverage"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def expected_pairs(ping_s: npt.ArrayLike, ping_run: npt.ArrayLike, passing_run: npt.ArrayLike,
                   passing_s: npt.ArrayLike, horizon_s: float) -> tuple[IntArray, IntArray]:
    """The (ping, passing) pairs that should have a prediction.

    Parameters
    ----------
    ping_s : array_like, shape (m,)
        Ping times (epoch s).
    ping_run : array_like of int, shape (m,)
        Recorded run of each ping (-1: on no run, no pair).
    passing_run, passing_s : array_like, shape (k,)
        Run and time (epoch s) of each actual stop passing.
    horizon_s : float
        Largest time (s) from the ping to the passing.

    Returns
    -------
    pings, passings : ndarray of int
        Indices of the ping and of the passing of each pair (passings after the ping, at
        most ``horizon_s`` later, on the ping's run).
    """
    t = np.asarray(ping_s, dtype=np.float64)
    runs = np.asarray(ping_run, dtype=np.int64)
    p_run = np.asarray(passing_run, dtype=np.int64)
    p_t = np.asarray(passing_s, dtype=np.float64)
    if len(p_t) == 0 or len(t) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((p_t, p_run))
    run_sorted, time_sorted = p_run[order], p_t[order]
    # within a run, passings sorted by time: search the window of each ping's run
    first = np.searchsorted(run_sorted, runs, side="left")
    last = np.searchsorted(run_sorted, runs, side="right")
    lo = np.empty(len(t), dtype=np.int64)
    hi = np.empty(len(t), dtype=np.int64)
    for run in np.unique(runs[runs >= 0]):  # one search per run
        at = np.flatnonzero(runs == run)
        a, b = int(first[at[0]]), int(last[at[0]])
        lo[at] = a + np.searchsorted(time_sorted[a:b], t[at], side="right")
        hi[at] = a + np.searchsorted(time_sorted[a:b], t[at] + horizon_s, side="right")
    count = np.where(runs >= 0, hi - lo, 0)
    count = np.maximum(count, 0)
    pings = np.repeat(np.arange(len(t)), count)
    offsets = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return pings.astype(np.int64), order[np.repeat(np.where(runs >= 0, lo, 0), count) + offsets].astype(np.int64)


def pair_coverage(pings: npt.ArrayLike, passings: npt.ArrayLike, predicted_ping: npt.ArrayLike,
                  predicted_passing: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each expected (ping, passing) pair had a prediction.

    Parameters
    ----------
    pings, passings : array_like of int, shape (n,)
        The expected pairs (`expected_pairs`).
    predicted_ping, predicted_passing : array_like of int, shape (r,)
        Ping and passing scored by each prediction (-1: none).

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    p = np.asarray(pings, dtype=np.int64)
    q = np.asarray(passings, dtype=np.int64)
    pp = np.asarray(predicted_ping, dtype=np.int64)
    pq = np.asarray(predicted_passing, dtype=np.int64)
    keep = pq >= 0
    stride = int(max(q.max(initial=-1), pq.max(initial=-1))) + 1
    made = np.unique(pp[keep] * stride + pq[keep])
    return np.isin(p * stride + q, made)


def trip_minute_coverage(trip_start_s: npt.ArrayLike, trip_end_s: npt.ArrayLike, pred_trip: npt.ArrayLike,
                         pred_issued_s: npt.ArrayLike, max_age_s: float = 120.0,
                         period: tuple[float, float] | None = None) -> tuple[int, int]:
    """In-service trip-minutes with a prediction, and all of them.

    Trip ``k`` is in service over ``[trip_start_s[k], trip_end_s[k]]`` (epoch s); its minutes
    are the UTC-aligned ``[m, m + 60)`` overlapping that span (and ``period``, epoch s
    ``[start, end)``, when given). Minute ``m`` of trip ``k`` is covered when a prediction of
    trip ``k`` was issued in ``[m + 60 - max_age_s, m + 60)``.

    Returns
    -------
    covered, total : int
        Covered trip-minutes and in-service trip-minutes.

    Raises
    ------
    ValueError
        ``max_age_s`` below 60 s (a minute could not be covered by a prediction inside it).
    """
    if not max_age_s >= 60.0:
        raise ValueError(f"max_age_s must be at least 60 s, got {max_age_s}")
    start = np.asarray(trip_start_s, dtype=np.float64)
    end = np.asarray(trip_end_s, dtype=np.float64)
    trip = np.asarray(pred_trip, dtype=np.int64)
    issued = np.asarray(pred_issued_s, dtype=np.float64)
    ok = np.isfinite(start) & np.isfinite(end) & (end >= start)
    first = np.floor(start / 60.0)
    last = np.floor(end / 60.0)
    if period is not None:
        first = np.maximum(first, np.floor(period[0] / 60.0))
        last = np.minimum(last, np.ceil(period[1] / 60.0) - 1)
    count = np.where(ok, np.maximum(last - first + 1, 0), 0).astype(np.int64)
    total = int(count.sum())
    if total == 0:
        return 0, 0
    # a prediction covers the minutes M (m = 60 M) with m + 60 - max_age_s <= issued < m + 60:
    # floor(issued / 60) <= M <= floor((issued + max_age_s - 60) / 60)
    keep = (trip >= 0) & (trip < len(start)) & np.isfinite(issued)
    trip, issued = trip[keep], issued[keep]
    lo_m = np.floor(issued / 60.0)
    reach = np.floor((issued + max_age_s - 60.0) / 60.0)
    reach = np.where(reach * 60.0 + 60.0 - max_age_s > issued, reach - 1, reach)  # rounding of the sum
    reach = np.maximum(reach, lo_m)
    covered = 0
    order = np.lexsort((lo_m, trip))
    trip, lo_m, reach = trip[order], lo_m[order], reach[order]
    bounds = np.searchsorted(trip, np.arange(len(start) + 1))
    for k in np.flatnonzero(count):
        a, b = bounds[k], bounds[k + 1]
        if a == b:
            continue
        # union of the intervals [lo_m, reach] clipped to [first, last]
        lo = np.maximum(lo_m[a:b], first[k])
        hi = np.minimum(reach[a:b], last[k])
        use = hi >= lo
        lo, hi = lo[use], hi[use]
        if len(lo) == 0:
            continue
        prev = np.concatenate(([-np.inf], np.maximum.accumulate(hi)[:-1]))  # sorted by lo: new minutes only
        covered += int(np.maximum(hi - np.maximum(lo, prev + 1) + 1, 0).sum())
    return covered, total

"""Online matching of a vehicle's pings onto its trip path, and the stops each ping passes.

Pure functions (no state, no I/O) behind `telematics.fleet.Fleet.observe`:
`locate_along` places a ping along the trip path, preferring the trip's start on the first
ping and forward progress within reach afterwards; `stop_passings` lists the stops passed
between two pings with their passing times interpolated along the path (the rows of
``stop_arrivals``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from telematics.matching import Polyline, projection_candidates

__all__ = ["LEAVE_FIRST_STOP_M", "MAX_MATCH_OFFSET_M", "locate_along", "stop_passings"]

FloatArray = npt.NDArray[np.float64]
LEAVE_FIRST_STOP_M = 30.0  # beyond this (m) the vehicle has left its trip's first stop
MAX_MATCH_OFFSET_M = 300.0  # projections farther than this (m) from the path are not candidates


def locate_along(line: Polyline, xy: FloatArray, prev_along_m: float, prev_t: float, t: float
                 ) -> tuple[float, float]:
    """Distance along the trip path of a ping, never going backwards.

    Parameters
    ----------
    line : Polyline
        The trip path (metres).
    xy : ndarray, shape (2,)
        The ping (metres, the path's projection).
    prev_along_m : float
        Distance along (m) at the previous ping on this trip, NaN on its first ping.
    prev_t, t : float
        Times (epoch s) of the previous ping and of this one.

    Returns
    -------
    along_m : float
        Distance along the path (m), at least ``prev_along_m``.
    offset_m : float
        Distance (m) of the chosen projection from the ping.
    """
    along, offset = projection_candidates(line, xy[None, :], k=4, max_offset_m=MAX_MATCH_OFFSET_M)
    cand, off = along[0], offset[0]
    valid = ~np.isnan(cand)
    cand, off = cand[valid], off[valid]
    prev = prev_along_m
    if math.isnan(prev):
        # first ping on the trip: the nearest candidate, preferring the trip's start
        cost = (off / 25.0) ** 2 + cand / 2000.0
    else:
        reach = 35.0 * max(t - prev_t, 1.0) + 60.0
        delta = cand - prev
        cost = (off / 25.0) ** 2 + np.where(delta < -30.0, ((delta + 30.0) / 10.0) ** 2, 0.0) \
            + np.where(delta > reach, 50.0, 0.0)
    pick = int(np.argmin(cost))
    new_along = float(cand[pick]) if math.isnan(prev) else max(prev, float(cand[pick]))
    return new_along, float(off[pick])


def stop_passings(dist_m: FloatArray, n_stops: int, next_stop: int, old_along_m: float, new_along_m: float,
                  prev_t: float, t: float, max_gap_s: float, matched_before: bool) -> list[tuple[int, float]]:
    """Stops passed between two pings and their interpolated passing times.

    The first stop is passed when the vehicle leaves it (beyond `LEAVE_FIRST_STOP_M`: a
    layover is not travel time), any other when the vehicle reaches it.

    Parameters
    ----------
    dist_m : ndarray
        Distance (m) of each of the trip's stops along its path.
    n_stops : int
        Stops of the trip.
    next_stop : int
        Index of the first stop not yet passed.
    old_along_m, new_along_m : float
        Distance along (m) at the previous ping and at this one.
    prev_t, t : float
        Times (epoch s) of the previous ping and of this one.
    max_gap_s : float
        Longest gap (s) between pings over which passing times are interpolated.
    matched_before : bool
        The previous ping was matched on this trip (else passing times are unknown).

    Returns
    -------
    list of (int, float)
        ``(stop index, passing time epoch s)`` per passed stop in order, NaN when unknown.
    """
    out: list[tuple[int, float]] = []
    j = next_stop
    while j < n_stops and (dist_m[j] < new_along_m - LEAVE_FIRST_STOP_M if j == 0 else dist_m[j] <= new_along_m):
        if new_along_m > old_along_m and t - prev_t <= max_gap_s and matched_before:
            share = max(dist_m[j] - old_along_m, 0.0) / (new_along_m - old_along_m)
            when = prev_t + min(share, 1.0) * (t - prev_t)
        else:
            when = math.nan
        out.append((j, when))
        j += 1
    return out

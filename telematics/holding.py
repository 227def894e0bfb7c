"""Holding advice at control stops (timepoints): even headways on frequent routes.

Pure, vectorised kernel (no state, no I/O). The live arrival predictions give, for every
bus, its predicted arrival at the control stops ahead of it; `advise` finds each deciding
bus's leader (the bus predicted just before it at the same control stop, else the last
actual departure there) and follower (the bus predicted just after it) and `headway_holds`
applies the rule:

* forward headway ``h_f = ready - leader departure``, backward headway
  ``h_b = follower arrival - ready`` (s; a missing neighbour counts as the scheduled
  headway ``H``);
* ``hold = clip(gain * (h_b - h_f) / 2, 0, cap)``: a gain of 1 departs the bus at the mean
  of its leader's departure and its follower's arrival, a smaller gain moves it part way;
  the cap is larger at a trip's first stop (dispatching from the terminal delays only
  the passengers boarding there);
* on a non-frequent route (scheduled headway above ``frequent_headway_s``, passengers use
  the timetable) the hold never takes the bus past its scheduled departure, so a bus
  already late is never held there.

`schedule_holds` is the schedule-based baseline (hold an early bus until its scheduled
departure). `RouteParams` holds the per-route parameters (arrays indexed by route code).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "CONTROL_SPACING_S",
    "DEFAULT_CAP_SHARE",
    "DEFAULT_GAIN",
    "DEFAULT_ORIGIN_CAP_SHARE",
    "FREQUENT_HEADWAY_S",
    "RouteParams",
    "advise",
    "control_stops",
    "excess_wait_change",
    "feed_timepoints",
    "headway_holds",
    "neighbours",
    "schedule_holds",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: A route whose scheduled headway is at most this (s) is frequent (TfL: 5+ buses an hour;
#: the default of ``its report``, ``ITS_REPORTS_FREQUENT_HEADWAY_S``).
FREQUENT_HEADWAY_S = 720.0
#: Default gain of the rule (share of the gap to the mean headway closed at one stop): the
#: least mean generalised passenger time (2 x excess wait + time aboard) over the tuning
#: scenarios of `telematics.holding_eval.select_gain` (WMATA D40 + D96 headway-managed at
#: 2.5, 5 and 10 passengers per stop-hour, D40 + D96 and the Cairns timetable as timetabled
#: routes; also the least worst regret), WMATA C53 held out.
DEFAULT_GAIN = 0.4
#: Default cap of one hold as a share of the route's scheduled headway.
DEFAULT_CAP_SHARE = 0.2
#: Default cap of a hold at a trip's first stop as a share of the scheduled headway.
DEFAULT_ORIGIN_CAP_SHARE = 0.5
#: Without timepoints in the feed, control stops are this far apart in schedule (s).
CONTROL_SPACING_S = 480.0


@dataclass(frozen=True)
class RouteParams:
    """Holding parameters per route (every array has one entry per route code).

    Attributes
    ----------
    headway_s : ndarray of float
        Scheduled headway (s; NaN for a route without two trips at a stop: never held).
    frequent : ndarray of bool
        Headway-managed route (scheduled headway at most `FREQUENT_HEADWAY_S`); elsewhere a
        hold never goes past the scheduled departure.
    gain : ndarray of float
        Gain of the rule (0-1, dimensionless).
    cap_s : ndarray of float
        Longest single hold (s).
    origin_cap_s : ndarray of float
        Longest hold at a trip's first stop (s).
    """

    headway_s: FloatArray
    frequent: BoolArray
    gain: FloatArray
    cap_s: FloatArray
    origin_cap_s: FloatArray

    @classmethod
    def from_headways(cls, headway_s: npt.ArrayLike, *, frequent_headway_s: float = FREQUENT_HEADWAY_S,
                      gain: float | npt.ArrayLike = DEFAULT_GAIN,
                      cap_share: float | npt.ArrayLike = DEFAULT_CAP_SHARE,
                      origin_cap_share: float | npt.ArrayLike = DEFAULT_ORIGIN_CAP_SHARE) -> RouteParams:
        """Parameters from each route's scheduled headway (s): cap = ``cap_share * headway``,
        at a trip's first stop ``origin_cap_share * headway``."""
        h = np.asarray(headway_s, dtype=np.float64)
        h = np.where(np.isfinite(h) & (h > 0), h, np.nan)  # a route without headways is never held
        return cls(headway_s=h, frequent=np.nan_to_num(h, nan=np.inf) <= frequent_headway_s,
                   gain=np.broadcast_to(np.asarray(gain, dtype=np.float64), h.shape).copy(),
                   cap_s=np.nan_to_num(np.asarray(cap_share, dtype=np.float64) * h),
                   origin_cap_s=np.nan_to_num(np.asarray(origin_cap_share, dtype=np.float64) * h))


def headway_holds(route: npt.ArrayLike, ready_s: npt.ArrayLike, leader_departure_s: npt.ArrayLike,
                  follower_arrival_s: npt.ArrayLike, scheduled_departure_s: npt.ArrayLike,
                  params: RouteParams, at_origin: npt.ArrayLike = False) -> FloatArray:
    """Headway-based holds (s) of buses ready to leave a control stop.

    Parameters
    ----------
    route : array_like of int, shape (n,)
        Route code of each bus (index into ``params``).
    ready_s : array_like, shape (n,)
        Time the bus is (predicted to be) ready to depart the control stop (epoch s).
    leader_departure_s : array_like, shape (n,)
        Departure of the bus ahead from that stop (epoch s, NaN when none).
    follower_arrival_s : array_like, shape (n,)
        Predicted arrival of the bus behind at that stop (epoch s, NaN when none).
    scheduled_departure_s : array_like, shape (n,)
        The bus's scheduled departure there (epoch s, NaN when unknown).
    params : RouteParams
        Per-route parameters.
    at_origin : array_like of bool, shape (n,) or scalar
        The stop is the trip's first (the origin cap applies).

    Returns
    -------
    ndarray, shape (n,)
        Recommended hold (s, >= 0, at most the route's cap; on a non-frequent route at most
        the time left until the scheduled departure, 0 when late or unknown).
    """
    r = np.asarray(route, dtype=np.int64)
    ready = np.asarray(ready_s, dtype=np.float64)
    big_h = params.headway_s[r]
    h_f = np.where(np.isnan(leader_departure_s), big_h, ready - np.asarray(leader_departure_s, np.float64))
    h_b = np.where(np.isnan(follower_arrival_s), big_h, np.asarray(follower_arrival_s, np.float64) - ready)
    cap = np.where(np.asarray(at_origin, dtype=bool), params.origin_cap_s[r], params.cap_s[r])
    hold = np.clip(np.nan_to_num(params.gain[r] * (h_b - h_f) / 2.0), 0.0, cap)
    slack = np.nan_to_num(np.asarray(scheduled_departure_s, dtype=np.float64) - ready, nan=0.0)
    hold = np.where(params.frequent[r], hold, np.minimum(hold, np.maximum(slack, 0.0)))
    return np.where(np.isfinite(ready), np.nan_to_num(hold), 0.0)


def excess_wait_change(forward_headway_s: npt.ArrayLike, backward_headway_s: npt.ArrayLike, hold_s: npt.ArrayLike,
                       scheduled_headway_s: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Expected excess wait (s) at a control stop over a bus's two headways, without and with its hold.

    Passengers arriving at random over the forward and backward headways ``h_f`` and
    ``h_b`` (s; NaN counts as the scheduled headway ``H``, as in `headway_holds`) wait
    ``AWT = (h_f**2 + h_b**2) / (2 (h_f + h_b))`` on average; a hold ``x`` makes the gaps
    ``h_f + x`` and ``h_b - x`` (the bus behind is not moved, the span ``h_f + h_b`` stays).
    The excess wait is AWT less the wait if these two gaps were even, ``(h_f + h_b) / 4``
    (>= 0; 0 for even gaps). The span being fixed, its change equals the change of the TfL
    excess wait time ``AWT - SWT`` (``its report``) over those passengers.

    Returns
    -------
    (ndarray, ndarray)
        Excess wait without and with the hold (s).
    """
    big_h = np.asarray(scheduled_headway_s, dtype=np.float64)
    h_f = np.where(np.isnan(np.asarray(forward_headway_s, np.float64)), big_h, forward_headway_s)
    h_b = np.where(np.isnan(np.asarray(backward_headway_s, np.float64)), big_h, backward_headway_s)
    x = np.asarray(hold_s, dtype=np.float64)
    total = np.maximum(h_f + h_b, 1e-9)

    def ewt(a: FloatArray, b: FloatArray) -> FloatArray:
        return np.asarray((a * a + b * b) / (2.0 * total) - total / 4.0, dtype=np.float64)

    return ewt(h_f, h_b), ewt(h_f + x, h_b - x)


def schedule_holds(ready_s: npt.ArrayLike, scheduled_departure_s: npt.ArrayLike,
                   cap_s: float | npt.ArrayLike = np.inf) -> FloatArray:
    """Schedule-based holds (s): an early bus waits until its scheduled departure.

    ``hold = clip(scheduled departure - ready, 0, cap_s)``; 0 when either time is unknown.
    """
    slack = np.asarray(scheduled_departure_s, dtype=np.float64) - np.asarray(ready_s, dtype=np.float64)
    return np.clip(np.nan_to_num(slack, nan=0.0), 0.0, cap_s)


def neighbours(stop_key: npt.ArrayLike, predicted_s: npt.ArrayLike, last_departure_s: npt.ArrayLike
               ) -> tuple[FloatArray, FloatArray]:
    """Leader departure and follower arrival (epoch s) of each prediction at a control stop.

    Rows of the same ``stop_key`` are ordered by predicted time: a row's leader is the row
    before it (a bus predicted to get there first) or, for the first one, the last actual
    departure from that stop; its follower is the row after it (NaN for the last one).

    Parameters
    ----------
    stop_key : array_like of int, shape (n,)
        Control stop of the prediction (one key per route and stop: headways are per route).
    predicted_s : array_like, shape (n,)
        Predicted arrival (epoch s).
    last_departure_s : array_like, shape (n,)
        Last actual departure from the row's stop (epoch s, NaN when none known).

    Returns
    -------
    leader_departure_s, follower_arrival_s : ndarray, shape (n,)
        Epoch s, NaN where there is none.
    """
    key = np.asarray(stop_key, dtype=np.int64)
    pred = np.asarray(predicted_s, dtype=np.float64)
    n = len(key)
    order = np.lexsort((pred, key))
    k_sorted, p_sorted = key[order], pred[order]
    same_prev = np.r_[False, k_sorted[1:] == k_sorted[:-1]]
    same_next = np.r_[k_sorted[1:] == k_sorted[:-1], False]
    last = np.broadcast_to(np.asarray(last_departure_s, np.float64), (n,))
    leader = np.where(same_prev, np.r_[np.nan, p_sorted[:-1]], last[order])
    follower = np.where(same_next, np.r_[p_sorted[1:], np.nan], np.nan)
    lead, foll = np.empty(n), np.empty(n)
    lead[order], foll[order] = leader, follower
    return lead, foll


def advise(stop_key: npt.ArrayLike, route: npt.ArrayLike, predicted_s: npt.ArrayLike,
           scheduled_departure_s: npt.ArrayLike, deciding: npt.ArrayLike, last_departure_s: npt.ArrayLike,
           params: RouteParams, at_origin: npt.ArrayLike = False) -> FloatArray:
    """Holds (s) from a fleet's predictions at control stops.

    One row per (bus, control stop ahead of it) prediction; each row's leader and follower
    are found by `neighbours` (on the same ``stop_key``: a key per route and stop, as
    headways are per route) and `headway_holds` applies the rule.

    Parameters
    ----------
    stop_key : array_like of int, shape (n,)
        Control stop of the prediction (one key per route and stop).
    route : array_like of int, shape (n,)
        Route code of the bus.
    predicted_s : array_like, shape (n,)
        Predicted arrival (ready to depart, for a bus at the stop) (epoch s).
    scheduled_departure_s : array_like, shape (n,)
        The bus's scheduled departure at that stop (epoch s, NaN when unknown).
    deciding : array_like of bool, shape (n,)
        Rows to advise (each bus's next control stop); other rows only serve as neighbours.
    last_departure_s : array_like, shape (n,)
        Last actual departure from the row's stop (epoch s, NaN when none known).
    params : RouteParams
        Per-route parameters.
    at_origin : array_like of bool, shape (n,) or scalar
        The stop is the bus's trip's first.

    Returns
    -------
    ndarray, shape (n,)
        Recommended hold (s) on deciding rows, 0 elsewhere.
    """
    lead, foll = neighbours(stop_key, predicted_s, last_departure_s)
    hold = headway_holds(route, predicted_s, lead, foll, scheduled_departure_s, params, at_origin)
    return np.where(np.asarray(deciding, dtype=bool), hold, 0.0)


def feed_timepoints(stop_times: pd.DataFrame) -> BoolArray | None:
    """``timepoint == 1`` per ``stop_times`` row when the feed marks timepoints (some rows 0,
    some 1); None when it does not (no column, or every row the same)."""
    if "timepoint" not in stop_times.columns:
        return None
    tp = pd.to_numeric(stop_times["timepoint"], errors="coerce").to_numpy()
    if not ((tp == 1).any() and (tp == 0).any()):
        return None
    return np.asarray(tp == 1)


def control_stops(sched_s: npt.ArrayLike, trip_ptr: npt.ArrayLike, timepoint: npt.ArrayLike | None,
                  spacing_s: float = CONTROL_SPACING_S) -> BoolArray:
    """Control stops of trips laid out as runs of rows: the timepoints when given, else each
    trip's first stop and every stop ``spacing_s`` (s) of schedule after the last one;
    never a trip's last stop.

    Parameters
    ----------
    sched_s : array_like, shape (n,)
        Scheduled time of each row (s, any origin), increasing within a trip.
    trip_ptr : array_like of int, shape (n_trips + 1,)
        Row offsets of each trip.
    timepoint : array_like of bool, shape (n,), or None
        Timepoint flag of each row (`feed_timepoints`), None when the feed marks none.
    spacing_s : float
        Schedule spacing of the fallback (s).

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    sched = np.asarray(sched_s, dtype=np.float64)
    ptr = np.asarray(trip_ptr, dtype=np.int64)
    if timepoint is not None:
        out = np.asarray(timepoint, dtype=bool).copy()
    else:
        out = np.zeros(len(sched), dtype=bool)
        for lo, hi in itertools.pairwise(ptr.tolist()):
            last = -np.inf
            for i in range(lo, hi):
                if sched[i] - last >= spacing_s:
                    out[i], last = True, sched[i]
    out[ptr[1:] - 1] = False
    return out

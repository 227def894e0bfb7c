"""Counterfactual bus simulator for holding strategies, and its scores (pure: arrays in, results out).

A `SimDay` is a day of trips, each a run of rows (the stops it served, in order) with the
running time from leaving each stop to reaching the next (from recorded AVL, or drawn
around the schedule). `simulate` replays the day event by event in time order:

* a bus reaching a stop boards the passengers who arrived there since the last bus of the
  route left it (`PassengerArrivals`: Poisson arrivals per stop, the same draws for every
  strategy) and dwells ``dead_s`` (if anyone boards) plus ``board_s`` per boarding plus the
  row's recorded extra dwell (and, without control, the recorded wait of an early bus at a
  control stop); no boarding at a trip's first row (it boards during layover) or last row;
* at a control stop the strategy may hold it: ``none``; ``schedule``
  (`telematics.holding.schedule_holds`); ``headway`` (`telematics.holding.advise` on the
  controller's predictions: a bus that has left a stop is predicted to reach a later stop
  after the ``profile_s`` times in between, a trip not started after its scheduled
  departure);
* it then leaves, reaching the next stop ``run_s`` later; at its trip's end a vehicle's next
  trip starts at its recorded start, or later when the vehicle ended later than recorded
  beyond the recorded layover.

`score` turns a result into per-route indicators: excess wait time and headway CV by
`telematics.kpi.headway_regularity` (the definition ``its report`` uses) on the simulated
departures against the timetable, bunching, holds and passengers' in-vehicle time.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.holding import RouteParams, advise, schedule_holds
from telematics.kpi import headway_regularity

__all__ = ["STRATEGIES", "PassengerArrivals", "SimDay", "SimResult", "expected_dwell", "recorded_cv", "score",
           "simulate"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
STRATEGIES = ("none", "schedule", "headway")
#: A headway below this share of the scheduled headway is a bunching event.
BUNCHED_SHARE = 0.25
#: Passenger queue (s of arrivals) the first bus finds at a stop of a route without a headway.
FIRST_QUEUE_S = 3600.0
#: Neighbours in timetable order examined as a control stop's follower (either side: overtaking).
FOLLOWER_WINDOW = 3


@dataclass(frozen=True)
class SimDay:
    """A day of trips (arrays; rows of trip ``j`` are ``trip_ptr[j]:trip_ptr[j + 1]``).

    Attributes
    ----------
    trip_ptr : ndarray of int, shape (n_trips + 1,)
        Row offsets of each trip.
    trip_route : ndarray of int, shape (n_trips,)
        Route code of the trip (index into `telematics.holding.RouteParams`).
    trip_next : ndarray of int, shape (n_trips,)
        The same vehicle's next trip (-1 when none).
    start_s, end_s : ndarray, shape (n_trips,)
        Uncontrolled (recorded) departure from the first row and arrival at the last (epoch s).
    stop_key : ndarray of int, shape (n_rows,)
        Code of (route, stop): passengers queue and headways are counted per key.
    sched_s : ndarray, shape (n_rows,)
        Scheduled departure (epoch s).
    run_s : ndarray, shape (n_rows,)
        Running time (s) from leaving the row's stop to reaching the next one (0 on a trip's
        last row).
    extra_dwell_s : ndarray, shape (n_rows,)
        Dwell (s) beyond boarding at the row's stop (recorded door, traffic or driver time),
        in every strategy.
    wait_s : ndarray, shape (n_rows,)
        Recorded wait (s) of an early bus for its scheduled time at a control stop: part of
        the uncontrolled day (``none``), replaced by the strategy's hold otherwise.
    profile_s : ndarray, shape (n_rows,)
        The controller's expected time (s) from leaving the row's stop to leaving the next one.
    control : ndarray of bool, shape (n_rows,)
        Control stop (timepoint) where a bus may be held.
    origin : ndarray of bool, shape (n_rows,)
        The row is its trip's first stop in the timetable (a terminal departure).
    recorded_s : ndarray, shape (n_rows,)
        Recorded passing (epoch s; departure, arrival on a trip's last row), NaN where not
        recorded (no AVL).
    """

    trip_ptr: IntArray
    trip_route: IntArray
    trip_next: IntArray
    start_s: FloatArray
    end_s: FloatArray
    stop_key: IntArray
    sched_s: FloatArray
    run_s: FloatArray
    extra_dwell_s: FloatArray
    wait_s: FloatArray
    profile_s: FloatArray
    control: BoolArray
    origin: BoolArray
    recorded_s: FloatArray

    @property
    def n_trips(self) -> int:
        """Number of trips."""
        return len(self.trip_route)

    @property
    def row_trip(self) -> IntArray:
        """Trip index of every row."""
        return np.repeat(np.arange(self.n_trips), np.diff(self.trip_ptr))

    @property
    def row_route(self) -> IntArray:
        """Route code of every row."""
        return self.trip_route[self.row_trip]

    @property
    def last_row(self) -> BoolArray:
        """Whether each row is its trip's last."""
        out = np.zeros(len(self.stop_key), dtype=bool)
        out[self.trip_ptr[1:] - 1] = True
        return out


@dataclass(frozen=True)
class PassengerArrivals:
    """Passenger arrival times per stop key (sorted within each key).

    Attributes
    ----------
    ptr : ndarray of int, shape (n_keys + 1,)
        Offsets of each key's arrivals in ``time_s``.
    time_s : ndarray
        Arrival times (epoch s).
    cum_s : ndarray
        ``time_s`` cumulative sums per key, with a leading 0 per key (length ``len(time_s) + n_keys``).
    rate_per_s : float
        The arrival rate at every stop (passengers/s).
    """

    ptr: IntArray
    time_s: FloatArray
    cum_s: FloatArray
    rate_per_s: float

    @classmethod
    def draw(cls, n_keys: int, rate_per_s: float, t0: float, t1: float, rng: np.random.Generator) -> PassengerArrivals:
        """Poisson arrivals at ``rate_per_s`` (passengers/s) at every key over ``[t0, t1]`` (epoch s)."""
        counts = rng.poisson(rate_per_s * (t1 - t0), size=n_keys)
        ptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
        times = t0 + rng.random(int(ptr[-1])) * (t1 - t0)
        key = np.repeat(np.arange(n_keys), counts)
        times = times[np.lexsort((times, key))]
        cum = np.zeros(len(times) + n_keys)
        for k in range(n_keys):
            a, b = ptr[k], ptr[k + 1]
            cum[a + k: b + k + 1] = np.r_[0.0, np.cumsum(times[a:b])]
        return cls(ptr, times, cum, rate_per_s)

    def board(self, key: int, after_s: float, until_s: float, bus_arrival_s: float) -> tuple[int, float]:
        """Passengers arriving in ``(after_s, until_s]`` at ``key`` and their total time (s)
        aboard before ``until_s`` (the bus left), counted from ``max(bus arrival, own arrival)``."""
        a, b = int(self.ptr[key]), int(self.ptr[key + 1])
        t = self.time_s[a:b]
        lo = int(np.searchsorted(t, after_s, side="right"))
        hi = int(np.searchsorted(t, until_s, side="right"))
        if hi <= lo:
            return 0, 0.0
        mid = min(max(int(np.searchsorted(t, bus_arrival_s, side="right")), lo), hi)
        c = self.cum_s[a + key: b + key + 1]
        later = c[hi] - c[mid]  # arrived after the bus: aboard from their own arrival
        aboard = (hi - lo) * until_s - (mid - lo) * bus_arrival_s - later
        return hi - lo, float(aboard)


@dataclass(frozen=True)
class SimResult:
    """Per-row outcome of `simulate` (arrays shape (n_rows,)).

    Attributes
    ----------
    arrival_s, departure_s : ndarray
        Simulated arrival at and departure from each row's stop (epoch s).
    hold_s : ndarray
        Hold applied (s).
    boardings : ndarray of int
        Passengers boarding.
    aboard_before_s : ndarray
        Total time (s) the boarding passengers spent aboard before the bus left.
    """

    arrival_s: FloatArray
    departure_s: FloatArray
    hold_s: FloatArray
    boardings: IntArray
    aboard_before_s: FloatArray


def expected_dwell(headway_s: npt.ArrayLike, rate_per_s: float, board_s: float, dead_s: float) -> FloatArray:
    """Expected dwell (s) after a headway (s): ``dead_s * P(boardings > 0) + board_s * rate * headway``."""
    lam = rate_per_s * np.maximum(np.asarray(headway_s, dtype=np.float64), 0.0)
    return np.asarray(dead_s * (1.0 - np.exp(-lam)) + board_s * lam)


def simulate(day: SimDay, strategy: str, params: RouteParams, pax: PassengerArrivals, *,
             board_s: float = 3.0, dead_s: float = 5.0) -> SimResult:
    """Replay ``day`` under a holding ``strategy`` (one of `STRATEGIES`).

    Parameters
    ----------
    day : SimDay
        Trips, running times and control stops.
    strategy : str
        ``none``, ``schedule`` or ``headway``.
    params : RouteParams
        Per-route holding parameters (the scheduled headway also starts each stop's
        passenger queue: the first bus finds one headway's arrivals).
    pax : PassengerArrivals
        Passenger arrivals per stop key.
    board_s, dead_s : float
        Boarding time per passenger and dead time per served stop (s).

    Returns
    -------
    SimResult
        Arrivals, departures, holds and boardings per row.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    n = len(day.stop_key)
    ptr, key, sched = day.trip_ptr, day.stop_key, day.sched_s
    last = day.last_row
    route_h = np.nan_to_num(params.headway_s[day.row_route], nan=FIRST_QUEUE_S)
    cumprof = _trip_cumsum(day.profile_s, ptr)
    arr, dep, hold = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    boardings, aboard = np.zeros(n, dtype=np.int64), np.zeros(n)
    last_dep = np.full(int(key.max()) + 1 if n else 0, np.nan)
    pos_row = np.full(day.n_trips, -1, dtype=np.int64)  # trip's last processed row
    at_key = _rows_by_key(key, sched)

    has_prev = np.zeros(day.n_trips, dtype=bool)
    has_prev[day.trip_next[day.trip_next >= 0]] = True
    heap: list[tuple[float, int, int]] = [(float(day.start_s[j]), int(j), int(ptr[j]))
                                          for j in np.flatnonzero(~has_prev)]
    heapq.heapify(heap)
    while heap:
        t, j, i = heapq.heappop(heap)
        c = int(key[i])
        arr[i] = t
        pos_row[j] = i
        if last[i]:
            dep[i] = t
            nxt = int(day.trip_next[j])
            if nxt >= 0:
                slack = max(0.0, float(day.start_s[nxt] - day.end_s[j]))
                shift = max(0.0, t - float(day.end_s[j]) - slack)
                heapq.heappush(heap, (float(day.start_s[nxt]) + shift, nxt, int(ptr[nxt])))
            continue
        prev = last_dep[c] if np.isfinite(last_dep[c]) else t - route_h[i]
        ready = t
        if i != ptr[j]:
            waiting, _ = pax.board(c, prev, t, t)
            ready = t + (dead_s if waiting else 0.0) + board_s * waiting + float(day.extra_dwell_s[i])
            if strategy == "none":
                ready += float(day.wait_s[i])
        h = 0.0
        if day.control[i] and strategy == "schedule":
            h = float(schedule_holds(ready, sched[i]))
        elif day.control[i] and strategy == "headway":
            h = _headway_hold(day, params, i, j, t, ready, last_dep[c], at_key, pos_row, dep, cumprof)
        hold[i] = h
        dep[i] = ready + h
        boardings[i], aboard[i] = pax.board(c, prev, dep[i], t)
        last_dep[c] = dep[i] if not np.isfinite(last_dep[c]) else max(last_dep[c], dep[i])
        heapq.heappush(heap, (float(dep[i] + day.run_s[i]), j, i + 1))
    return SimResult(arr, dep, hold, boardings, aboard)


def _trip_cumsum(values: FloatArray, ptr: IntArray) -> FloatArray:
    """Per-trip cumulative sum of ``values`` shifted by one row (0 on each trip's first row)."""
    c = np.r_[0.0, np.cumsum(values)]
    first = np.repeat(ptr[:-1], np.diff(ptr))
    return np.asarray(c[:-1] - c[first])


def _rows_by_key(key: IntArray, sched: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
    """Rows sorted by (key, scheduled time), each key's offset, and each row's position."""
    order = np.lexsort((sched, key)).astype(np.int64)
    k_sorted = key[order]
    starts = np.searchsorted(k_sorted, np.arange(int(key.max()) + 2 if len(key) else 1))
    pos = np.empty(len(key), dtype=np.int64)
    pos[order] = np.arange(len(key))
    return order, starts.astype(np.int64), pos


def _headway_hold(day: SimDay, params: RouteParams, i: int, j: int, now: float, ready: float, last_dep: float,
                  at_key: tuple[IntArray, IntArray, IntArray], pos_row: IntArray, dep: FloatArray,
                  cumprof: FloatArray) -> float:
    """Hold of trip ``j`` at row ``i`` by `telematics.holding.advise` on the controller's predictions."""
    order, starts, pos = at_key
    c = int(day.stop_key[i])
    lo, hi = int(starts[c]), int(starts[c + 1])
    p = int(pos[i])
    cand = order[max(lo, p - FOLLOWER_WINDOW): min(hi, p + FOLLOWER_WINDOW + 1)]
    cand = cand[(cand != i) & np.isnan(dep[cand])]
    trips = day.row_trip[cand] if len(cand) else np.zeros(0, dtype=np.int64)
    preds = []
    for r, tr in zip(cand.tolist(), trips.tolist(), strict=True):
        at = int(pos_row[tr])
        if at >= 0:  # started: from its last stop (left, or leaving at dep)
            base = dep[at] if np.isfinite(dep[at]) else now
            pred = base + cumprof[r] - cumprof[at]
        else:
            first = int(day.trip_ptr[tr])
            pred = max(now, float(day.sched_s[first])) + cumprof[r] - cumprof[first]
        preds.append(max(pred, now))
    route = int(day.trip_route[j])
    rows = np.r_[i, cand]
    predicted = np.r_[ready, preds]
    holds = advise(np.full(len(rows), c), np.full(len(rows), route), predicted, day.sched_s[rows],
                   np.arange(len(rows)) == 0, np.full(len(rows), last_dep), params,
                   day.origin[rows])
    return float(holds[0])


def score(day: SimDay, result: SimResult, params: RouteParams) -> pd.DataFrame:
    """Per-route indicators of one simulated day.

    Headways are the gaps between consecutive departures (s; arrivals at a trip's last row)
    at each (route, stop); ``ewt_s`` (excess wait time, s) and ``headway_cv`` are
    `telematics.kpi.headway_regularity`'s against the timetable of the same rows, for every
    route (``frequent`` says which are frequent). ``bunching`` counts headways below
    `BUNCHED_SHARE` of the route's scheduled headway; ``holds`` counts holds of 1 s or more
    and ``hold_s`` sums them. In-vehicle time: a boarding passenger rides to a destination
    drawn uniformly among the trip's later rows, so ``ivt_s`` (s, per passenger) is the
    expected time from boarding (the bus's arrival, or the passenger's if later) to arriving
    there; ``passengers`` counts boardings.

    Returns
    -------
    DataFrame
        Indexed by route code: ``frequent, ewt_s, headway_cv, bunching, holds, hold_s,
        passengers, ivt_s``.
    """
    route = day.row_route
    passing = np.where(day.last_row, result.arrival_s, result.departure_s)
    hw = _regularity(route, day.stop_key, passing, day.sched_s)
    # expected ride: mean arrival over the later rows of the trip minus the departure
    ptr = day.trip_ptr
    c = np.r_[0.0, np.cumsum(np.nan_to_num(result.arrival_s))]
    end = np.repeat(ptr[1:], np.diff(ptr))
    idx = np.arange(len(route))
    later = end - idx - 1
    mean_later = (c[end] - c[idx + 1]) / np.maximum(later, 1)
    ride = np.where(later > 0, mean_later - result.departure_s, 0.0)
    ivt = result.boardings * ride + result.aboard_before_s
    sched_h = params.headway_s[route]
    bunched = _bunching(route, day.stop_key, passing, sched_h)
    frame = pd.DataFrame({"route": route, "ivt": ivt, "pax": result.boardings, "bunched": bunched,
                          "held": result.hold_s >= 1.0, "hold_s": result.hold_s})
    g = frame.groupby("route")
    out = pd.DataFrame({"frequent": params.frequent[g.size().index.to_numpy()],
                        "bunching": g["bunched"].sum(), "holds": g["held"].sum(), "hold_s": g["hold_s"].sum(),
                        "passengers": g["pax"].sum(), "ivt_s": g["ivt"].sum() / g["pax"].sum().clip(lower=1)})
    return out.join(hw, how="left")


def _regularity(route: IntArray, key: IntArray, passing: FloatArray, sched: FloatArray) -> pd.DataFrame:
    """``ewt_s, headway_cv`` per route code by `telematics.kpi.headway_regularity` (every route)."""
    ok = np.isfinite(passing) & np.isfinite(sched)
    actual = pd.DataFrame({"route_id": route[ok], "stop_id": key[ok], "time_s": passing[ok]})
    timetable = pd.DataFrame({"route_id": route[ok], "stop_id": key[ok], "time_s": sched[ok]})
    hw = headway_regularity(actual, timetable, frequent_headway_s=np.inf)
    return hw.set_index("route_id")[["ewt_s", "headway_cv"]].astype(np.float64)


def recorded_cv(day: SimDay, passing_s: FloatArray) -> pd.Series:
    """Headway CV per route code on the rows with a recorded passing, of ``passing_s``
    (the recording itself or a simulation of it): the like-for-like reproduction check."""
    ok = np.isfinite(day.recorded_s)
    route = day.row_route
    return _regularity(route[ok], day.stop_key[ok], passing_s[ok], day.sched_s[ok])["headway_cv"]


def _bunching(route: IntArray, key: IntArray, passing: FloatArray, sched_h: FloatArray) -> BoolArray:
    """Rows whose passing follows the previous one at the same stop key by less than
    `BUNCHED_SHARE` of the scheduled headway."""
    order = np.lexsort((passing, key))
    k, t = key[order], passing[order]
    same = np.r_[False, k[1:] == k[:-1]]
    gap = np.r_[np.inf, np.diff(t)]
    out = np.zeros(len(key), dtype=bool)
    out[order] = same & (gap < BUNCHED_SHARE * sched_h[order])
    return out

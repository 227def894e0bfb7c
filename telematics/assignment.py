"""Trip assignment: which trip of the service day a vehicle is running.

`TripAssigner` projects every ping onto every path in use that day (vectorised per
vehicle and path) and derives, per ping and candidate trip, the offset from the path,
the schedule deviation at the projected position and the heading mismatch. A causal
forward pass over the day's trips (one cost vector per vehicle, pings replayed in time
order across the fleet by `TripAssigner.assign_fleet`) then picks each ping's trip:
a vehicle keeps its block (changing block costs far more than moving on to the block's
next trip; without blocks, leaving a trip whose shape the vehicle is still on costs more than
leaving one it no longer fits, `TripAssigner.leave_costs`), lateness costs less than
earliness (buses run late, rarely early; less rarely on a trip's last quarter, ``END_SHARE``, where
schedules pad the run to the terminal: ``END_EARLY_SCALE_S``) except for a bus still at a trip's first stop well
after the departure although it was there before it (`first_stop_since`: it would have left on
time, so it runs another trip), waiting on a trip's last stretch favours the
block's next trip, and a finished trip no longer fits. Since one block is run by one
vehicle, each ping's choice is the vehicle's share of the least-cost assignment of blocks
to all active vehicles (Hungarian algorithm over their accumulated costs), which separates
vehicles a few minutes off schedule on close headways. A ping's costs count by the time since the vehicle's previous ping
(`evidence_weights`: in full from ``EVIDENCE_INTERVAL_S``), so the evidence a vehicle
accumulates per minute, and with it when it changes trip, does not depend on how often the
feed reports. A reported trip is
used when plausible; a vehicle that has not moved yet is not assigned unless it is seen on a
trip's path away from both terminals and at no trip's first or last stop (in service, stopped at
a stop or a light), but while it waits at
a trip's first stop, at most ``READY_S`` before the departure, it takes part in the joint
assignment (it is about to run a block, which no moving vehicle should be given; it holds one of
those blocks, no other: `TripAssigner.unit_costs`); after a silence
longer than ``stale_after_s`` the vehicle is stale and its assignment is inferred anew. Where no
trip fits, a vehicle keeps the one it has: waiting at the last stop of the trip it finished (until
the block's next trip fits), or a little off its trip's path (up to ``KEEP_FACTOR`` times the
offset a trip is chosen at; a vehicle first seen there is given none).

Degraded feeds: from paths made of straight lines between stops (no ``shapes.txt``) the offset
is the detour a ping implies (`telematics.matching.detour_offsets`: a road bends away from the
straight line more the farther apart its stops are), tolerated up to ``UNSHAPED_TOLERANCE``
times the offsets from a shape; without a reported bearing, moving backwards
along a trip's path between two pings costs as a heading 90 degrees off. Day-aware: the
candidates are (trip, service day) pairs, so the previous day's trips past 24:00 and the
next day's compete in one pass across midnight
(`telematics.position_assignment.assign_positions`). For stored days,
`TripAssigner.assign_retrospective` explains each ping by the vehicle's whole history
(Viterbi path within the blocks the causal joint pass gave it, less any another vehicle was
given for more pings over the same span).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import linear_sum_assignment

from telematics.gtfs import Feed, TripPaths, service_ids_on
from telematics.matching import Polyline, detour_offsets, project_points

OFF_COST = 12.0  # cost of a ping for a trip it does not fit
SWITCH_COST = 1000.0  # cost of changing to another block (a vehicle keeps its block)
LOOSE_SWITCH_COST = 12.0  # cost of changing to a trip without a block
LEAVE_FITTING_COST = 24.0  # added to changing trip while its trip's shape still fits (no mid-trip route change)
BLOCK_SWITCH_COST = 4.0  # cost of moving on to a later trip of the same block
FINISHED_M = 60.0  # a trip is finished this close (m) to its last stop (GPS error and terminal stop placement)
LATE_SCALE_S = 480.0  # lateness (s) costing one unit
ENDING_COST = 1.0  # cost per ping of a trip whose last stretch the vehicle is on
ORIGIN_OFFSET_SCALE_M = 60.0  # offset (m) costing one unit at a trip's origin
EARLY_SCALE_S = 120.0  # earliness (s) costing one unit away from the origin
END_EARLY_SCALE_S = 180.0  # earliness (s) costing one unit on a trip's last stretch
END_SHARE = 0.75  # a trip's last stretch begins at this share of its path (schedules pad the run to the terminal)
TAKEN_COST = 1e6  # cost of a block another vehicle holds by its reported trip
WAITING_ELSEWHERE_COST = 1e6  # cost to a vehicle waiting to run a trip of holding another block
FAR_M = 600.0  # no offset beyond this (m) lets a ping fit a trip or changes its cost on a shape (the floor of `_reach`)
UNSHAPED_TOLERANCE = 3.0  # offsets tolerated from a path made of straight lines between stops (times those from a shape)
REVERSE_COST = 4.0  # moving backwards along a trip's path without a reported bearing (as a heading 90 deg off)
REVERSE_MIN_M = 60.0  # a move this long (m) between two pings tells a direction (GPS noise is far smaller)
REVERSE_SHARE = 0.5  # backwards by this share of the move (m/m) is the wrong way
READY_ALONG_M = 100.0  # this close (m along the path) to a trip's start a vehicle is at its first stop
KEEP_FACTOR = 2.0  # a vehicle keeps its trip up to this many times the offset (m) a trip is chosen at
EVIDENCE_INTERVAL_S = 30.0  # a ping this long (s) after the vehicle's previous one counts in full; closer ones in proportion
READY_S = 900.0  # a vehicle waiting at a trip's first stop up to this long (s) before its departure is about to run it
LAYOVER_GRACE_S = 120.0  # a bus that waited at its trip's first stop through the departure leaves within this long (s)

__all__ = ["AssignmentConfig", "PingCosts", "TripAssigner", "evidence_weights", "first_stop_since", "is_stale",
           "leave_scales"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AssignmentConfig:
    """Thresholds of trip assignment.

    Attributes
    ----------
    max_offset_m : float
        A trip is plausible only within this distance of its path (m).
    max_early_s, max_late_s : float
        Plausible schedule deviation at the projected position (s early / late).
    min_move_m : float
        A vehicle is not assigned before it has moved this far from its first ping (m).
    stale_after_s : float
        Silence (s) after which a vehicle is stale and its assignment dropped.
    end_margin_m : float
        Within this distance of the path's start (m) a vehicle is at the trip's origin,
        where waiting early for the departure is normal.
    origin_offset_m : float
        Largest distance from the path (m) at the origin, and at the end of a finished trip
        (layover spots lie off the path).
    """

    max_offset_m: float = 60.0
    max_early_s: float = 600.0
    max_late_s: float = 2400.0
    min_move_m: float = 50.0
    stale_after_s: float = 600.0
    end_margin_m: float = 700.0
    origin_offset_m: float = 120.0


class PingCosts(NamedTuple):
    """Per ping (rows) and candidate trip (columns) of one vehicle (`TripAssigner._costs`).

    ``cost``: the step cost without the delay term; ``delay``: schedule deviation (s, 1e6
    where the trip does not run then); ``early_scale``: earliness (s) costing one unit;
    ``plausible``: the trip fits the ping; ``started`` (per ping): the vehicle has moved
    ``min_move_m`` since its first ping or has been seen on a trip's path away from both its
    terminals (``end_margin_m`` from each) and at no trip's first or last stop (in service, if
    only stopped at a stop or a light); ``along``: distance along the trip's path (m);
    ``ready``: the vehicle waits at the trip's first stop, at most ``READY_S`` before its
    departure (a vehicle that has not moved yet then holds a block in the joint assignment);
    ``reportable``: the trip may be given for the ping: it fits, or the vehicle waits at its
    last stop having finished it (the trip a vehicle ends at a terminal stays its own until the
    block's next trip fits); ``keeps``: the trip may stay the vehicle's if it was already, though
    it does not fit: within ``KEEP_FACTOR`` times the offset a trip is chosen at, on time as
    plausible (a bus on a loop a path without a shape cuts, or off it for a moment);
    ``first_since``: since when (epoch s) the vehicle has been at the trip's first stop (NaN
    where it is not there, `first_stop_since`).
    """

    cost: FloatArray
    delay: FloatArray
    early_scale: FloatArray
    plausible: npt.NDArray[np.bool_]
    started: npt.NDArray[np.bool_]
    along: FloatArray
    ready: npt.NDArray[np.bool_]
    reportable: npt.NDArray[np.bool_]
    keeps: npt.NDArray[np.bool_]
    first_since: FloatArray


def is_stale(last_seen_s: npt.ArrayLike, now_s: float, stale_after_s: float) -> npt.NDArray[np.bool_]:
    """True where a vehicle's last ping (epoch s) is older than ``stale_after_s`` at ``now_s``."""
    return np.asarray(now_s - np.asarray(last_seen_s, dtype=np.float64) > stale_after_s)


def evidence_weights(times_s: npt.ArrayLike, stale_after_s: float) -> FloatArray:
    """How much each of one vehicle's pings (sorted times, epoch s) counts in trip assignment.

    A ping ``EVIDENCE_INTERVAL_S`` or more after the previous one (or the first, or the first
    after a silence longer than ``stale_after_s``) counts 1; a closer one the share of that
    interval it follows. Consecutive positions of one vehicle say nearly the same thing, so
    a feed reporting every 10 s must not accumulate three times the evidence of one reporting
    every 30 s against the fixed cost of changing trips (measured on the simulated Cairns
    weekday: live assignment with ids hidden 0.968 at 30 s, 0.959 at 17 s, 0.945 at 10 s
    when every ping counted 1). Pings farther apart are not counted more: the costs were set
    at 30 s and hold up to 120 s.
    """
    t = np.asarray(times_s, dtype=np.float64)
    gap = np.diff(t, prepend=-np.inf)
    return np.where(gap > stale_after_s, 1.0, np.clip(gap / EVIDENCE_INTERVAL_S, 0.0, 1.0))


def first_stop_since(times_s: npt.ArrayLike, at_first: npt.ArrayLike, stale_after_s: float,
                     previous: tuple[float, FloatArray] | None = None) -> FloatArray:
    """Since when (epoch s) the vehicle has been at each trip's first stop, per ping: the time
    of the first ping of the run of pings there that ends at it (NaN where it is not there; a
    silence longer than ``stale_after_s``, s, ends a run). GPS noise at a stand does not end
    a run, as long as the fixes stay at the stop.

    Parameters
    ----------
    times_s : array_like, shape (n,)
        One vehicle's ping times (epoch s), increasing.
    at_first : array_like of bool, shape (n, m)
        Whether each ping is at each trip's first stop.
    stale_after_s : float
        A gap longer than this (s) starts a new run.
    previous : tuple, optional
        The ping before the first: its time (epoch s) and its values, shape (m,).

    Returns
    -------
    ndarray, shape (n, m)
    """
    t = np.asarray(times_s, dtype=np.float64)
    at = np.asarray(at_first, dtype=bool)
    if len(t) == 0:
        return np.zeros(at.shape)
    gap = np.r_[np.inf, np.diff(t)]
    before = np.zeros(at.shape[1], dtype=bool)
    if previous is not None:
        gap[0] = t[0] - previous[0]
        before = np.isfinite(np.asarray(previous[1], dtype=np.float64))
    was = np.vstack([before[None, :], at[:-1]]) & (gap <= stale_after_s)[:, None]
    begins = at & ~was
    first = np.maximum.accumulate(np.where(begins, np.arange(len(t))[:, None], -1), axis=0)
    since = np.where(first >= 0, t[np.maximum(first, 0)], np.nan)
    if previous is not None:  # runs that began before these pings
        since = np.where(first < 0, np.asarray(previous[1], dtype=np.float64)[None, :], since)
    return np.where(at, since, np.nan)


def leave_scales(times_s: npt.ArrayLike, stale_after_s: float) -> FloatArray:
    """Share of `TripAssigner.leave_costs` charged at each of one vehicle's pings (sorted times,
    epoch s): 1 up to ``EVIDENCE_INTERVAL_S`` after the previous ping (and at the first, or the
    first after a silence longer than ``stale_after_s``), ``EVIDENCE_INTERVAL_S / gap`` beyond.

    A ping counts at most 1 (`evidence_weights`), so the contrary evidence that overcomes a fixed
    cost takes longer to gather the sparser the pings: scaled so, leaving a trip that still fits
    asks for about as many minutes of contrary evidence at 120 s as at 30 s.
    """
    t = np.asarray(times_s, dtype=np.float64)
    gap = np.diff(t, prepend=-np.inf)
    with np.errstate(divide="ignore"):
        return np.where(gap > stale_after_s, 1.0, np.clip(EVIDENCE_INTERVAL_S / gap, 0.0, 1.0))


class TripAssigner:
    """Assigns trips of one service day (and the neighbouring days' trips running then) to vehicles.

    Parameters
    ----------
    feed : Feed
        The schedule.
    paths : TripPaths
        Paths of its trips (`telematics.gtfs.trip_paths`).
    day : datetime.date
        The service day.
    day_start_s : float
        Epoch seconds of the service day's 00:00:00 (GTFS time origin).
    config : AssignmentConfig
        Thresholds.
    other_days : sequence of (date, float)
        Other service days and their starts (epoch s) whose trips are candidates too when
        they run within ``span_s`` (give or take ``max_late_s``): the previous day's trips
        past 24:00, the next day's. A trip id that runs on several of these days is one
        candidate per day; its blocks are those of its day.
    span_s : (float, float), optional
        Time span (s on ``day``'s clock) of the pings to assign; by default from the day's
        00:00 to its last scheduled arrival.

    Attributes
    ----------
    trip_ids : ndarray of str
        The candidates' trip ids, by scheduled start (the ``day``'s first when only one day).
    service_day : ndarray of object
        The service date of each candidate.
    day_starts_s : ndarray
        Epoch s of each candidate's service day start.
    block : ndarray of str
        Block of each candidate (``block@YYYYMMDD`` for another day's).
    start_s, end_s : ndarray
        Scheduled first departure and last arrival on ``day``'s clock (s after its start).
    """

    def __init__(self, feed: Feed, paths: TripPaths, day: dt.date, day_start_s: float,
                 config: AssignmentConfig | None = None, other_days: Sequence[tuple[dt.date, float]] = (),
                 span_s: tuple[float, float] | None = None):
        self.config = config or AssignmentConfig()
        self.paths = paths
        self.day_start_s = day_start_s
        parts = [self._day_trips(feed, d, start - day_start_s, d != day)
                 for d, start in [(day, day_start_s), *other_days]]
        main = parts[0]
        if span_s is None:  # from midnight (the previous day's late trips) to the day's last arrival
            span_s = (min(0.0, float(main["first"].min())), float(main["last"].max())) if len(main) else (0.0, 0.0)
        lo, hi = span_s[0] - self.config.max_late_s, span_s[1] + self.config.max_late_s
        frame = pd.concat([main, *(p[(p["last"] >= lo) & (p["first"] <= hi)] for p in parts[1:])],
                          ignore_index=True)
        frame = frame.iloc[np.argsort(frame["first"].to_numpy(), kind="stable")].reset_index(drop=True)
        self.trip_ids = frame["trip_id"].to_numpy(dtype=str)
        self.block = frame["block_id"].to_numpy(dtype=str)
        self.route = frame["route_id"].to_numpy(dtype=str)
        self.service_day = frame["day"].to_numpy(dtype=object)
        self.day_starts_s = day_start_s + frame["offset"].to_numpy(dtype=np.float64)
        self.start_s = frame["first"].to_numpy(dtype=np.float64)
        self.path_key = np.array([paths.trip_path[t] for t in self.trip_ids], dtype=str)
        # straight lines between stops cut the road's corners (a road network's path does not)
        self._unshaped = np.array([paths.source.get(k, "shape") in ("straight", "road+straight")
                                   for k in self.path_key.tolist()], dtype=bool)
        self._leave_cost = np.where(self._unshaped, 0.0, LEAVE_FITTING_COST)
        self._reaches: dict[str, tuple[float, float, float, float]] = {}  # per path: `_reach`
        used = feed.stop_times[feed.stop_times["trip_id"].isin(self.trip_ids)]
        times: pd.Series = used.groupby("trip_id", sort=False)["arrival_time"].agg(list)
        self._sched = [np.asarray(times[t], dtype=np.float64) + off
                       for t, off in zip(self.trip_ids.tolist(), frame["offset"].tolist(), strict=True)]
        self.end_s = np.array([s[-1] for s in self._sched], dtype=np.float64)
        self.last_stop_m = np.array([paths.stop_dist_m[t][-1] for t in self.trip_ids], dtype=np.float64)
        self._index: dict[str, int] = {}  # reported trip id -> its candidate, the day's own first
        for c in np.argsort(frame["offset"].abs().to_numpy(), kind="stable").tolist():
            self._index.setdefault(str(self.trip_ids[c]), int(c))
        # per path: trips grouped by their stop positions, with their schedules as one matrix
        grouped: dict[tuple[str, bytes], list[int]] = {}
        for c, trip in enumerate(self.trip_ids.tolist()):
            dist = np.asarray(paths.stop_dist_m[trip], dtype=np.float64)
            grouped.setdefault((str(self.path_key[c]), dist.tobytes() + self._sched[c].size.to_bytes(4, "little")),
                               []).append(c)
        self._groups: dict[str, list[tuple[npt.NDArray[np.int64], FloatArray, FloatArray]]] = {}
        for (key, _), members in grouped.items():
            trip = str(self.trip_ids[members[0]])
            self._groups.setdefault(key, []).append((
                np.array(members, dtype=np.int64), np.asarray(paths.stop_dist_m[trip], dtype=np.float64),
                np.vstack([self._sched[c] for c in members])))

    @staticmethod
    def _day_trips(feed: Feed, day: dt.date, offset_s: float, qualify: bool) -> pd.DataFrame:
        """The trips of service day ``day``: id, block (``@date``-qualified when ``qualify``), route,
        first departure and last arrival moved by ``offset_s``, the day and the offset."""
        services = service_ids_on(feed, day)
        trips = feed.trips[feed.trips["service_id"].isin(list(services))]
        st = feed.stop_times[feed.stop_times["trip_id"].isin(trips["trip_id"])]
        span = st.groupby("trip_id", sort=False).agg(first=("departure_time", "min"), last=("arrival_time", "max"))
        info = trips.set_index("trip_id").loc[span.index]
        block = info["block_id"].to_numpy(dtype=str)
        if qualify:
            block = np.where(block != "", np.char.add(block, f"@{day:%Y%m%d}"), block)
        return pd.DataFrame({"trip_id": span.index.to_numpy(dtype=str), "block_id": block,
                             "route_id": info["route_id"].to_numpy(dtype=str),
                             "first": span["first"].to_numpy(dtype=np.float64) + offset_s,
                             "last": span["last"].to_numpy(dtype=np.float64) + offset_s,
                             "day": [day] * len(span), "offset": np.full(len(span), offset_s)})

    def _features(self, t: FloatArray, xy: FloatArray, bearing: FloatArray
                  ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per ping x trip: offset (m), along (m), delay (s), heading mismatch (deg, NaN unknown)."""
        m, n = len(t), len(self.trip_ids)
        offset = np.full((m, n), np.inf)
        along = np.zeros((m, n))
        delay = np.full((m, n), np.inf)
        heading = np.full((m, n), np.nan)
        clock = t - self.day_start_s
        for key in np.unique(self.path_key):
            cols = np.flatnonzero(self.path_key == key)
            window = (clock[:, None] >= self.start_s[cols][None, :] - self.config.max_late_s) & (
                clock[:, None] <= self.end_s[cols][None, :] + self.config.max_late_s)
            rows = np.flatnonzero(window.any(axis=1))
            line = self.paths.paths[str(key)]
            # pings too far from the path to fit any of its trips: as pings outside their hours
            x_lo, y_lo, x_hi, y_hi = self._reach(str(key), line, bool(self._unshaped[cols[0]]))
            rows = rows[(xy[rows, 0] >= x_lo) & (xy[rows, 0] <= x_hi) & (xy[rows, 1] >= y_lo) & (xy[rows, 1] <= y_hi)]
            if len(rows) == 0:
                continue
            a, off = project_points(line, xy[rows])
            if self._unshaped[cols[0]]:  # straight lines between stops: how far off the way between them
                off = detour_offsets(line, xy[rows])
            offset[np.ix_(rows, cols)] = off[:, None]
            along[np.ix_(rows, cols)] = a[:, None]
            head = line.heading_at(a)
            diff = np.abs((bearing[rows] - head + 180.0) % 360.0 - 180.0)
            heading[np.ix_(rows, cols)] = diff[:, None]
            for group, dist, sched in self._groups[str(key)]:  # trips with the same stops: one interpolation
                f = np.interp(a, dist, np.arange(len(dist), dtype=np.float64))
                i0 = np.minimum(np.floor(f).astype(np.int64), len(dist) - 1)
                i1 = np.minimum(i0 + 1, len(dist) - 1)
                w = f - i0
                sched_at = sched[:, i0] * (1.0 - w) + sched[:, i1] * w
                delay[np.ix_(rows, group)] = clock[rows][:, None] - sched_at.T
        return offset, along, delay, heading

    def _reach(self, key: str, line: Polyline, unshaped: bool) -> tuple[float, float, float, float]:
        """The box (m: x, y low, x, y high) outside which a point lies more than ``F`` off the path
        ``key``, ``F`` being ``FAR_M`` or, with offset thresholds wider than the defaults, the widest
        offset that counts: the path's bounding box widened by ``F``, or where it is ``unshaped``
        (straight lines between stops, whose offsets are detours, `telematics.matching.detour_offsets`)
        by the half-width of the ellipse of detour ``F`` around its longest chord,
        ``sqrt(F * L + F ** 2)``."""
        if key not in self._reaches:
            cfg = self.config  # thresholds set wider than the defaults widen the reach with them
            far = max(FAR_M, UNSHAPED_TOLERANCE * max(KEEP_FACTOR * cfg.max_offset_m, KEEP_FACTOR * cfg.origin_offset_m,
                                                      3.0 * ORIGIN_OFFSET_SCALE_M))
            chord = float(np.hypot(*np.diff(line.xy, axis=0).T).max()) if len(line.xy) > 1 else 0.0
            margin = math.sqrt(far * chord + far**2) if unshaped else far
            lo, hi = line.xy.min(axis=0) - margin, line.xy.max(axis=0) + margin
            self._reaches[key] = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
        return self._reaches[key]

    def _costs(self, t: FloatArray, p: FloatArray, b: FloatArray,
               previous: tuple[FloatArray, FloatArray] | None = None,
               first_since: tuple[float, FloatArray] | None = None) -> PingCosts:
        """The `PingCosts` of one vehicle's pings ``t`` (epoch s) at ``p`` (m) with bearings
        ``b`` (degrees, NaN unknown). ``previous`` is the vehicle's ping before ``t[0]``: its
        position (2,) and distances along (n_trips,); ``first_since`` its time (epoch s) and
        since when it had been at each trip's first stop then (`first_stop_since`)."""
        cfg = self.config
        offset, along, delay, heading = self._features(t, p, b)
        loose = np.where(self._unshaped, UNSHAPED_TOLERANCE, 1.0)[None, :]
        on_time = (delay >= -cfg.max_early_s) & (delay <= cfg.max_late_s)
        plausible = (offset <= cfg.max_offset_m * loose) & on_time
        at_origin = along < cfg.end_margin_m
        # layover at the origin terminal: being early there is normal
        at_origin_on_time = (delay >= -2 * cfg.max_late_s) & (delay <= cfg.max_late_s)
        plausible |= (offset <= cfg.origin_offset_m * loose) & at_origin & at_origin_on_time
        early_scale = np.where(at_origin, 900.0, np.where(along >= END_SHARE * self.last_stop_m[None, :],
                                                           END_EARLY_SCALE_S, EARLY_SCALE_S))
        cost = np.minimum(offset / (np.where(at_origin, ORIGIN_OFFSET_SCALE_M, 30.0) * loose), 3.0) ** 2
        cost += np.minimum(np.nan_to_num(heading / 45.0), 3.0) ** 2
        # a bus at a trip's first stop since before its departure leaves on time: still there well
        # after it, it is not on that trip (late arrivals leave late, but they came late)
        at_first = (along <= READY_ALONG_M) & (offset <= cfg.origin_offset_m * loose)
        since = first_stop_since(t, at_first, cfg.stale_after_s, first_since)
        with np.errstate(invalid="ignore"):
            waited = at_first & (delay > LAYOVER_GRACE_S) & (since <= t[:, None] - delay)
        cost += np.where(waited, (delay - LAYOVER_GRACE_S) / EARLY_SCALE_S, 0.0)
        if len(t):  # no reported bearing: moving backwards along a trip's path is moving the wrong way
            prev_xy = np.vstack([np.full((1, 2), np.nan) if previous is None else previous[0][None, :], p[:-1]])
            prev_along = np.vstack([np.full((1, along.shape[1]), np.nan) if previous is None
                                    else previous[1][None, :], along[:-1]])
            step = np.hypot(*(p - prev_xy).T)
            step[1:][np.diff(t) > cfg.stale_after_s] = np.nan  # a silence: no direction across it
            with np.errstate(invalid="ignore"):
                backwards = (along - prev_along < -REVERSE_SHARE * step[:, None]) & (step >= REVERSE_MIN_M)[:, None]
            cost += np.where(np.isnan(b)[:, None] & backwards, REVERSE_COST, 0.0)
        finished = along >= self.last_stop_m[None, :] - FINISHED_M
        # waiting near a trip's end means the block's next trip is about to start
        cost += np.where(along >= self.last_stop_m[None, :] - cfg.end_margin_m, ENDING_COST, 0.0)
        at_terminal = (plausible & ((along <= READY_ALONG_M) | finished)).any(axis=1)  # a trip's first or last stop
        # at the end as at the origin, layover spots lie off the path (beyond its last stop a path of
        # straight lines cuts no corner: no looser there); on time as a plausible trip
        ended_here = finished & (offset <= cfg.origin_offset_m) & on_time
        # kept up to KEEP_FACTOR times the offset a trip is chosen at: at the origin, the layover's
        keep_m = KEEP_FACTOR * np.where(at_origin, cfg.origin_offset_m, cfg.max_offset_m) * loose
        keeps = (offset <= keep_m) & np.where(at_origin, at_origin_on_time, on_time) & ~finished
        plausible &= ~finished
        moved = np.hypot(*(p - p[0]).T) >= cfg.min_move_m if len(p) else np.zeros(0, bool)
        # seen on a trip's path away from both its terminals, and at no trip's first or last stop
        # (a terminal on another trip's way): in service, moving or not
        en_route = (plausible & (along >= cfg.end_margin_m)
                    & (along < self.last_stop_m[None, :] - cfg.end_margin_m)).any(axis=1) & ~at_terminal
        started = np.maximum.accumulate(moved | en_route) if len(p) else moved
        ready = plausible & at_first & (delay >= -READY_S)
        return PingCosts(cost, np.where(np.isfinite(delay), delay, 1e6), early_scale, plausible, started, along, ready,
                         plausible | ended_here, keeps, since)

    def _vehicle_costs(self, t: FloatArray, p: FloatArray, b: FloatArray, routes: npt.NDArray[np.str_]) -> PingCosts:
        """`_costs` of one vehicle's pings, where a ping reports a route the day's trips run
        restricted to that route's trips (a route they do not run is ignored)."""
        costs = self._costs(t, p, b)
        named = np.isin(routes, self.route)
        if named.any():
            same_route = self.route[None, :] == routes[named][:, None]
            for fits in (costs.plausible, costs.ready, costs.reportable, costs.keeps):
                fits[named] &= same_route
        return costs

    def assign_vehicle(self, times_s: npt.ArrayLike, xy: npt.ArrayLike,
                       bearing: npt.ArrayLike | None = None,
                       reported: npt.ArrayLike | None = None) -> npt.NDArray[np.str_]:
        """Trip of each ping of one vehicle (``""`` = unassigned), using only earlier pings.

        Parameters
        ----------
        times_s : array_like, shape (m,)
            Ping times (epoch s), increasing.
        xy : array_like, shape (m, 2)
            Positions in the paths' projection (m).
        bearing : array_like, shape (m,), optional
            Reported headings (degrees from north, NaN unknown).
        reported : array_like of str, shape (m,), optional
            Trip ids in the messages (``""`` when absent).
        """
        t = np.asarray(times_s, dtype=np.float64)
        return self.assign_fleet(np.zeros(len(t), dtype=np.int64), t, xy, bearing, reported)

    def assign_fleet(self, vehicle: npt.ArrayLike, times_s: npt.ArrayLike, xy: npt.ArrayLike,
                     bearing: npt.ArrayLike | None = None,
                     reported: npt.ArrayLike | None = None,
                     routes: npt.ArrayLike | None = None) -> npt.NDArray[np.str_]:
        """Trip of each ping of many vehicles, replayed in time order (causal).

        `assign_candidates`'s choices as trip ids (``""`` when unassigned).
        """
        chosen = self.assign_candidates(vehicle, times_s, xy, bearing, reported, routes)
        if len(self.trip_ids) == 0:
            return np.full(len(chosen), "", dtype=object).astype(str)
        return np.where(chosen >= 0, self.trip_ids[np.maximum(chosen, 0)], "").astype(str)

    def assign_candidates(self, vehicle: npt.ArrayLike, times_s: npt.ArrayLike, xy: npt.ArrayLike,
                          bearing: npt.ArrayLike | None = None,
                          reported: npt.ArrayLike | None = None,
                          routes: npt.ArrayLike | None = None) -> npt.NDArray[np.int64]:
        """Candidate (index into `trip_ids`, `service_day`) of each ping of many vehicles,
        replayed in time order (causal).

        Each vehicle runs a forward pass over the day's trips (changing block costs
        ``SWITCH_COST``, moving on to a later trip of the same block ``BLOCK_SWITCH_COST``);
        the chosen trip is the vehicle's in the joint least-cost assignment of blocks to
        the vehicles active at that moment, since one block is run by one vehicle.

        Parameters
        ----------
        vehicle : array_like, shape (m,)
            Vehicle id of each ping.
        times_s, xy, bearing, reported
            As in `assign_vehicle`, for all pings (any order).
        routes : array_like of str, shape (m,), optional
            Route ids in the messages (``""`` when absent): a ping reporting a route that
            the day's trips run fits only that route's trips (other route ids are ignored).

        Returns
        -------
        ndarray of int, shape (m,)
            Assigned candidate per ping, -1 when unassigned.
        """
        t = np.asarray(times_s, dtype=np.float64)
        p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        b = np.full(len(t), np.nan) if bearing is None else np.asarray(bearing, dtype=np.float64)
        rep = np.full(len(t), "", dtype=object) if reported is None else np.asarray(reported, object)
        route = np.full(len(t), "", dtype=str) if routes is None else np.asarray(routes, dtype=str)
        out = np.full(len(t), -1, dtype=np.int64)
        if len(self.trip_ids) == 0:  # a day without trips (a service listed in the calendar runs none)
            return out
        _, vid = np.unique(np.asarray(vehicle), return_inverse=True)
        per_vehicle = []
        for v in range(int(vid.max()) + 1 if len(vid) else 0):
            rows = np.flatnonzero(vid == v)
            rows = rows[np.argsort(t[rows], kind="stable")]
            per_vehicle.append((rows, self._vehicle_costs(t[rows], p[rows], b[rows], route[rows]),
                                evidence_weights(t[rows], self.config.stale_after_s),
                                leave_scales(t[rows], self.config.stale_after_s)))
        position = np.zeros(len(t), dtype=np.int64)
        for rows, _, _, _ in per_vehicle:
            position[rows] = np.arange(len(rows))
        block_order, _cuts, _has_block, unit_cuts, switch_cost = self.blocks()
        totals = np.zeros((len(per_vehicle), len(self.trip_ids)))
        unit_costs = np.zeros((len(per_vehicle), len(unit_cuts)))  # each vehicle's least total per unit
        last_seen = np.full(len(per_vehicle), -np.inf)
        is_active = np.zeros(len(per_vehicle), dtype=bool)
        given = np.full(len(per_vehicle), -1, dtype=np.int64)  # each vehicle's trip at its last ping
        cfg = self.config
        for row in np.argsort(t, kind="stable"):
            v = int(vid[row])
            i = int(position[row])
            rows, c, weights, scales = per_vehicle[v]
            total = totals[v]
            if i and t[row] - t[rows[i - 1]] > cfg.stale_after_s:
                total[:] = 0.0
                given[v] = -1
            r = self._index.get(str(rep[row]), -1)
            reported_ok = r >= 0 and bool(c.plausible[i, r])
            totals[v] = self._forward(total, c.cost[i], c.delay[i], c.early_scale[i], c.plausible[i],
                                      r if reported_ok else -1, switch_cost, block_order,
                                      float(weights[i]), float(scales[i]))
            unit_costs[v] = self.unit_costs(totals[v], block_order, unit_cuts, None if c.started[i] else c.ready[i])
            last_seen[v] = t[row]
            # in the joint assignment: moving, or waiting at a first stop before its departure (no
            # trip until it moves, but its block is not given to another vehicle)
            is_active[v] = bool(c.started[i] or c.ready[i].any())
            if reported_ok:
                chosen = r
            elif c.started[i]:
                unit = self._joint_choice(v, unit_costs, (t[row] - last_seen <= cfg.stale_after_s) & is_active)
                chosen = -1 if unit < 0 else self.unit_trip(self.unit_members(unit, block_order, unit_cuts),
                                                            totals[v], self.may_give(c.reportable[i], c.keeps[i],
                                                                                     int(given[v])))
            else:
                chosen = -1
            out[row] = given[v] = chosen
        return out

    def assign_retrospective(self, vehicle: npt.ArrayLike, times_s: npt.ArrayLike, xy: npt.ArrayLike,
                             bearing: npt.ArrayLike | None = None,
                             routes: npt.ArrayLike | None = None,
                             causal: npt.ArrayLike | None = None) -> npt.NDArray[np.int64]:
        """Candidate of each ping from each vehicle's whole history (Viterbi path), for stored days.

        The same costs and transitions as `assign_candidates`' forward pass, but each
        vehicle's pings between two silences longer than ``stale_after_s`` get the least-cost
        sequence of trips over all of them (backtracked), so a ping is explained by what
        came after it too: the first pings of a run, a wrong block taken on an ambiguous
        start. The joint assignment of blocks to vehicles comes from the causal pass: each
        stretch may use only the blocks (assignment units) the causal choices gave it, and
        of those not one that another vehicle was given for more pings over the stretch's
        span (`_own_units`).

        Parameters
        ----------
        vehicle, times_s, xy, bearing, routes
            As in `assign_candidates` (no reported trips).
        causal : array_like of int, shape (m,), optional
            `assign_candidates`' result for the same pings (computed when not given).

        Returns
        -------
        ndarray of int, shape (m,)
            Candidate per ping (index into `trip_ids`), -1 where none fits.
        """
        if causal is None:
            causal = self.assign_candidates(vehicle, times_s, xy, bearing, routes=routes)
        causal = np.asarray(causal, dtype=np.int64)
        t = np.asarray(times_s, dtype=np.float64)
        p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        b = np.full(len(t), np.nan) if bearing is None else np.asarray(bearing, dtype=np.float64)
        route = np.full(len(t), "", dtype=str) if routes is None else np.asarray(routes, dtype=str)
        out = np.full(len(t), -1, dtype=np.int64)
        if len(self.trip_ids) == 0 or len(t) == 0:
            return out
        block_order, _, _, unit_cuts, switch_cost = self.blocks()
        unit = np.empty(len(block_order), dtype=np.int64)  # assignment unit of each candidate
        unit[block_order] = np.cumsum(np.isin(np.arange(len(block_order)), unit_cuts)) - 1
        _, vid = np.unique(np.asarray(vehicle), return_inverse=True)
        for v in range(int(vid.max()) + 1):
            rows = np.flatnonzero(vid == v)
            rows = rows[np.argsort(t[rows], kind="stable")]
            c = self._vehicle_costs(t[rows], p[rows], b[rows], route[rows])
            cost, delay, early, plausible, reportable, keeps = (c.cost, c.delay, c.early_scale, c.plausible,
                                                                 c.reportable, c.keeps)
            gaps = np.flatnonzero(np.diff(t[rows]) > self.config.stale_after_s) + 1
            for lo, hi in zip(np.r_[0, gaps], np.r_[gaps, len(rows)], strict=True):
                given = causal[rows[lo:hi]]
                allowed = np.isin(unit, self._own_units(unit, given, vid, causal, t, t[rows[lo]], t[rows[hi - 1]], v))
                if not allowed.any():  # the causal pass never placed this stretch
                    continue
                keep = np.flatnonzero(allowed)  # solve over the allowed candidates only
                sub = np.full(len(allowed), -1, dtype=np.int64)
                sub[keep] = np.arange(len(keep))
                order = sub[block_order[allowed[block_order]]]
                blocks = self.block[keep][order]
                sub_cuts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
                path = keep[self._viterbi(cost[lo:hi][:, keep], delay[lo:hi][:, keep], early[lo:hi][:, keep],
                                          plausible[lo:hi][:, keep], switch_cost[keep], order, sub_cuts,
                                          blocks[sub_cuts] != "",
                                          evidence_weights(t[rows[lo:hi]], self.config.stale_after_s),
                                          self.leave_costs()[keep],
                                          leave_scales(t[rows[lo:hi]], self.config.stale_after_s))]
                at = np.arange(lo, hi)
                fits = _kept_runs(reportable[at, path], keeps[at, path], path)
                out[rows[lo:hi][fits]] = path[fits]
        return out

    @staticmethod
    def _own_units(unit: npt.NDArray[np.int64], given: npt.NDArray[np.int64], vid: npt.NDArray[np.int64],
                   causal: npt.NDArray[np.int64], t: FloatArray, t0: float, t1: float, v: int
                   ) -> npt.NDArray[np.int64]:
        """The assignment units a vehicle's stretch (``t0``-``t1``, epoch s) may use in the
        retrospective pass: those the causal pass gave it (``given``), except one another
        vehicle was given for more pings over the same span (a block it held only for a
        moment belongs to the other vehicle; taking it would make two vehicles run one block)."""
        mine = unit[given[given >= 0]]
        if not len(mine):
            return mine
        own_units, own_n = np.unique(mine, return_counts=True)
        span = (t >= t0) & (t <= t1) & (vid != v) & (causal >= 0)
        other_units = unit[causal[span]]
        other_vid = vid[span]
        keep = np.ones(len(own_units), dtype=bool)
        for k, u in enumerate(own_units):
            hit = other_units == u
            if hit.any() and np.bincount(other_vid[hit]).max() > own_n[k]:
                keep[k] = False
        return own_units[keep] if keep.any() else own_units[[int(np.argmax(own_n))]]

    def _viterbi(self, cost: FloatArray, delay: FloatArray, early: FloatArray, plausible: npt.NDArray[np.bool_],
                 switch_cost: FloatArray, block_order: npt.NDArray[np.int64], cuts: npt.NDArray[np.int64],
                 has_block: npt.NDArray[np.bool_], weight: FloatArray, leave_cost: FloatArray,
                 leave_scale: FloatArray) -> npt.NDArray[np.int64]:
        """Least-cost candidate sequence of one vehicle's pings (the `_forward` recursion, backtracked;
        ping ``i``'s costs count ``weight[i]`` times; leaving a candidate that still fits costs its
        ``leave_cost`` (`leave_costs`) times ``leave_scale[i]`` (`leave_scales`) more)."""
        m, n = cost.shape
        back = np.empty((m, n), dtype=np.int32)
        total = np.zeros(n)
        position = np.empty(n, dtype=np.int64)
        position[block_order] = np.arange(n)
        stride = np.arange(n)
        prefix_min = BlockPrefixMin(cuts, has_block, n)
        for i in range(m):
            step = cost[i] + np.where(delay[i] >= 0, delay[i] / LATE_SCALE_S, -delay[i] / early[i])
            step = np.where(plausible[i], np.minimum(step, OFF_COST), OFF_COST) * weight[i]
            best = int(np.argmin(total))
            switch = total[best] + switch_cost + (leave_cost[best] * leave_scale[i] if plausible[i, best] else 0.0)
            ordered = total[block_order]
            prefix = prefix_min(ordered)
            shifted = np.r_[np.inf, ordered[:-1]]
            shifted[cuts] = np.inf
            # the earlier trip of the block reaching the prefix minimum (ties: any is as good)
            hit = np.maximum.accumulate(np.where(shifted <= prefix + 1e-3, stride, 0))
            via_block = prefix[position] + BLOCK_SWITCH_COST
            from_block = block_order[np.maximum(hit[position] - 1, 0)]
            options = np.vstack([total, switch, via_block])
            choice = np.argmin(options, axis=0)
            back[i] = np.where(choice == 0, stride, np.where(choice == 1, best, from_block))
            total = options[choice, stride] + step
            total -= total.min()
        path = np.empty(m, dtype=np.int64)
        path[-1] = int(np.argmin(total))
        for i in range(m - 1, 0, -1):
            path[i - 1] = back[i, path[i]]
        return path

    def blocks(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_],
                              npt.NDArray[np.int64], FloatArray]:
        """Block structure of the day's trips: trip order by (block, start), first position of
        each block in it, whether it is a real block, first position of each assignment unit
        (a block, or a trip without one) and the cost of switching to each trip."""
        if len(self.trip_ids) == 0:
            none = np.zeros(0, dtype=np.int64)
            return none, none, np.zeros(0, dtype=bool), none, np.zeros(0)
        block_order = np.lexsort((self.start_s, self.block))
        block_sorted = self.block[block_order]
        cuts = np.flatnonzero(np.r_[True, block_sorted[1:] != block_sorted[:-1]])
        has_block = block_sorted[cuts] != ""
        # one vehicle runs one block: trips without a block are blocks of their own
        unit_sorted = np.cumsum(np.r_[True, (block_sorted[1:] != block_sorted[:-1])
                                      | (block_sorted[1:] == "")]) - 1
        unit_cuts = np.flatnonzero(np.r_[True, np.diff(unit_sorted) != 0])
        switch_cost = np.where(self.block != "", SWITCH_COST, LOOSE_SWITCH_COST)
        return block_order, cuts, has_block, unit_cuts, switch_cost

    @cached_property
    def _block_prefix(self) -> BlockPrefixMin:
        """`BlockPrefixMin` of the day's blocks."""
        _, cuts, has_block, _, _ = self.blocks()
        return BlockPrefixMin(cuts, has_block, len(self.trip_ids))

    def leave_costs(self) -> FloatArray:
        """What changing trip costs on top of the switch while the vehicle's trip still fits, per
        candidate it leaves: ``LEAVE_FITTING_COST`` on a shape (the bus is on that trip's road, and
        buses do not change route mid-trip: without it a trip the bus runs a little early lost a
        shared corridor to another route's trip it would run a little late, earliness costing more),
        0 on straight lines between stops (which loosely fit many trips' roads)."""
        return self._leave_cost

    def _forward(self, total: FloatArray, cost: FloatArray, delay: FloatArray, early_scale: FloatArray,
                 plausible: npt.NDArray[np.bool_], reported: int, switch_cost: FloatArray,
                 block_order: npt.NDArray[np.int64], weight: float = 1.0, leave_scale: float = 1.0) -> FloatArray:
        """One ping's step of a vehicle's forward pass: its accumulated cost per trip (regret);
        the ping's costs count ``weight`` times (`evidence_weights`), and leaving a trip that still
        fits costs `leave_costs` times ``leave_scale`` (`leave_scales`) more."""
        step = cost + np.where(delay >= 0, delay / LATE_SCALE_S, -delay / early_scale)
        step = np.where(plausible, np.minimum(step, OFF_COST), OFF_COST)
        if reported >= 0:
            step += OFF_COST
            step[reported] = 0.0
        step *= weight
        best = int(np.argmin(total))
        switch = total[best] + switch_cost + (self._leave_cost[best] * leave_scale if plausible[best] else 0.0)
        via_block = np.empty_like(total)
        via_block[block_order] = self._block_prefix(total[block_order]) + BLOCK_SWITCH_COST
        total = np.minimum(np.minimum(total, switch), via_block) + step
        return total - total.min()

    @staticmethod
    def unit_costs(total: FloatArray, block_order: npt.NDArray[np.int64], unit_cuts: npt.NDArray[np.int64],
                   waiting_for: npt.NDArray[np.bool_] | None = None) -> FloatArray:
        """A vehicle's cost of each assignment unit (`blocks`): the least accumulated cost
        (regret) ``total`` of the unit's trips. Kept per vehicle and renewed at its pings only,
        since a vehicle's totals change at its own pings alone. A vehicle that has not moved
        yet and waits at the first stop of the trips ``waiting_for`` (per trip, `PingCosts`'
        ``ready``) holds one of their blocks only: any other costs it ``WAITING_ELSEWHERE_COST``
        more (it is in the joint assignment to keep the block it is about to run from the moving
        vehicles, not to take one whose departure is far off)."""
        costs = np.minimum.reduceat(total[block_order], unit_cuts)
        if waiting_for is not None and waiting_for.any():
            costs += np.where(np.logical_or.reduceat(waiting_for[block_order], unit_cuts), 0.0, WAITING_ELSEWHERE_COST)
        return costs

    @staticmethod
    def unit_members(unit: int, block_order: npt.NDArray[np.int64], unit_cuts: npt.NDArray[np.int64]
                     ) -> npt.NDArray[np.int64]:
        """The candidates (trips) of one assignment unit (`blocks`)."""
        hi = unit_cuts[unit + 1] if unit + 1 < len(unit_cuts) else len(block_order)
        return block_order[unit_cuts[unit]:hi]

    @staticmethod
    def may_give(reportable: npt.NDArray[np.bool_], keeps: npt.NDArray[np.bool_], given: int
                 ) -> npt.NDArray[np.bool_]:
        """Per candidate, whether it may be given for a vehicle's ping: it is ``reportable``
        (`PingCosts`), or it is the trip the vehicle has (``given``, -1 none) and ``keeps``."""
        out = reportable.copy()
        if given >= 0 and keeps[given]:
            out[given] = True
        return out

    @staticmethod
    def unit_trip(members: npt.NDArray[np.int64], total: FloatArray, may_give: npt.NDArray[np.bool_]) -> int:
        """The trip a vehicle is given in the assignment unit (block) the joint assignment gave it:
        of the unit's ``members`` that may be given for its ping (`may_give`), the one of least
        accumulated cost ``total``; -1 when none may. The unit's least-cost trip overall can be
        one the vehicle cannot be given: the trip it has just finished, waiting at a layover spot
        off its path, while the block's next trip, from there, already fits it."""
        ok = members[may_give[members]]
        return int(ok[np.argmin(total[ok])]) if len(ok) else -1

    @staticmethod
    def _joint_choice(v: int, unit_costs: FloatArray, active: npt.NDArray[np.bool_]) -> int:
        """Assignment unit (block) of vehicle ``v`` in the least-cost assignment of blocks to
        the active vehicles, -1 when it gets none.

        Each active vehicle's cost of a block is its accumulated cost (regret) of the
        block's best trip (``unit_costs``, per vehicle and unit: `unit_costs`); one block goes
        to at most one vehicle (Hungarian algorithm).
        """
        others = np.flatnonzero(active)
        if v not in others:
            others = np.r_[others, v]
        vehicles, blocks = linear_sum_assignment(unit_costs[others])
        hit = np.flatnonzero(others[vehicles] == v)
        return int(blocks[hit[0]]) if len(hit) else -1  # none: more vehicles than blocks


class BlockPrefixMin:
    """Minimum over the earlier trips of the same block, for values in block order (large for a
    block's first trip and for trips without a block). The layout of the blocks is computed once
    per day's assignment; each call is then two passes over the values.

    Parameters
    ----------
    cuts : ndarray of int
        First position of each block in block order (`TripAssigner.blocks`).
    has_block : ndarray of bool
        Whether each block is a real one (not a trip without a block).
    n : int
        Number of trips.
    """

    def __init__(self, cuts: npt.NDArray[np.int64], has_block: npt.NDArray[np.bool_], n: int) -> None:
        self.cuts = cuts
        sizes = np.diff(np.r_[cuts, n])
        # prefix minimum restarted at each block: offset blocks so one accumulate suffices
        self.big = 1e9 * (len(cuts) - np.repeat(np.arange(len(cuts)), sizes))
        self.blockless = np.repeat(~has_block, sizes)

    def __call__(self, values: FloatArray) -> FloatArray:
        """The prefix minima of ``values`` (block order)."""
        shifted = np.empty_like(values)
        shifted[:1] = np.inf
        shifted[1:] = values[:-1]
        shifted[self.cuts] = np.inf
        out = np.minimum.accumulate(np.minimum(shifted, 1e8) + self.big) - self.big
        return np.where(self.blockless, 1e8, out)


def _kept_runs(fits: npt.NDArray[np.bool_], keeps: npt.NDArray[np.bool_], path: npt.NDArray[np.int64]
               ) -> npt.NDArray[np.bool_]:
    """Pings of a Viterbi path given their trip: where it fits, and where it ``keeps`` in a run of
    the same trip next to a ping where it fits (before or after: hindsight)."""
    out = fits.copy()
    for order in (range(1, len(path)), range(len(path) - 2, -1, -1)):
        for j in order:
            k = j - 1 if order.step == 1 else j + 1
            if not out[j] and keeps[j] and out[k] and path[k] == path[j]:
                out[j] = True
    return out

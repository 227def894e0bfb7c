"""Live fleet state of one agency: vehicles on trips, stop passings, arrival boards, alerts.

Pure logic over a `Feed` (no I/O): `Fleet.observe` takes one parsed position row at a
time (the causal, online counterpart of `telematics.evaluate`), matches it onto its
trip's path, detects the stops passed since the previous ping (interpolated passing
times, the rows of ``stop_arrivals``) and learns segment times and the vehicle's pace
from them (and the time from a position to the next stop, and how late buses leave
their origin). `Fleet.predict` gives every fresh vehicle's arrivals at its remaining
stops through the step `telematics.evaluate` scores (`telematics.downstream`), and at the
next trip of its block; `Fleet.board` (`telematics.board`) turns them into
what the API serves.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.assignment import AssignmentConfig, TripAssigner
from telematics.board import Board, build_board
from telematics.config import TelematicsSettings
from telematics.downstream import (
    MOVED_M,
    StopTable,
    VehicleStates,
    blend_with_delay,
    correctable,
    departure_lateness,
    in_layover,
    motion_state,
    predict_downstream,
)
from telematics.frequencies import expand_frequencies, parse_start_time
from telematics.gtfs import Feed, TripPaths, service_day_start, service_ids_on, trip_paths
from telematics.live_assignment import LiveAssigner
from telematics.matching import projection_candidates
from telematics.predict import (
    PaceFilter,
    RecencyMean,
    RemainingTimes,
    ResidualCorrector,
    SegmentTimes,
)

__all__ = ["Fleet", "VehicleTrack", "still_s"]

FloatArray = npt.NDArray[np.float64]
REPORTED_MAX_OFFSET_M = 300.0  # a reported trip whose path is farther than this (m) is implausible
PACE_SEGMENTS = 12  # a vehicle's latest completed segments feeding its pace
LABEL_EVERY_S = 30.0  # predictions are kept as residual labels at most this often (s)
MAX_LABELS = 100_000  # residual labels kept (the newest)
MIN_LAYOVER_S = 0.0  # extra turnaround between two trips of a block (s): the timetable's layover absorbs delays
INSTANCE_MATCH_S = 1800  # a reported start this close (s) to an instance's start names that instance
LEAVE_FIRST_STOP_M = 30.0  # beyond this (m) the vehicle has left its trip's first stop


@dataclass
class VehicleTrack:
    """One vehicle's live state (times epoch s, distances m along its trip path)."""

    agency: str
    vehicle_id: str
    observed_s: float
    lat: float
    lon: float
    speed_mps: float | None = None
    bearing: float | None = None
    occupancy: str | None = None
    trip_id: str | None = None
    service_date: date | None = None
    day0_s: float = 0.0
    along_m: float = math.nan
    offset_m: float = math.nan
    next_stop: int = 0  # index into the trip's stops of the first stop not yet passed
    passed_s: list[float] = field(default_factory=list)  # passing time per passed stop (NaN unknown)
    delay_s: float | None = None
    segments: list[tuple[int, float, float, float, float]] = field(default_factory=list)  # code, t0, t1, sched, day0
    moving: bool = True  # the last ping advanced more than MOVED_M
    moved_s: float = 0.0  # start of the last advancing interval (the ping before that advance)
    to_next: list[tuple[int, float, int, float]] = field(default_factory=list)  # code, offset m, state, ping s


def still_s(v: VehicleTrack) -> float:
    """Time (s) the vehicle has been stationary at its last ping (`telematics.downstream.still_for`)."""
    return 0.0 if v.moving else v.observed_s - v.moved_s


def _finite_or_none(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


class Fleet:
    """Live state of one agency's vehicles over its active feed.

    Parameters
    ----------
    agency : str
        Platform agency id.
    feed : Feed
        The agency's active feed.
    config : TelematicsSettings
        Thresholds.
    """

    def __init__(self, agency: str, feed: Feed, config: TelematicsSettings | None = None) -> None:
        self.agency = agency
        feed = expand_frequencies(feed)  # frequency-based trips become concrete instances
        self.feed = feed
        self.config = config or TelematicsSettings()
        self.timezone = feed.timezone
        self.paths: TripPaths = trip_paths(feed)
        st = feed.stop_times
        trip_ids = st["trip_id"].to_numpy(dtype=object)
        cuts = np.flatnonzero(np.r_[True, trip_ids[1:] != trip_ids[:-1], True])
        self.trip_rows = {str(trip_ids[lo]): (int(lo), int(hi)) for lo, hi in itertools.pairwise(cuts)}
        self.st_stop = st["stop_id"].to_numpy(dtype=object).astype(str)
        self.st_stop_list: list[str] = [str(x) for x in self.st_stop]
        self.st_seq = st["stop_sequence"].to_numpy(dtype=np.int64)
        self.st_arr = st["arrival_time"].to_numpy(dtype=np.float64)
        self.st_dep = st["departure_time"].to_numpy(dtype=np.float64)
        self.st_trip = trip_ids.astype(str)
        trips = feed.trips.set_index("trip_id")
        self.trip_route = trips["route_id"].astype(str).to_dict()
        self.trip_service = trips["service_id"].astype(str).to_dict()
        self.trip_headsign = trips["trip_headsign"].astype(str).to_dict()
        self._instances: dict[str, tuple[npt.NDArray[np.int64], list[str]]] = {}  # template -> starts, ids
        self._template_of: dict[str, tuple[str, str]] = {}  # instance -> (template, HH:MM:SS)
        if "template_trip_id" in trips.columns:
            inst = trips[trips["template_trip_id"].astype(str) != ""]
            for template, g in inst.reset_index().sort_values("start_s").groupby("template_trip_id"):
                ids = g["trip_id"].astype(str).tolist()
                self._instances[str(template)] = (g["start_s"].to_numpy(dtype=np.int64), ids)
                for tid in ids:
                    self._template_of[tid] = (str(template), tid.rsplit("#", 1)[1])
        self.trip_block = (trips["block_id"].fillna("").astype(str).to_dict() if "block_id" in trips.columns else {})
        self.trip_direction = (pd.to_numeric(trips["direction_id"], errors="coerce").to_dict()
                               if "direction_id" in trips.columns else {})
        self.st_service = pd.Series(self.st_trip).map(self.trip_service).to_numpy(dtype=str)
        routes = feed.routes.set_index("route_id")
        self.route_name = {r: (str(row.get("route_short_name", "") or "") or str(row.get("route_long_name", "") or r))
                           for r, row in routes.iterrows()}
        self.stops = feed.stops.set_index("stop_id")
        self.segments = SegmentTimes()
        self.pace = PaceFilter()
        self.vehicles: dict[str, VehicleTrack] = {}
        self._service_cache: dict[date, set[str]] = {}
        self._active_cache: dict[date, npt.NDArray[np.bool_]] = {}
        self._assigners: dict[date, LiveAssigner] = {}
        self._reported: dict[str, tuple[str, date, float]] = {}  # vehicle -> reported trip, day, ping s
        self.corrector = ResidualCorrector()
        self._labels = np.zeros((MAX_LABELS, 3))  # ring of (situation, known at s, residual s)
        self._n_labels = 0
        self._awaiting: dict[tuple[str, date, int], list[tuple[int, float]]] = {}
        self._labelled_s = -math.inf
        # segment code of each stop-time row k (stop k-1 -> k; the first row of a trip maps to itself)
        prev = np.r_[0, np.arange(len(self.st_stop) - 1)]
        first = np.r_[True, self.st_trip[1:] != self.st_trip[:-1]]
        prev[first] = np.flatnonzero(first)
        self.seg_code = self.segments.codes(self.st_stop[prev], self.st_stop)
        self.block_next = self._block_successors()
        self.block_runs: dict[tuple[str, date], tuple[VehicleTrack, int, float]] = {}
        self.table = StopTable.build(self.st_trip, self.st_stop, self.st_arr, self.paths.stop_dist_m,
                                     self.segments)
        self._departures = np.zeros((MAX_LABELS, 3))  # ring of (first segment code, known at s, lateness s)
        self._n_departures = 0
        self._remaining = np.zeros((MAX_LABELS, 5))  # ring of (code, offset m, state, known at s, remaining s)
        self._n_remaining = 0
        self.version = 0

    # ------------------------------------------------------------------ schedule helpers

    def _block_successors(self) -> dict[str, str]:
        """Trip -> the next trip of its block on the same service (by first departure)."""
        trips = self.feed.trips
        if "block_id" not in trips.columns:
            return {}
        first = pd.Series({t: self.st_dep[lo] for t, (lo, _hi) in self.trip_rows.items()})
        blocks = trips[trips["block_id"].astype(str) != ""][["trip_id", "service_id", "block_id"]].copy()
        blocks["start"] = blocks["trip_id"].map(first)
        blocks = blocks.dropna(subset=["start"]).sort_values(["service_id", "block_id", "start"])
        nxt = blocks.groupby(["service_id", "block_id"])["trip_id"].shift(-1)
        return {str(t): str(n) for t, n in zip(blocks["trip_id"], nxt, strict=True) if isinstance(n, str)}

    def services_on(self, day: date) -> set[str]:
        if day not in self._service_cache:
            self._service_cache[day] = service_ids_on(self.feed, day)
        return self._service_cache[day]

    def _active_rows(self, day: date, running: set[str]) -> npt.NDArray[np.bool_]:
        if day not in self._active_cache:
            if len(self._active_cache) > 8:
                self._active_cache.clear()
            self._active_cache[day] = np.isin(self.st_service, np.array(sorted(running), dtype=str))
        return self._active_cache[day]

    def local_date(self, epoch_s: float) -> date:
        return datetime.fromtimestamp(epoch_s, ZoneInfo(self.timezone)).date()

    def gtfsrt_trip(self, trip_id: str) -> tuple[str, str | None]:
        """GTFS-realtime ``(trip_id, start_time)`` of a trip: the template and the run's start
        ``HH:MM:SS`` for an instance of a frequency-based trip, else ``(trip_id, None)``."""
        return self._template_of.get(trip_id, (trip_id, None))

    def instance_of(self, trip_id: str | None, start_s: int | None) -> str | None:
        """The trip a reported ``trip_id`` (+ GTFS-rt ``start_time``, s of service day) means.

        A known trip is itself; a frequency template with a start time is the instance
        starting then, else the nearest instance within `INSTANCE_MATCH_S` (a frequency-based
        run's start may be its actual one); anything else is None (the trip is then inferred).
        """
        if not trip_id or trip_id in self.trip_rows:
            return trip_id or None
        found = self._instances.get(trip_id)
        if found is None or start_s is None:
            return None
        starts, ids = found
        k = int(np.argmin(np.abs(starts - start_s)))
        return ids[k] if abs(int(starts[k]) - start_s) <= INSTANCE_MATCH_S else None

    def _service_day_for(self, trip_id: str, t_s: float, start_date: date | None) -> date | None:
        """The service date on which ``trip_id`` runs around ``t_s``, or None."""
        lo, hi = self.trip_rows[trip_id]
        candidates = [start_date] if start_date else [self.local_date(t_s) - timedelta(days=k) for k in (0, 1)]
        for day in candidates:
            if start_date is None and self.trip_service[trip_id] not in self.services_on(day):
                continue
            day0 = service_day_start(day, self.timezone)
            if start_date is not None or day0 + self.st_arr[lo] - 3600 <= t_s <= day0 + self.st_arr[hi - 1] + 3600:
                return day
        return None

    # ------------------------------------------------------------------ observe

    def observe(self, row: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Update the state with one position row (`telematics.ingest.POSITION_COLUMNS` order,
        whose last, ``start_time``, is the GTFS-rt ``HH:MM:SS`` or s of service day and may be
        left out, see `telematics.ingest.parse_json_position`): a frequency template plus
        start time is mapped to its instance (`instance_of`).

        Returns
        -------
        list of tuple
            Stop passings detected by this ping, as ``stop_arrivals`` rows
            (`telematics.store.ARRIVAL_COLUMNS` order).
        """
        _agency, vid, ts, lat, lon, speed, bearing, trip_id, _route, start_date, _odo, occupancy = row[:12]
        start_s = parse_start_time(row[12]) if len(row) > 12 else None
        t = ts.timestamp() if isinstance(ts, datetime) else float(ts)
        speed, bearing = _finite_or_none(speed), _finite_or_none(bearing)  # store reads give NaN for NULL
        trip_id = self.instance_of(trip_id, start_s) if isinstance(trip_id, str) and trip_id else None
        start_date = start_date if isinstance(start_date, date) else None
        occupancy = occupancy if isinstance(occupancy, str) else None
        v = self.vehicles.get(vid)
        if v is not None and t <= v.observed_s:
            return []  # duplicate or out of order
        if v is None:
            v = VehicleTrack(self.agency, vid, t, lat, lon)
            self.vehicles[vid] = v
        prev_t = v.observed_s
        v.observed_s, v.lat, v.lon, v.speed_mps, v.bearing, v.occupancy = t, lat, lon, speed, bearing, occupancy
        self.version += 1
        xy = self.paths.projection.to_xy([lat], [lon])[0]
        trip, day = self._resolve_trip(v, trip_id, start_date, t, xy)
        if trip is None or day is None:
            v.trip_id, v.service_date = None, None
            return []
        if trip != v.trip_id or day != v.service_date:
            self._start_trip(v, trip, day)
            prev_t = t
        return self._advance(v, xy, prev_t, t)

    def _resolve_trip(self, v: VehicleTrack, trip_id: str | None, start_date: date | None, t: float,
                      xy: FloatArray) -> tuple[str | None, date | None]:
        """The reported trip when it runs that service day around ``t``, else `TripAssigner`'s choice.

        A vehicle away from its reported trip's path keeps the trip (a detour: the
        ``off_route`` alert says so) unless it never came near it.
        """
        if trip_id and trip_id in self.trip_rows:
            day = self._service_day_for(trip_id, t, start_date)
            if day is not None and (trip_id == v.trip_id or projection_candidates(
                    self.paths[trip_id], xy[None, :], k=1)[1][0, 0] <= REPORTED_MAX_OFFSET_M):
                self._reported[v.vehicle_id] = (trip_id, day, t)
                if day in self._assigners:
                    self._assigners[day].forget(v.vehicle_id)
                    self._release_block(v.vehicle_id, trip_id, day)
                return trip_id, day
        self._reported.pop(v.vehicle_id, None)
        return self._infer_trip(v, t, xy)

    def _release_block(self, holder: str, trip_id: str, day: date) -> None:
        """Unassign inferred vehicles holding a trip of ``trip_id``'s block (``holder`` reports it)."""
        block = self.trip_block.get(trip_id, "")
        for vid, other in self.vehicles.items():
            if (vid != holder and vid not in self._reported and other.service_date == day and other.trip_id
                    and (other.trip_id == trip_id or (block and self.trip_block.get(other.trip_id) == block))):
                other.trip_id, other.service_date = None, None

    def _assigner(self, day: date) -> LiveAssigner:
        if day not in self._assigners:
            if len(self._assigners) > 3:
                self._assigners.clear()
            self._assigners[day] = LiveAssigner(TripAssigner(
                self.feed, self.paths, day, service_day_start(day, self.timezone),
                AssignmentConfig(stale_after_s=self.config.stale_after_s * 5)))
        return self._assigners[day]

    def _infer_trip(self, v: VehicleTrack, t: float, xy: FloatArray) -> tuple[str | None, date | None]:
        """Trip inferred by the day's incremental fleet assignment (`LiveAssigner`): None
        while the vehicle has not moved; never a block another vehicle holds."""
        day = self.local_date(t)
        if not self.services_on(day):
            return None, None
        stale = self.config.stale_after_s
        held = [trip for vid, (trip, d, seen) in self._reported.items()
                if d == day and vid != v.vehicle_id and t - seen <= stale]
        live = self._assigner(day)
        trip = live.observe(v.vehicle_id, t, (float(xy[0]), float(xy[1])), v.bearing, held)
        for vid, other_trip in live.revised.items():  # the joint solution moved other vehicles
            other = self.vehicles.get(vid)
            if other is None or other.service_date not in (day, None):
                continue
            if other_trip:
                self._start_trip(other, other_trip, day)
            else:
                other.trip_id, other.service_date = None, None
        return (trip, day) if trip else (None, None)

    def _start_trip(self, v: VehicleTrack, trip: str, day: date) -> None:
        v.trip_id, v.service_date = trip, day
        v.day0_s = service_day_start(day, self.timezone)
        v.along_m, v.offset_m, v.next_stop, v.passed_s, v.segments = math.nan, math.nan, 0, [], []
        v.moving, v.moved_s, v.to_next = True, 0.0, []

    def _advance(self, v: VehicleTrack, xy: FloatArray, prev_t: float, t: float) -> list[tuple[Any, ...]]:
        trip = v.trip_id
        assert trip is not None and v.service_date is not None
        line = self.paths[trip]
        dist = self.paths.stop_dist_m[trip]
        lo, hi = self.trip_rows[trip]
        along, offset = projection_candidates(line, xy[None, :], k=4, max_offset_m=300.0)
        cand, off = along[0], offset[0]
        valid = ~np.isnan(cand)
        cand, off = cand[valid], off[valid]
        prev = v.along_m
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
        v.offset_m = float(off[pick])
        old_along = prev if not math.isnan(prev) else new_along
        v.along_m = new_along
        v.moving = math.isnan(prev) or max(new_along, dist[0]) - max(prev, dist[0]) > MOVED_M
        if v.moving:
            v.moved_s = prev_t
        sched_here = float(np.interp(new_along, dist, self.st_arr[lo:hi])) + v.day0_s
        v.delay_s = t - sched_here if new_along > dist[0] + LEAVE_FIRST_STOP_M else None
        rows: list[tuple[Any, ...]] = []
        j = v.next_stop
        # the first stop is passed when the vehicle leaves it (a layover is not travel time)
        while j < hi - lo and (dist[j] < new_along - LEAVE_FIRST_STOP_M if j == 0 else dist[j] <= new_along):
            if new_along > old_along and t - prev_t <= self.config.max_gap_s and not math.isnan(prev):
                share = max(dist[j] - old_along, 0.0) / (new_along - old_along)
                when = prev_t + min(share, 1.0) * (t - prev_t)
            else:
                when = math.nan
            v.passed_s.append(when)
            if math.isfinite(when):
                rows.append(self._passing_row(v, lo + j, when))
                self._mature(trip, v.service_date, lo + j, when, t)
                for code, offset_m, state, ping_s in v.to_next:
                    if when >= ping_s:
                        self._remaining[self._n_remaining % MAX_LABELS] = (code, offset_m, state, t, when - ping_s)
                        self._n_remaining += 1
                if j == 1:  # left the origin: how late, for the departure model
                    self._departures[self._n_departures % MAX_LABELS] = (
                        self.table.seg_code[lo], t, when - v.day0_s - self.st_arr[lo + 1])
                    self._n_departures += 1
                if j > 1 and math.isfinite(v.passed_s[j - 1]):  # the first segment holds layovers
                    self._learn(v, lo + j - 1, lo + j, v.passed_s[j - 1], when, t)
            v.to_next = []
            j += 1
        v.next_stop = j
        if 1 <= j < hi - lo:  # on segment j-1 -> j: remember the ping to learn the time to stop j
            v.to_next.append((int(self.seg_code[lo + j]), new_along - float(dist[j - 1]), self._state(v, dist, t), t))
        return rows

    def _state(self, v: VehicleTrack, dist: FloatArray, t: float) -> int:
        """Motion state for `RemainingTimes` (`telematics.downstream.motion_state`)."""
        still = still_s(v)
        return int(motion_state(in_layover(v.next_stop, v.along_m - dist[0], still), still))

    def _passing_row(self, v: VehicleTrack, k: int, when: float) -> tuple[Any, ...]:
        sched = v.day0_s + self.st_arr[k]
        return (self.agency, v.service_date, self.st_trip[k], int(self.st_seq[k]),
                datetime.fromtimestamp(when, UTC), self.st_stop[k], v.vehicle_id,
                self.trip_route.get(self.st_trip[k]), datetime.fromtimestamp(sched, UTC), when - sched)

    def _learn(self, v: VehicleTrack, k0: int, k1: int, t0: float, t1: float, known_s: float) -> None:
        scheduled = max(self.st_arr[k1] - self.st_arr[k0], 1.0)
        code = int(self.seg_code[k1])
        self.segments.update(np.array([code]), [known_s], [t1 - t0], [scheduled])
        v.segments.append((code, t0, t1, scheduled, v.day0_s))
        del v.segments[:-PACE_SEGMENTS]

    def _mature(self, trip: str, day: date, k: int, when: float, known_s: float) -> None:
        """Turn the predictions made for a stop that was just passed into residual labels."""
        for situation, predicted in self._awaiting.pop((trip, day, k), ()):
            self._labels[self._n_labels % MAX_LABELS] = (situation, known_s, when - predicted)
            self._n_labels += 1

    def _paces(self, vehicles: list[VehicleTrack]) -> tuple[FloatArray, FloatArray]:
        """Filtered log pace (actual over estimated segment time) and its variance per vehicle."""
        rows = [(g, *seg) for g, v in enumerate(vehicles) for seg in v.segments]
        state, var = np.zeros(len(vehicles)), np.full(len(vehicles), 0.05)
        if not rows:
            return state, var
        g, code, t0, t1, sched, day0 = (np.array(c) for c in zip(*rows, strict=True))
        est = self.segments.estimate(code.astype(np.int64), t0, t0 - day0, sched)  # as known then
        ratio = np.log(np.maximum(t1 - t0, 1.0) / np.maximum(est.mean_s, 1.0))
        cuts = np.flatnonzero(np.r_[True, g[1:] != g[:-1], True])
        for lo, hi in itertools.pairwise(cuts.tolist()):  # per vehicle: a few segments each
            x, p = self.pace.run(ratio[lo:hi])
            state[int(g[lo])], var[int(g[lo])] = x[-1], p[-1]
        return state, var

    def learn_history(self, arrivals: pd.DataFrame) -> int:
        """Learn the time-of-day profile of segment times from stored ``stop_arrivals``.

        Returns
        -------
        int
            Segment observations used.
        """
        if arrivals.empty:
            return 0
        a = arrivals.sort_values(["service_date", "trip_id", "stop_sequence"])
        same = (a["trip_id"].to_numpy()[1:] == a["trip_id"].to_numpy()[:-1]) & (
            a["service_date"].to_numpy()[1:] == a["service_date"].to_numpy()[:-1])
        t = ((pd.to_datetime(a["time"], utc=True) - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy()
        stop = a["stop_id"].astype(str).to_numpy()
        dur = np.diff(t)
        ok = same & (dur > 0)
        if not ok.any():
            return 0
        codes = self.segments.codes(stop[:-1][ok], stop[1:][ok])
        day0 = np.array([service_day_start(d, self.timezone) for d in a["service_date"].to_numpy()[:-1][ok]])
        self.segments.add_history(codes, t[:-1][ok] - day0, dur[ok])
        return int(ok.sum())

    def evict(self, now_s: float, silent_s: float = 7200.0) -> list[str]:
        """Forget vehicles silent longer than ``silent_s`` (s); return their ids."""
        gone = [vid for vid, v in self.vehicles.items() if now_s - v.observed_s > silent_s]
        for vid in gone:
            del self.vehicles[vid]
            self._reported.pop(vid, None)
            for assigner in self._assigners.values():
                assigner.forget(vid)
        if gone:
            self.version += 1
        return gone

    # ------------------------------------------------------------------ board

    def scheduled_window(self, now_s: float, horizon_s: float) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """Stop-time rows (and their service-day start) scheduled in the board window."""
        rows: list[npt.NDArray[np.int64]] = []
        day0s: list[FloatArray] = []
        today = self.local_date(now_s)
        for day in (today - timedelta(days=1), today):
            day0 = service_day_start(day, self.timezone)
            running = self.services_on(day)
            if not running:
                continue
            active = self._active_rows(day, running)
            t = day0 + self.st_arr
            sel = np.flatnonzero(active & (t >= now_s - 120.0) & (t <= now_s + horizon_s))
            rows.append(sel)
            day0s.append(np.full(len(sel), day0))
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(rows), np.concatenate(day0s)

    def predict(self, now_s: float, fresh: list[VehicleTrack]) -> dict[tuple[str, date, int], tuple[float, float, float]]:
        """(trip, date, stop_time row) -> (arrival, p10, p90) for fresh vehicles' remaining stops.

        Each vehicle's state at its last ping goes through
        `telematics.downstream.predict_downstream` (the step `telematics.evaluate` scores:
        departure model at the origin, holds, `RemainingTimes` by motion state, segment
        times and pace), then the causal bias of stopped vehicles' earlier predictions in the
        same situation (`ResidualCorrector`) and the delay blend (`blend_with_delay`).
        A vehicle still at its origin also gets its expected departure there.
        """
        live = [v for v in fresh if v.trip_id is not None and v.service_date is not None
                and v.trip_id in self.trip_rows and not math.isnan(v.along_m)]
        if not live:
            self.block_runs = {}
            return {}
        pace, pace_var = self._paces(live)
        trips = [str(v.trip_id) for v in live]
        days = [v.service_date for v in live if v.service_date is not None]
        states = VehicleStates(
            now_s=np.array([v.observed_s for v in live]), along_m=np.array([v.along_m for v in live]),
            still_s=np.array([still_s(v) for v in live]), pace=pace, pace_var=pace_var,
            trip_lo=np.array([self.trip_rows[t][0] for t in trips], dtype=np.int64),
            day0_s=np.array([v.day0_s for v in live]))
        pred = predict_downstream(self.table, states, self.segments, self._remaining_times(),
                                  self._departure_model())
        at = states.now_s[pred.state]
        situation = correctable(pred.situation, states.still_s[pred.state])
        fix = np.zeros(len(at))
        if self._n_labels:
            labels = self._labels[:min(self._n_labels, MAX_LABELS)]
            fix = self.corrector.correction(situation, at, labels[:, 0].astype(np.int64), labels[:, 1],
                                            labels[:, 2])
            fix = np.where(situation >= 0, fix, 0.0)
        arrival, p10, p90 = blend_with_delay(pred.arrival_s, pred.p10_s, pred.p90_s, pred.delayprop_s, fix)
        arrival = np.maximum(arrival, now_s)
        p10 = np.minimum(np.maximum(p10, now_s), arrival)
        p90 = np.maximum(p90, arrival)
        owners = [(trips[g], days[g], k)
                  for g, k in zip(pred.state.tolist(), pred.row.tolist(), strict=True)]
        if now_s - self._labelled_s >= LABEL_EVERY_S:  # keep stopped vehicles' predictions to learn residuals
            self._labelled_s = now_s
            for i in np.flatnonzero((situation >= 0) & (pred.arrival_s - at <= 1800.0)).tolist():
                self._awaiting.setdefault(owners[i], []).append((int(situation[i]), float(pred.arrival_s[i])))
            if len(self._awaiting) > 200_000:
                self._awaiting.clear()
        out: dict[tuple[str, date, int], tuple[float, float, float]] = {
            o: (float(a), float(lo10), float(hi90))
            for o, a, lo10, hi90 in zip(owners, arrival.tolist(), p10.tolist(), p90.tolist(), strict=True)}
        for g, v in enumerate(live):  # not yet left the origin: its expected departure
            if v.next_stop == 0:
                leave = max(float(pred.leave_s[g]), now_s)
                out[(trips[g], days[g], self.trip_rows[trips[g]][0])] = (leave, leave, leave)
        out.update(self._block_predictions(live, out))
        return out

    def _remaining_times(self) -> RemainingTimes | None:
        if not self._n_remaining:
            return None
        obs = self._remaining[:min(self._n_remaining, MAX_LABELS)]
        return RemainingTimes(obs[:, 0].astype(np.int64), obs[:, 1], obs[:, 2].astype(np.int64), obs[:, 3],
                              obs[:, 4])

    def _departure_model(self) -> RecencyMean | None:
        if not self._n_departures:
            return None
        obs = self._departures[:min(self._n_departures, MAX_LABELS)]
        return departure_lateness(obs[:, 0].astype(np.int64), obs[:, 1], obs[:, 2])

    def _block_predictions(self, fresh: list[VehicleTrack], current: dict[tuple[str, date, int], tuple[float, float, float]]
                           ) -> dict[tuple[str, date, int], tuple[float, float, float]]:
        """The next trip of each vehicle's block: its schedule delayed by the current trip's lateness.

        The next trip starts at the later of its scheduled departure and the predicted end of
        the current trip plus `MIN_LAYOVER_S`; the end's uncertainty carries over.
        """
        self.block_runs = {}
        out: dict[tuple[str, date, int], tuple[float, float, float]] = {}
        for v in fresh:
            assert v.trip_id is not None and v.service_date is not None
            nxt = self.block_next.get(v.trip_id)
            lo, hi = self.trip_rows[v.trip_id]
            end = current.get((v.trip_id, v.service_date, hi - 1))
            if nxt is None or end is None:
                continue
            nlo, nhi = self.trip_rows[nxt]
            carry = max(0.0, end[0] + MIN_LAYOVER_S - (v.day0_s + self.st_dep[nlo]))
            arrive = v.day0_s + self.st_arr[nlo:nhi] + carry
            spread_lo, spread_hi = (end[0] - end[1]) if carry > 0 else 0.0, end[2] - end[0]
            remaining_m = float(self.paths.stop_dist_m[v.trip_id][-1]) - v.along_m
            self.block_runs[(nxt, v.service_date)] = (v, hi - lo - v.next_stop, max(remaining_m, 0.0))
            for k, a in zip(range(nlo, nhi), arrive.tolist(), strict=True):
                out[(nxt, v.service_date, k)] = (a, a - spread_lo, a + spread_hi)
        return out

    def board(self, now_s: float) -> Board:
        """Arrivals per stop, vehicles, trip updates and alerts at ``now_s`` (epoch s)."""
        return build_board(self, now_s)

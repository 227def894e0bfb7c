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

The parts live in their own modules: `telematics.track` (a vehicle's state,
`VehicleTrack`), `telematics.timetable` (the feed's stop times and schedule lookups,
GTFS-rt trip naming and frequency instances), `telematics.passing` (matching a ping
along its trip and the stops it passes) and `telematics.fleet_models` (what is learnt
from passings, and the predictions). This module ties them to the vehicles: which trip
each one runs (reported or inferred by `LiveAssigner`) and the update from one ping.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from telematics.assignment import AssignmentConfig, TripAssigner
from telematics.board import Board, build_board
from telematics.config import TelematicsSettings
from telematics.downstream import MOVED_M, in_layover, motion_state
from telematics.fleet_models import FleetModels
from telematics.frequencies import expand_frequencies, parse_start_time
from telematics.gtfs import Feed, service_day_start
from telematics.gtfs.paths import StopPathFn
from telematics.ingest import PositionRow, as_position_row
from telematics.live_assignment import LiveAssigner
from telematics.matching import projection_candidates
from telematics.passing import LEAVE_FIRST_STOP_M, locate_along, stop_passings
from telematics.track import VehicleTrack, finite_or_none, still_s

__all__ = ["Fleet", "VehicleTrack", "still_s"]

FloatArray = npt.NDArray[np.float64]
REPORTED_MAX_OFFSET_M = 300.0  # a reported trip whose path is farther than this (m) is implausible


class Fleet(FleetModels):
    """Live state of one agency's vehicles over its active feed.

    The schedule lookups come from `telematics.timetable.Timetable`, the learnt models and
    `predict` from `telematics.fleet_models.FleetModels`.

    Parameters
    ----------
    agency : str
        Platform agency id.
    feed : Feed
        The agency's active feed (frequency-based trips are expanded into instances).
    config : TelematicsSettings
        Thresholds.
    stop_path : callable, optional
        Builds the paths of trips without a shape: a stored road network's
        (`telematics.road_paths.RoadStopPaths`), else straight lines between the stops.
    """

    def __init__(self, agency: str, feed: Feed, config: TelematicsSettings | None = None,
                 stop_path: StopPathFn | None = None) -> None:
        self.agency = agency
        # frequency-based trips become concrete instances
        super().__init__(expand_frequencies(feed), stop_path)
        self.config = config or TelematicsSettings()
        self._assigners: dict[date, LiveAssigner] = {}
        self._reported: dict[str, tuple[str, date, float]] = {}  # vehicle -> reported trip, day, ping s
        self.version = 0

    # ------------------------------------------------------------------ observe

    def observe(self, row: PositionRow | tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Update the state with one position row (`telematics.ingest.POSITION_COLUMNS` order,
        whose last, ``start_time``, is the GTFS-rt ``HH:MM:SS`` or s of service day and may be
        left out, see `telematics.ingest.parse_json_position`): a frequency template plus
        start time is mapped to its instance (`instance_of`).

        A ping whose processing fails is reported (`vehicle_failed`, stage ``observe``): its
        vehicle becomes unknown until its next ping, and the others are not affected.

        Returns
        -------
        list of tuple
            Stop passings detected by this ping, as ``stop_arrivals`` rows
            (`telematics.store.ARRIVAL_COLUMNS` order).
        """
        try:
            return self._observe(row)
        except Exception as exc:
            self.vehicle_failed(str(row[1]) if len(row) > 1 else "?", "observe", exc)
            return []

    def _observe(self, row: PositionRow | tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """`observe` without the guard."""
        p = as_position_row(row)
        vid, ts, lat, lon, speed, bearing = p.vehicle_id, p.time, p.lat, p.lon, p.speed_mps, p.bearing
        trip_id, start_date, occupancy = p.trip_id, p.start_date, p.occupancy
        start_s = parse_start_time(p.start_time)
        t = ts.timestamp() if isinstance(ts, datetime) else float(ts)
        speed, bearing = finite_or_none(speed), finite_or_none(bearing)  # store reads give NaN for NULL
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
        """The incremental trip assignment of service day ``day`` (a few days kept)."""
        if day not in self._assigners:
            if len(self._assigners) > 3:
                self._assigners.clear()
            before = day - timedelta(days=1)  # its trips past 24:00 run on this date
            self._assigners[day] = LiveAssigner(TripAssigner(
                self.feed, self.paths, day, service_day_start(day, self.timezone),
                AssignmentConfig(stale_after_s=self.config.stale_after_s * 5),
                [(before, service_day_start(before, self.timezone))]))
        return self._assigners[day]

    def _infer_trip(self, v: VehicleTrack, t: float, xy: FloatArray) -> tuple[str | None, date | None]:
        """Trip inferred by the day's incremental fleet assignment (`LiveAssigner`): None
        while the vehicle has not moved; never a block another vehicle holds (nor one a vehicle
        waiting at its first stop is about to run: `telematics.assignment.READY_S`)."""
        day = self.local_date(t)
        before = day - timedelta(days=1)
        if not self.services_on(day) and not self.services_on(before):
            return None, None
        stale = self.config.stale_after_s
        held = [trip for vid, (trip, d, seen) in self._reported.items()
                if d in (day, before) and vid != v.vehicle_id and t - seen <= stale]
        live = self._assigner(day)
        trip = live.observe(v.vehicle_id, t, (float(xy[0]), float(xy[1])), v.bearing, held)
        for vid, other_trip in live.revised.items():  # the joint solution moved other vehicles
            other = self.vehicles.get(vid)
            if other is None or other.service_date not in (day, before, None):
                continue
            if other_trip:
                self._start_trip(other, other_trip, live.days[vid])
            else:
                other.trip_id, other.service_date = None, None
        # a trip of the previous service day still running after midnight keeps its day
        return (trip, live.days[v.vehicle_id]) if trip else (None, None)

    def _start_trip(self, v: VehicleTrack, trip: str, day: date) -> None:
        """Put ``v`` at the start of ``trip`` on service day ``day`` (its progress reset)."""
        v.trip_id, v.service_date = trip, day
        v.day0_s = service_day_start(day, self.timezone)
        v.along_m, v.offset_m, v.next_stop, v.passed_s, v.segments = math.nan, math.nan, 0, [], []
        v.moving, v.moved_s, v.to_next = True, 0.0, []

    def _advance(self, v: VehicleTrack, xy: FloatArray, prev_t: float, t: float) -> list[tuple[Any, ...]]:
        """Move ``v`` along its trip to ping ``xy`` at ``t`` and learn from the stops it passed.

        Returns the ``stop_arrivals`` rows of the passings with a known time.
        """
        trip = v.trip_id
        assert trip is not None and v.service_date is not None
        dist = self.paths.stop_dist_m[trip]
        lo, hi = self.trip_rows[trip]
        prev = v.along_m
        new_along, v.offset_m = locate_along(self.paths[trip], xy, prev, prev_t, t)
        old_along = prev if not math.isnan(prev) else new_along
        v.along_m = new_along
        v.moving = math.isnan(prev) or max(new_along, dist[0]) - max(prev, dist[0]) > MOVED_M
        if v.moving:
            v.moved_s = prev_t
        sched_here = float(np.interp(new_along, dist, self.st_arr[lo:hi])) + v.day0_s
        v.delay_s = t - sched_here if new_along > dist[0] + LEAVE_FIRST_STOP_M else None
        rows: list[tuple[Any, ...]] = []
        passed = stop_passings(dist, hi - lo, v.next_stop, old_along, new_along, prev_t, t,
                               self.config.max_gap_s, not math.isnan(prev))
        for j, when in passed:
            v.passed_s.append(when)
            if math.isfinite(when):
                rows.append(self._passing_row(v, lo + j, when))
                self._mature(trip, v.service_date, lo + j, when, t)
                for code, offset_m, state, ping_s in v.to_next:
                    if when >= ping_s:
                        self._record_remaining(code, offset_m, state, t, when - ping_s)
                if j == 1:  # left the origin: how late, for the departure model
                    self._record_departure(int(self.table.seg_code[lo]), t, when - v.day0_s - self.st_arr[lo + 1])
                if j > 1 and math.isfinite(v.passed_s[j - 1]):  # the first segment holds layovers
                    self._learn(v, lo + j - 1, lo + j, v.passed_s[j - 1], when, t)
            v.to_next = []
        j = v.next_stop + len(passed)
        v.next_stop = j
        if 1 <= j < hi - lo:  # on segment j-1 -> j: remember the ping to learn the time to stop j
            v.to_next.append((int(self.seg_code[lo + j]), new_along - float(dist[j - 1]), self._state(v, dist, t), t))
        return rows

    def _state(self, v: VehicleTrack, dist: FloatArray, t: float) -> int:
        """Motion state for `RemainingTimes` (`telematics.downstream.motion_state`)."""
        still = still_s(v)
        speed = math.nan if v.speed_mps is None else v.speed_mps  # halted vs moving (reported, m/s)
        return int(motion_state(in_layover(v.next_stop, v.along_m - dist[0], still), still, speed))

    def _passing_row(self, v: VehicleTrack, k: int, when: float) -> tuple[Any, ...]:
        """The ``stop_arrivals`` row of ``v`` passing stop-time row ``k`` at ``when`` (epoch s)."""
        sched = v.day0_s + self.st_arr[k]
        return (self.agency, v.service_date, self.st_trip[k], int(self.st_seq[k]),
                datetime.fromtimestamp(when, UTC), self.st_stop[k], v.vehicle_id,
                self.trip_route.get(self.st_trip[k]), datetime.fromtimestamp(sched, UTC), when - sched)

    def vehicle_failed(self, vehicle_id: str, stage: str, exc: BaseException) -> None:
        """Report a failed computation of ``vehicle_id`` (`telematics.guard.vehicle_failed`) and
        make the vehicle unknown (`quarantine`): its trips fall back to the schedule."""
        super().vehicle_failed(vehicle_id, stage, exc)
        self.quarantine(vehicle_id)

    def quarantine(self, vehicle_id: str) -> None:
        """Forget what ``vehicle_id`` runs and its progress (its position is kept): it is a
        vehicle without a trip until its next ping resolves one afresh."""
        v = self.vehicles.get(vehicle_id)
        if v is not None:
            v.trip_id, v.service_date, v.delay_s = None, None, None
            v.along_m, v.offset_m, v.next_stop, v.passed_s, v.segments = math.nan, math.nan, 0, [], []
            v.moving, v.moved_s, v.to_next = True, 0.0, []
        self._reported.pop(vehicle_id, None)
        for assigner in self._assigners.values():
            assigner.forget(vehicle_id)
        self.block_runs = {k: run for k, run in self.block_runs.items() if run[0].vehicle_id != vehicle_id}
        self.version += 1

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

    def board(self, now_s: float) -> Board:
        """Arrivals per stop, vehicles, trip updates and alerts at ``now_s`` (epoch s)."""
        return build_board(self, now_s)

"""The schedule side of a live fleet: a feed's stop times as flat arrays, and lookups on them.

Pure logic over a `Feed` (no I/O). `Timetable` indexes the stop times of every trip
(rows ``trip_rows[trip] = (lo, hi)`` of flat arrays of stops, sequences and scheduled
times), the trips' routes, services and blocks, and answers the schedule questions of
`telematics.fleet.Fleet`: which services run on a day, which trip a GTFS-realtime
``(trip_id, start_time)`` means (frequency instances, `telematics.frequencies`) and back,
on which service day a trip runs around a time, the next trip of a block, and which
stop times fall in a board's window.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.gtfs import Feed, TripPaths, service_day_start, service_ids_on, trip_paths
from telematics.gtfs.paths import StopPathFn

__all__ = ["INSTANCE_MATCH_S", "Timetable"]

FloatArray = npt.NDArray[np.float64]
INSTANCE_MATCH_S = 1800  # a reported start this close (s) to an instance's start names that instance


class Timetable:
    """Stop times, trips and routes of one feed, indexed for live use.

    Parameters
    ----------
    feed : Feed
        The agency's feed, frequency-based trips already expanded into instances
        (`telematics.frequencies.expand_frequencies`); stop times sorted by trip then sequence.
    stop_path : callable, optional
        Builds the path of a trip without a shape from its stops (a stored road network's,
        `telematics.road_paths.RoadStopPaths`); default straight lines between the stops.

    Attributes
    ----------
    feed : Feed
        The feed.
    timezone : str
        The feed's timezone.
    paths : TripPaths
        Trip paths and the distance (m) of each trip's stops along its path (``paths.source``
        says which were built on the road network).
    trip_rows : dict of str to (int, int)
        Trip -> its rows ``[lo, hi)`` of the flat stop-time arrays.
    st_stop, st_stop_list, st_seq, st_trip : arrays / list
        Stop id, stop sequence and trip id per stop-time row.
    st_arr, st_dep : ndarray
        Scheduled arrival and departure per row (s after the service day start).
    st_service : ndarray
        Service id per row.
    trip_route, trip_service, trip_headsign, trip_block : dict of str to str
        Per-trip attributes (``trip_block`` empty without ``block_id``).
    trip_direction : dict
        Trip -> ``direction_id`` (NaN unknown; empty without the column).
    route_name : dict
        Route -> short name, else long name, else id.
    stops : DataFrame
        The feed's stops indexed by ``stop_id``.
    block_next : dict of str to str
        Trip -> the next trip of its block on the same service.
    """

    def __init__(self, feed: Feed, stop_path: StopPathFn | None = None) -> None:
        self.feed = feed
        self.timezone = feed.timezone
        self.paths: TripPaths = trip_paths(feed, stop_path)
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
        self._service_cache: dict[date, set[str]] = {}
        self._active_cache: dict[date, npt.NDArray[np.bool_]] = {}
        self.block_next = self._block_successors()

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
        """Service ids running on ``day`` (cached).

        Parameters
        ----------
        day : date
            Service date.

        Returns
        -------
        set of str
        """
        if day not in self._service_cache:
            self._service_cache[day] = service_ids_on(self.feed, day)
        return self._service_cache[day]

    def _active_rows(self, day: date, running: set[str]) -> npt.NDArray[np.bool_]:
        """Mask of the stop-time rows whose service runs on ``day`` (cached for a few days)."""
        if day not in self._active_cache:
            if len(self._active_cache) > 8:
                self._active_cache.clear()
            self._active_cache[day] = np.isin(self.st_service, np.array(sorted(running), dtype=str))
        return self._active_cache[day]

    def local_date(self, epoch_s: float) -> date:
        """Calendar date in the feed's timezone of ``epoch_s`` (epoch s)."""
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

        Parameters
        ----------
        trip_id : str or None
            Reported trip id.
        start_s : int or None
            Reported start time (s after the service day start).

        Returns
        -------
        str or None
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

    def scheduled_window(self, now_s: float, horizon_s: float) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """Stop-time rows (and their service-day start) scheduled in the board window.

        Parameters
        ----------
        now_s : float
            Current time (epoch s); rows scheduled from 120 s before it are kept.
        horizon_s : float
            Window length (s) after ``now_s``.

        Returns
        -------
        rows : ndarray of int64
            Stop-time rows, yesterday's service day first.
        day0_s : ndarray
            Start (epoch s) of each row's service day.
        """
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

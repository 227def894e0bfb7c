"""Trip assignment of stored positions in batch, and how to score it against recorded trips.

`assign_positions` runs `telematics.assignment.TripAssigner` over a whole AVL frame: one causal
pass per two consecutive local dates (so a vehicle keeps its block across midnight), and on
request the retrospective pass. `assignment_accuracy` is the share of pings given their
recorded trip. `turnaround_neighbours` marks the pings whose given trip and recorded trip are
the two trips of one block either side of a turnaround, given while the bus stands at the
terminal they share: agencies label those pings differently (the recorded WMATA trip ids change
a median 1.8 min after the bus arrives, but 10 of 78 turnarounds only 7-23 min later, shortly
before it leaves), so the evaluations report the share right up to that convention beside the
strict one.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.assignment import AssignmentConfig, TripAssigner
from telematics.gtfs import Feed, TripPaths, service_day_start, service_ids_on

__all__ = ["TURNAROUND_M", "PositionAssignment", "assign_positions", "assignment_accuracy", "turnaround_neighbours"]

FloatArray = npt.NDArray[np.float64]

#: A bus this close (m) to the terminal two consecutive trips of its block share stands at the turnaround.
TURNAROUND_M = 200.0


class PositionAssignment(NamedTuple):
    """Trips inferred for positions (`assign_positions`), per row.

    ``trips`` (``""`` unassigned) and ``day_start_s`` (epoch s of the trip's service day
    start, NaN unassigned) are the causal live choices; ``retro_trips`` and
    ``retro_day_start_s`` the retrospective ones (None unless asked for).
    """

    trips: npt.NDArray[np.str_]
    day_start_s: FloatArray
    retro_trips: npt.NDArray[np.str_] | None = None
    retro_day_start_s: FloatArray | None = None


def assign_positions(feed: Feed, paths: TripPaths, avl: pd.DataFrame,
                     config: AssignmentConfig | None = None, *, retrospective: bool = False
                     ) -> PositionAssignment:
    """Trip and service day of every position from vehicle ids and positions.

    The ``trip_id`` and ``start_date`` columns are not read; a ``route_id`` of a route
    running that day restricts the ping to that route's trips. One forward pass runs over
    each two consecutive local dates of the pings, whose candidates are the trips of those
    service days and the previous day's still running, so a vehicle keeps its block across
    midnight and a ping after midnight may belong to the previous service day.

    Parameters
    ----------
    feed, paths : Feed, TripPaths
        The schedule and its paths.
    avl : DataFrame
        Positions from `telematics.avl.read_avl`.
    config : AssignmentConfig, optional
        Thresholds.
    retrospective : bool
        Also explain each ping by each vehicle's whole history
        (`TripAssigner.assign_retrospective`, for stored days and reports).

    Returns
    -------
    PositionAssignment
    """
    n = len(avl)
    out = [np.full(n, "", dtype=object), np.full(n, np.nan), np.full(n, "", dtype=object), np.full(n, np.nan)]
    if n:
        xy = paths.projection.to_xy(avl["lat"].to_numpy(), avl["lon"].to_numpy())
        times = avl["time_s"].to_numpy(dtype=np.float64)
        local = pd.to_datetime(times, unit="s", utc=True).tz_convert(feed.timezone)
        dates = np.array([d.date() for d in local], dtype=object)
        vehicles = avl["vehicle_id"].to_numpy(dtype=str)
        routes = avl["route_id"].to_numpy(dtype=str) if "route_id" in avl else None
        bearing = avl["bearing"].to_numpy(dtype=np.float64)
        chunks: list[list[dt.date]] = []
        for d in sorted(set(dates.tolist())):  # consecutive dates two by two: one pass across their midnight
            if chunks and len(chunks[-1]) == 1 and (d - chunks[-1][0]).days == 1:
                chunks[-1].append(d)
            else:
                chunks.append([d])
        for chunk in chunks:
            main = chunk[0]
            start = service_day_start(main, feed.timezone)
            rows = np.flatnonzero(np.isin(dates, np.array(chunk, dtype=object)))
            others = [(d, service_day_start(d, feed.timezone)) for d in (main - dt.timedelta(days=1), *chunk[1:])]
            assigner = TripAssigner(feed, paths, main, start, config, others,
                                    (float(times[rows].min() - start), float(times[rows].max() - start)))
            args = (vehicles[rows], times[rows], xy[rows], bearing[rows], None if routes is None else routes[rows])
            chosen = assigner.assign_candidates(*args[:4], routes=args[4])
            results = [chosen]
            if retrospective:
                results.append(assigner.assign_retrospective(*args, causal=chosen))
            for k, result in enumerate(results):
                got = result >= 0
                out[2 * k][rows[got]] = assigner.trip_ids[result[got]]
                out[2 * k + 1][rows[got]] = assigner.day_starts_s[result[got]]
    return PositionAssignment(out[0].astype(str), out[1], out[2].astype(str) if retrospective else None,
                              out[3] if retrospective else None)


def assignment_accuracy(feed: Feed, paths: TripPaths, avl: pd.DataFrame,
                        config: AssignmentConfig | None = None) -> float | None:
    """Share of positions assigned to their recorded trip when the trip ids are hidden.

    Parameters
    ----------
    avl : DataFrame
        From `telematics.avl.read_avl`; its ``trip_id`` is the ground truth and is
        not shown to the assigner (nor ``route_id``); the service day is the ping's local date.
    """
    truth = avl["trip_id"].to_numpy(dtype=str)
    if len(avl) == 0 or (truth == "").any():
        return None
    hidden = avl.assign(trip_id="", route_id="", start_date="")
    got = assign_positions(feed, paths, hidden, config).trips
    return round(int((got == truth).sum()) / len(avl), 4)


def turnaround_neighbours(feed: Feed, paths: TripPaths, avl: pd.DataFrame, truth_trip: npt.ArrayLike,
                          truth_day0: npt.ArrayLike, got_trip: npt.ArrayLike, got_day0: npt.ArrayLike,
                          radius_m: float = TURNAROUND_M) -> npt.NDArray[np.bool_]:
    """Pings given the trip just before or after their recorded one in the same block, at the
    terminal the two share.

    Parameters
    ----------
    feed, paths : Feed, TripPaths
        The schedule (blocks, stop times, stops) and its paths (their projection, m).
    avl : DataFrame
        The pings (``lat``, ``lon``), one row per entry of the arrays below.
    truth_trip, truth_day0 : array_like
        Recorded trip id and its service day's start (epoch s) per ping.
    got_trip, got_day0 : array_like
        Given trip id (``""`` none) and service day start per ping.
    radius_m : float
        How close (m) to the earlier trip's last stop or the later trip's first stop the ping is.

    Returns
    -------
    ndarray of bool
        True where the given trip is the recorded trip's predecessor or successor in its block
        (same service day, among the block's trips running that day) and the ping lies within
        ``radius_m`` of the stop where the earlier of the two ends or the later begins.
    """
    truth = np.asarray(truth_trip, dtype=str)
    got = np.asarray(got_trip, dtype=str)
    day0 = np.asarray(truth_day0, dtype=np.float64)
    out = np.zeros(len(truth), dtype=bool)
    if not len(truth) or not len(feed.trips):
        return out
    rows = feed.stop_times.sort_values(["trip_id", "stop_sequence"]).groupby("trip_id")
    ends = pd.DataFrame({"first_stop": rows["stop_id"].first(), "last_stop": rows["stop_id"].last(),
                         "start_s": rows["departure_time"].min()})
    trips = feed.trips.set_index("trip_id")[["block_id", "service_id"]].join(ends, how="inner")
    trips = trips[trips["block_id"] != ""]
    stops = feed.stops.set_index("stop_id")
    stop_xy = paths.projection.to_xy(stops["stop_lat"].to_numpy(), stops["stop_lon"].to_numpy())
    same_day = np.isfinite(day0) & (day0 == np.asarray(got_day0, dtype=np.float64))
    for start_s in np.unique(day0[same_day]):
        date = pd.Timestamp(start_s + 43200.0, unit="s", tz="UTC").tz_convert(feed.timezone).date()
        info = trips[trips["service_id"].isin(service_ids_on(feed, date))].sort_values(["block_id", "start_s"])
        at = np.flatnonzero(same_day & (day0 == start_s))
        t, g = info.index.get_indexer(pd.Index(truth[at])), info.index.get_indexer(pd.Index(got[at]))
        known = (t >= 0) & (g >= 0)
        at, t, g = at[known], t[known], g[known]
        block = info["block_id"].to_numpy(dtype=str)
        rank = info.groupby("block_id").cumcount().to_numpy(dtype=np.int64)
        step = rank[g] - rank[t]
        neighbour = (block[t] == block[g]) & (np.abs(step) == 1)
        earlier, later = np.where(step > 0, t, g), np.where(step > 0, g, t)
        end_xy = stop_xy[stops.index.get_indexer(pd.Index(info["last_stop"].to_numpy(dtype=str)[earlier]))]
        start_xy = stop_xy[stops.index.get_indexer(pd.Index(info["first_stop"].to_numpy(dtype=str)[later]))]
        ping_xy = paths.projection.to_xy(avl["lat"].to_numpy()[at], avl["lon"].to_numpy()[at])
        near = np.minimum(np.hypot(*(ping_xy - end_xy).T), np.hypot(*(ping_xy - start_xy).T)) <= radius_m
        out[at] = neighbour & near
    return out

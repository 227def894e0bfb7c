"""The days `telematics.holding_sim` replays: a `SimDay` from recorded AVL or drawn around a timetable.

With AVL (`recorded_day`), the day is the recorded one. Each vehicle run is matched on its
trip path as ``its eval arrivals`` matches it (`telematics.matching.match_monotone`,
smoothed), and the times it reaches each stop (`REACH_M` before it) and leaves it
(`LEAVE_M` beyond) are interpolated between pings (`telematics.arrivals.passing_times`);
gaps inside a run are interpolated on the timetable and a layover taken after the first
stop is cut (`_end_layover`). At each stop the recorded dwell (leave - reach) splits into
the boarding dwell the passenger model expects after the recorded headway
(`telematics.holding_sim.expected_dwell`, simulated afresh), the wait of an early bus for
its scheduled time at a control stop (``wait_s``, kept only without control) and the rest
(``extra_dwell_s``, always kept); the running time is the rest of the time to the next
departure, so the uncontrolled simulation replays the day. The controller predicts with
the day's median leave-to-leave time per segment (a historical profile).

Without AVL (`synthetic_day`, e.g. the Cairns timetable), running times are drawn around
the schedule by `RunningTimeModel` (fitted on the WMATA day, see its docstring) and the
controller predicts with the scheduled times.

Control stops are `telematics.holding.control_stops` (the live advice uses the same): the
feed's timepoints (``stop_times.timepoint`` = 1) when it marks some, else each trip's first
stop and every stop `CONTROL_SPACING_S` of schedule after the last one; never a trip's last
stop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.arrivals import passing_times
from telematics.frequencies import expand_frequencies
from telematics.gtfs import Feed, service_day_start, service_ids_on, trip_paths
from telematics.holding import CONTROL_SPACING_S, control_stops, feed_timepoints
from telematics.holding_sim import SimDay, expected_dwell
from telematics.kpi import headway_regularity
from telematics.matching import match_monotone, projection_candidates

__all__ = [
    "CONTROL_SPACING_S",
    "LAYOVER_EARLY_S",
    "LAYOVER_SLACK_S",
    "LEAVE_M",
    "REACH_M",
    "RunningTimeModel",
    "has_timepoints",
    "recorded_day",
    "synthetic_day",
]

FloatArray = npt.NDArray[np.float64]

#: A stop is reached this far (m) before its point on the path and left this far beyond it.
REACH_M, LEAVE_M = 25.0, 40.0
#: A segment this much (s) over its schedule, begun this much (s) early, hides a layover.
LAYOVER_SLACK_S, LAYOVER_EARLY_S = 60.0, 300.0


@dataclass(frozen=True)
class RunningTimeModel:
    """Stochastic running times around the schedule (for a feed without AVL).

    A trip leaves its first stop ``N(origin_mean_s, origin_sd_s)`` after its scheduled
    departure; each segment's running time is its scheduled time (less the expected dwell
    at the scheduled headway) times a trip factor ``exp(trip_sigma Z - trip_sigma^2 / 2)``
    and a factor drawn the same way with ``chunk_sigma`` for each run of consecutive
    segments spanning at least ``chunk_s`` of schedule (mean-preserving lognormals).
    Defaults fitted on the WMATA day (2026-02-16, 78 runs with >= 95 % of passings seen):
    origin delay median 11 s, robust sd (1.4826 MAD) 130 s; log(recorded / scheduled) trip
    time robust sd 0.12 (0.11 sd); per ~220 s chunk within a trip, log residual robust sd 0.36.
    """

    origin_mean_s: float = 10.0
    origin_sd_s: float = 130.0
    trip_sigma: float = 0.11
    chunk_sigma: float = 0.36
    chunk_s: float = 220.0


def _day_rows(feed: Feed, day: dt.date) -> pd.DataFrame:
    """Stop times of the trips running on ``day`` with ``route_id`` and epoch ``sched_s``."""
    trips = feed.trips[feed.trips["service_id"].isin(service_ids_on(feed, day))]
    st = feed.stop_times
    tp = feed_timepoints(st)
    rows = st.assign(tp=tp if tp is not None else np.nan).merge(trips[["trip_id", "route_id"]], on="trip_id")
    rows["sched_s"] = service_day_start(day, feed.timezone) + rows["departure_time"].to_numpy(np.float64)
    return rows.sort_values(["trip_id", "stop_sequence"], kind="stable").reset_index(drop=True)


def _route_headways(timetable: pd.DataFrame, routes: Sequence[str]) -> FloatArray:
    """Mean scheduled headway (s) per route: `telematics.kpi.headway_regularity`'s ``scheduled_headway_s``."""
    frame = timetable[["route_id", "stop_id", "sched_s"]].rename(columns={"sched_s": "time_s"})
    hw = headway_regularity(frame, frame, frequent_headway_s=np.inf).set_index("route_id")["scheduled_headway_s"]
    return np.asarray([float(hw.get(r, np.inf)) for r in routes])


def _trip_ptr(trip: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    cut = np.flatnonzero(np.r_[True, trip[1:] != trip[:-1]])
    return np.r_[cut, len(trip)].astype(np.int64)


def _stop_keys(rows: pd.DataFrame) -> npt.NDArray[np.int64]:
    """A code per (route, stop)."""
    pair = rows["route_id"] + "\x1f" + rows["stop_id"]
    return np.asarray(pd.factorize(pair, sort=True)[0], dtype=np.int64)


def _prior_headway(key: npt.NDArray[np.int64], t: FloatArray, fallback: FloatArray) -> FloatArray:
    """Gap (s) since the previous time at the same key (``fallback`` for the first / unknown)."""
    order = np.lexsort((t, key))
    gap = np.r_[np.nan, np.diff(t[order])]
    gap[np.r_[True, key[order][1:] != key[order][:-1]]] = np.nan
    out = np.empty(len(key))
    out[order] = gap
    return np.where(np.isfinite(out), out, fallback)


def _match(feed: Feed, avl: pd.DataFrame) -> dict[str, tuple[str, FloatArray, FloatArray]]:
    """Per trip (the vehicle run seeing most stops): vehicle id and the times (epoch s, NaN
    unseen) its pings reach `REACH_M` before and pass `LEAVE_M` beyond each stop, from the
    smoothed match ``its eval arrivals`` scores against."""
    paths = trip_paths(feed)
    xy = paths.projection.to_xy(avl["lat"].to_numpy(), avl["lon"].to_numpy())
    t_all = avl["time_s"].to_numpy(dtype=np.float64)
    keys = avl["vehicle_id"] + "\x1f" + avl["trip_id"] + "\x1f" + avl["start_date"]
    best: dict[str, tuple[int, tuple[str, FloatArray, FloatArray]]] = {}
    for idx in keys.groupby(keys, sort=False).indices.values():
        rows = np.sort(np.asarray(idx, dtype=np.int64))
        trip = str(avl["trip_id"].iloc[rows[0]])
        if trip not in paths.trip_path or len(rows) < 2:
            continue
        along, offset = projection_candidates(paths[trip], xy[rows], k=4, max_offset_m=150.0)
        match = match_monotone(along, offset, t_all[rows])
        dist = paths.stop_dist_m[trip]
        reach = passing_times(t_all[rows], match.along_m, dist - REACH_M).time_s
        leave = passing_times(t_all[rows], match.along_m, dist + LEAVE_M).time_s
        reach[0] = leave[0]  # the first stop: only leaving it is seen (a layover before)
        seen = int((np.isfinite(reach) & np.isfinite(leave)).sum())
        if seen >= 2 and seen > best.get(trip, (0, None))[0]:
            best[trip] = (seen, (str(avl["vehicle_id"].iloc[rows[0]]), reach, leave))
    return {trip: v for trip, (_, v) in best.items()}


def recorded_day(feed: Feed, avl: pd.DataFrame, *, rate_per_s: float, board_s: float, dead_s: float,
                 routes: Sequence[str] | None = None) -> tuple[SimDay, list[str], FloatArray, dt.date]:
    """The day recorded in ``avl`` (its most common service date) as a `SimDay`.

    Each trip spans its stops from the first to the last seen (gaps interpolated on the
    timetable). Per stop: dwell = leave - reach; of it, the boarding dwell the passenger
    model expects after the recorded headway is simulated, the wait of an early bus until
    its scheduled time at a control stop is ``wait_s`` and the rest ``extra_dwell_s``;
    running time = the rest of the time to the next departure (next reach - leave, less
    the next stop's boarding dwell beyond the recorded dwell). A layover after the first
    stop is cut (`_end_layover`). ``recorded_s`` is this cleaned recording.

    Returns the day, the route ids (by route code), their mean scheduled headways (s, over
    the recorded period) and the service date.
    """
    feed = expand_frequencies(feed)
    dates = avl["start_date"][avl["start_date"] != ""]
    if dates.empty:
        raise ValueError("AVL has no start_date: cannot tell its service day")
    day = dt.datetime.strptime(str(dates.mode().iloc[0]), "%Y%m%d").date()
    avl = avl[avl["trip_id"] != ""]
    all_rows = _day_rows(feed, day)
    if routes is not None:
        avl = avl[avl["trip_id"].isin(set(all_rows.loc[all_rows["route_id"].isin(list(routes)), "trip_id"]))]
    avl = avl.reset_index(drop=True)
    by_trip = dict(iter(all_rows.groupby("trip_id", sort=False)))
    parts = []
    for trip, (vehicle, reach, leave) in _match(feed, avl).items():
        if trip not in by_trip or (routes is not None and by_trip[trip]["route_id"].iloc[0] not in routes):
            continue
        seen = np.flatnonzero(np.isfinite(reach) & np.isfinite(leave))
        lo, hi = int(seen[0]), int(seen[-1])
        r = by_trip[trip].iloc[lo:hi + 1].copy()
        sched = r["sched_s"].to_numpy(np.float64)
        ok = np.isfinite(reach[lo:hi + 1]) & np.isfinite(leave[lo:hi + 1])
        r["reach_s"] = np.interp(sched, sched[ok], reach[lo:hi + 1][ok])
        r["leave_s"] = np.maximum(np.interp(sched, sched[ok], leave[lo:hi + 1][ok]), r["reach_s"])
        if lo == 0:
            full = by_trip[trip]["sched_s"].to_numpy(np.float64)
            ok &= ~_end_layover(r, sched, full[-1] - full[0])
        r["seen"] = ok
        r["origin"] = np.arange(lo, hi + 1) == 0
        r["vehicle_id"] = vehicle
        parts.append(r)
    if not parts:
        raise ValueError("no AVL run matched a trip of the feed")
    rows = pd.concat(parts, ignore_index=True).sort_values(["trip_id", "stop_sequence"], kind="stable")
    rows = rows.reset_index(drop=True)
    route_ids = sorted(rows["route_id"].unique())
    code = {r: n for n, r in enumerate(route_ids)}
    lo_t, hi_t = float(rows["leave_s"].min()), float(rows["reach_s"].max())
    route_h = _route_headways(all_rows[(all_rows["sched_s"] >= lo_t) & (all_rows["sched_s"] <= hi_t)], route_ids)

    ptr = _trip_ptr(rows["trip_id"].to_numpy())
    first, last = np.zeros(len(rows), dtype=bool), np.zeros(len(rows), dtype=bool)
    first[ptr[:-1]], last[ptr[1:] - 1] = True, True
    route = np.asarray([code[r] for r in rows["route_id"]], dtype=np.int64)
    key = _stop_keys(rows)
    sched = rows["sched_s"].to_numpy(np.float64)
    reach, leave = rows["reach_s"].to_numpy(np.float64), rows["leave_s"].to_numpy(np.float64)
    passing = np.where(last, reach, leave)
    control = control_stops(sched, ptr, _tp(rows))
    boarding = expected_dwell(_prior_headway(key, leave, route_h[route]), rate_per_s, board_s, dead_s)
    dwell = np.where(first | last, 0.0, leave - reach)
    wait = np.where(control & ~first, np.clip(np.minimum(leave, sched) - reach - boarding, 0.0, dwell), 0.0)
    extra = np.where(first | last, 0.0, np.maximum(dwell - boarding - wait, 0.0))
    # running time: the rest of the recorded leave-to-leave time (a dwell shorter than the
    # boarding model's expectation shortens it, so the uncontrolled day keeps its times)
    stop_time = np.where(last, 0.0, boarding) + extra + wait
    run = np.where(last, 0.0, np.maximum(np.r_[passing[1:] - stop_time[1:], 0.0] - leave, 0.0))
    # historical profile: the day's median leave-to-leave time per segment of the route
    seg = pd.DataFrame({"k": key, "n": np.r_[key[1:], -1], "d": np.r_[np.diff(passing), 0.0]})
    profile = np.where(last, 0.0, seg.assign(d=np.where(last, np.nan, seg["d"])).groupby(["k", "n"])["d"]
                       .transform("median").to_numpy(np.float64))
    trip_next = np.full(len(ptr) - 1, -1, dtype=np.int64)
    veh, start = rows["vehicle_id"].to_numpy()[ptr[:-1]], leave[ptr[:-1]]
    seq = np.lexsort((start, veh))
    same = veh[seq][1:] == veh[seq][:-1]
    trip_next[seq[:-1][same]] = seq[1:][same]
    recorded = passing  # the cleaned recording: gaps interpolated, layovers cut
    sim_day = SimDay(trip_ptr=ptr, trip_route=route[ptr[:-1]], trip_next=trip_next, start_s=start,
                     end_s=reach[ptr[1:] - 1], stop_key=key, sched_s=sched, run_s=run, extra_dwell_s=extra,
                     wait_s=wait, profile_s=np.nan_to_num(profile), control=control,
                     origin=rows["origin"].to_numpy(bool), recorded_s=recorded)
    return sim_day, route_ids, route_h, day


def _end_layover(r: pd.DataFrame, sched: FloatArray, duration_s: float) -> npt.NDArray[np.bool_]:
    """Move the rows before a layover taken after the first stop to the layover's end.

    A bus that leaves its first stops early and then stands (the terminal loop passes
    them): the last leave-to-leave time in the trip's first third (of ``duration_s``, the
    whole trip's scheduled duration) that is `LAYOVER_SLACK_S` longer than scheduled while
    the bus is `LAYOVER_EARLY_S` early is cut to its scheduled time by delaying the rows before it and
    the arrival at the stop where it stood (``r``'s ``reach_s``/``leave_s``). Returns the
    rows changed.
    """
    reach, leave = r["reach_s"].to_numpy(np.float64), r["leave_s"].to_numpy(np.float64)
    seg, plan = np.diff(leave), np.diff(sched)  # leave to leave: the stand may be at the next stop
    early = leave[:-1] < sched[:-1] - LAYOVER_EARLY_S
    first_part = sched[:-1] - sched[0] <= duration_s / 3.0
    found = np.flatnonzero((seg > plan + LAYOVER_SLACK_S) & early & first_part)
    moved = np.zeros(len(r), dtype=bool)
    if len(found):
        m = int(found[-1])
        moved[:m + 1] = True
        shift = seg[m] - max(plan[m], 0.0)
        new_reach = reach + shift * moved
        new_reach[m + 1] = min(reach[m + 1] + shift, leave[m + 1])
        r["reach_s"], r["leave_s"] = new_reach, leave + shift * moved
        moved[m + 1] = True
    return moved


def _tp(rows: pd.DataFrame) -> npt.NDArray[np.bool_] | None:
    tp = rows["tp"].to_numpy()
    return None if pd.isna(tp).all() else np.asarray(tp == 1)


def synthetic_day(feed: Feed, day: dt.date, rng: np.random.Generator, *, rate_per_s: float, board_s: float,
                  dead_s: float, model: RunningTimeModel = RunningTimeModel(),
                  routes: Sequence[str] | None = None) -> tuple[SimDay, list[str], FloatArray]:
    """A day of ``feed``'s timetable with running times drawn by ``model`` (no vehicle
    chaining, no recorded extra dwell or waits: without control buses run freely).

    Returns the day, the route ids (by route code) and their mean scheduled headways (s).
    """
    rows = _day_rows(expand_frequencies(feed), day)
    if routes is not None:
        rows = rows[rows["route_id"].isin(list(routes))].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"no trips run on {day}")
    route_ids = sorted(rows["route_id"].unique())
    route_h = _route_headways(rows, route_ids)
    code = {r: n for n, r in enumerate(route_ids)}
    route = np.asarray([code[r] for r in rows["route_id"]], dtype=np.int64)
    sched = rows["sched_s"].to_numpy(np.float64)
    ptr = _trip_ptr(rows["trip_id"].to_numpy())
    first, last = np.zeros(len(rows), dtype=bool), np.zeros(len(rows), dtype=bool)
    first[ptr[:-1]], last[ptr[1:] - 1] = True, True
    tid = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    h = np.where(np.isfinite(route_h[route]), route_h[route], 3600.0)
    seg_sched = np.where(last, 0.0, np.r_[np.diff(sched), 0.0])
    dwell_next = np.r_[np.where(last[1:] | first[1:], 0.0, expected_dwell(h[1:], rate_per_s, board_s, dead_s)), 0.0]
    base = np.maximum(seg_sched - dwell_next, 0.0)
    since = sched - sched[ptr[:-1]][tid]
    chunk = np.unique(tid * 1_000_000 + (since // model.chunk_s).astype(np.int64), return_inverse=True)[1]
    z_trip = rng.standard_normal(len(ptr) - 1)
    z_chunk = rng.standard_normal(int(chunk.max()) + 1)
    factor = np.exp(model.trip_sigma * z_trip[tid] - model.trip_sigma ** 2 / 2
                    + model.chunk_sigma * z_chunk[chunk] - model.chunk_sigma ** 2 / 2)
    start = sched[ptr[:-1]] + model.origin_mean_s + model.origin_sd_s * rng.standard_normal(len(ptr) - 1)
    zero = np.zeros(len(rows))
    sim_day = SimDay(trip_ptr=ptr, trip_route=route[ptr[:-1]], trip_next=np.full(len(ptr) - 1, -1, dtype=np.int64),
                     start_s=start, end_s=sched[ptr[1:] - 1], stop_key=_stop_keys(rows), sched_s=sched,
                     run_s=base * factor, extra_dwell_s=zero, wait_s=zero, profile_s=seg_sched,
                     control=control_stops(sched, ptr, _tp(rows)), origin=first,
                     recorded_s=np.full(len(rows), np.nan))
    return sim_day, route_ids, route_h






def has_timepoints(feed: Feed) -> bool:
    """Whether the feed marks timepoints (the control stops)."""
    return feed_timepoints(feed.stop_times) is not None

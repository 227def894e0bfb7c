"""Trip assignment: which trip of the service day a vehicle is running.

`TripAssigner` projects every ping onto every path in use that day (vectorised per
vehicle and path) and derives, per ping and candidate trip, the offset from the path,
the schedule deviation at the projected position and the heading mismatch. A causal
forward pass over the day's trips (one cost vector per vehicle, pings replayed in time
order across the fleet by `TripAssigner.assign_fleet`) then picks each ping's trip:
a vehicle keeps its block (changing block costs far more than moving on to the block's
next trip), lateness costs less than earliness (buses run late, rarely early), waiting
on a trip's last stretch favours the block's next trip, and a finished trip no longer
fits. Since one block is run by one vehicle, each ping's choice is the vehicle's share
of the least-cost assignment of blocks to all active vehicles (Hungarian algorithm over
their accumulated costs), which separates vehicles a few minutes off schedule on
close headways. A reported trip is
used when plausible; a vehicle that has not moved yet is not assigned; after a silence
longer than ``stale_after_s`` the vehicle is stale and its assignment is inferred anew.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import linear_sum_assignment

from telematics.gtfs import Feed, TripPaths, service_day_start, service_ids_on
from telematics.matching import project_points

OFF_COST = 12.0  # cost of a ping for a trip it does not fit
SWITCH_COST = 1000.0  # cost of changing to another block (a vehicle keeps its block)
LOOSE_SWITCH_COST = 12.0  # cost of changing to a trip without a block
BLOCK_SWITCH_COST = 4.0  # cost of moving on to a later trip of the same block
FINISHED_M = 60.0  # a trip is finished this close (m) to its last stop (GPS error and terminal stop placement)
LATE_SCALE_S = 480.0  # lateness (s) costing one unit
ENDING_COST = 1.0  # cost per ping of a trip whose last stretch the vehicle is on
ORIGIN_OFFSET_SCALE_M = 60.0  # offset (m) costing one unit at a trip's origin
EARLY_SCALE_S = 120.0  # earliness (s) costing one unit away from the origin
TAKEN_COST = 1e6  # cost of a block another vehicle holds by its reported trip

__all__ = ["AssignmentConfig", "TripAssigner", "assignment_accuracy", "is_stale"]

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
        Largest distance from the path (m) at the origin (layover spots lie off the path).
    """

    max_offset_m: float = 60.0
    max_early_s: float = 600.0
    max_late_s: float = 2400.0
    min_move_m: float = 50.0
    stale_after_s: float = 600.0
    end_margin_m: float = 700.0
    origin_offset_m: float = 120.0


def is_stale(last_seen_s: npt.ArrayLike, now_s: float, stale_after_s: float) -> npt.NDArray[np.bool_]:
    """True where a vehicle's last ping (epoch s) is older than ``stale_after_s`` at ``now_s``."""
    return np.asarray(now_s - np.asarray(last_seen_s, dtype=np.float64) > stale_after_s)


class TripAssigner:
    """Assigns trips of one service day to vehicles.

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
    """

    def __init__(self, feed: Feed, paths: TripPaths, day: dt.date, day_start_s: float,
                 config: AssignmentConfig | None = None):
        self.config = config or AssignmentConfig()
        self.paths = paths
        self.day_start_s = day_start_s
        services = service_ids_on(feed, day)
        trips = feed.trips[feed.trips["service_id"].isin(list(services))]
        st = feed.stop_times[feed.stop_times["trip_id"].isin(trips["trip_id"])]
        first = st.groupby("trip_id", sort=False)["departure_time"].min()
        trips = trips.set_index("trip_id").loc[first.index]
        order = np.argsort(first.to_numpy(), kind="stable")
        self.trip_ids = first.index.to_numpy(dtype=str)[order]
        self.block = trips["block_id"].to_numpy(dtype=str)[order]
        self.start_s = first.to_numpy(dtype=np.float64)[order]
        self.path_key = np.array([paths.trip_path[t] for t in self.trip_ids], dtype=str)
        times = st.groupby("trip_id", sort=False)["arrival_time"].agg(list)
        self._sched = {t: np.asarray(times[t], dtype=np.float64) for t in self.trip_ids}
        self.end_s = np.array([self._sched[t][-1] for t in self.trip_ids])
        self.last_stop_m = np.array([paths.stop_dist_m[t][-1] for t in self.trip_ids])
        self._index = {t: i for i, t in enumerate(self.trip_ids)}
        # per path: trips grouped by their stop positions, with their schedules as one matrix
        grouped: dict[tuple[str, bytes], list[int]] = {}
        for c, trip in enumerate(self.trip_ids.tolist()):
            dist = np.asarray(paths.stop_dist_m[trip], dtype=np.float64)
            grouped.setdefault((str(self.path_key[c]), dist.tobytes() + self._sched[trip].size.to_bytes(4, "little")),
                               []).append(c)
        self._groups: dict[str, list[tuple[npt.NDArray[np.int64], FloatArray, FloatArray]]] = {}
        for (key, _), members in grouped.items():
            trip = str(self.trip_ids[members[0]])
            self._groups.setdefault(key, []).append((
                np.array(members, dtype=np.int64), np.asarray(paths.stop_dist_m[trip], dtype=np.float64),
                np.vstack([self._sched[str(self.trip_ids[c])] for c in members])))

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
            if len(rows) == 0:
                continue
            line = self.paths.paths[str(key)]
            a, off = project_points(line, xy[rows])
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

    def _costs(self, t: FloatArray, p: FloatArray, b: FloatArray
               ) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_],
                          npt.NDArray[np.bool_]]:
        """Per ping x trip: cost without the delay term, delay (s), early-time scale (s),
        plausibility; and per ping whether the vehicle has moved yet."""
        cfg = self.config
        offset, along, delay, heading = self._features(t, p, b)
        plausible = (offset <= cfg.max_offset_m) & (delay >= -cfg.max_early_s) & (
            delay <= cfg.max_late_s)
        at_origin = along < cfg.end_margin_m
        # layover at the origin terminal: being early there is normal
        plausible |= (offset <= cfg.origin_offset_m) & at_origin & (delay >= -2 * cfg.max_late_s) & (
            delay <= cfg.max_late_s)
        early_scale = np.where(at_origin, 900.0, EARLY_SCALE_S)
        cost = np.minimum(offset / np.where(at_origin, ORIGIN_OFFSET_SCALE_M, 30.0), 3.0) ** 2
        cost += np.minimum(np.nan_to_num(heading / 45.0), 3.0) ** 2
        finished = along >= self.last_stop_m[None, :] - FINISHED_M
        # waiting near a trip's end means the block's next trip is about to start
        cost += np.where(along >= self.last_stop_m[None, :] - cfg.end_margin_m, ENDING_COST, 0.0)
        plausible &= ~finished
        moved = np.hypot(*(p - p[0]).T) >= cfg.min_move_m if len(p) else np.zeros(0, bool)
        started = np.maximum.accumulate(moved) if len(p) else moved
        return cost, np.where(np.isfinite(delay), delay, 1e6), early_scale, plausible, started

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
                     reported: npt.ArrayLike | None = None) -> npt.NDArray[np.str_]:
        """Trip of each ping of many vehicles, replayed in time order (causal).

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

        Returns
        -------
        ndarray of str, shape (m,)
            Assigned trip per ping, ``""`` when unassigned.
        """
        t = np.asarray(times_s, dtype=np.float64)
        p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        b = np.full(len(t), np.nan) if bearing is None else np.asarray(bearing, dtype=np.float64)
        rep = np.full(len(t), "", dtype=object) if reported is None else np.asarray(reported, object)
        _, vid = np.unique(np.asarray(vehicle), return_inverse=True)
        per_vehicle = []
        for v in range(int(vid.max()) + 1 if len(vid) else 0):
            rows = np.flatnonzero(vid == v)
            rows = rows[np.argsort(t[rows], kind="stable")]
            per_vehicle.append((rows, *self._costs(t[rows], p[rows], b[rows])))
        position = np.zeros(len(t), dtype=np.int64)
        for rows, *_ in per_vehicle:
            position[rows] = np.arange(len(rows))
        block_order, cuts, has_block, unit_cuts, switch_cost = self.blocks()
        totals = np.zeros((len(per_vehicle), len(self.trip_ids)))
        last_seen = np.full(len(per_vehicle), -np.inf)
        is_started = np.zeros(len(per_vehicle), dtype=bool)
        out = np.full(len(t), "", dtype=object)
        cfg = self.config
        for row in np.argsort(t, kind="stable"):
            v = int(vid[row])
            i = int(position[row])
            rows, cost, delay, early_scale, plausible, started = per_vehicle[v]
            total = totals[v]
            if i and t[row] - t[rows[i - 1]] > cfg.stale_after_s:
                total[:] = 0.0
            r = self._index.get(str(rep[row]), -1)
            reported_ok = r >= 0 and bool(plausible[i, r])
            totals[v] = self._forward(total, cost[i], delay[i], early_scale[i], plausible[i], r if reported_ok else -1,
                                      switch_cost, block_order, cuts, has_block)
            last_seen[v] = t[row]
            is_started[v] = bool(started[i])
            if reported_ok:
                chosen = r
            elif started[i]:
                chosen = self._joint_choice(v, totals, (t[row] - last_seen <= cfg.stale_after_s)
                                            & is_started, block_order, unit_cuts)
                chosen = chosen if chosen >= 0 and plausible[i, chosen] else -1
            else:
                chosen = -1
            if chosen >= 0:
                out[row] = self.trip_ids[chosen]
        return out.astype(str)

    def blocks(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_],
                              npt.NDArray[np.int64], FloatArray]:
        """Block structure of the day's trips: trip order by (block, start), first position of
        each block in it, whether it is a real block, first position of each assignment unit
        (a block, or a trip without one) and the cost of switching to each trip."""
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

    def _forward(self, total: FloatArray, cost: FloatArray, delay: FloatArray, early_scale: FloatArray,
                 plausible: npt.NDArray[np.bool_], reported: int, switch_cost: FloatArray,
                 block_order: npt.NDArray[np.int64], cuts: npt.NDArray[np.int64],
                 has_block: npt.NDArray[np.bool_]) -> FloatArray:
        """One ping's step of a vehicle's forward pass: its accumulated cost per trip (regret)."""
        step = cost + np.where(delay >= 0, delay / LATE_SCALE_S, -delay / early_scale)
        step = np.where(plausible, np.minimum(step, OFF_COST), OFF_COST)
        if reported >= 0:
            step += OFF_COST
            step[reported] = 0.0
        switch = total.min() + switch_cost
        via_block = np.empty_like(total)
        via_block[block_order] = self._block_prefix_min(total[block_order], cuts, has_block) + BLOCK_SWITCH_COST
        total = np.minimum(np.minimum(total, switch), via_block) + step
        return total - total.min()

    @staticmethod
    def _joint_choice(v: int, totals: FloatArray, active: npt.NDArray[np.bool_],
                      block_order: npt.NDArray[np.int64], unit_cuts: npt.NDArray[np.int64],
                      taken: npt.NDArray[np.bool_] | None = None) -> int:
        """Trip of vehicle ``v`` in the least-cost assignment of blocks to the active vehicles.

        Each active vehicle's cost of a block is its accumulated cost (regret) of the
        block's best trip; one block goes to at most one vehicle (Hungarian algorithm).
        ``taken`` (per assignment unit) marks blocks already held by other vehicles.
        """
        others = np.flatnonzero(active)
        if v not in others:
            others = np.r_[others, v]
        sorted_totals = totals[np.ix_(others, block_order)]
        block_cost = np.minimum.reduceat(sorted_totals, unit_cuts, axis=1)
        if taken is not None:
            block_cost[:, taken] += TAKEN_COST
        vehicles, blocks = linear_sum_assignment(block_cost)
        hit = np.flatnonzero(others[vehicles] == v)
        if len(hit) == 0:
            return -1  # more vehicles than blocks: this one got none
        unit = int(blocks[hit[0]])
        if taken is not None and taken[unit]:
            return -1
        lo = unit_cuts[unit]
        hi = unit_cuts[unit + 1] if unit + 1 < len(unit_cuts) else len(block_order)
        members = block_order[lo:hi]
        return int(members[np.argmin(totals[v, members])])

    @staticmethod
    def _block_prefix_min(values: FloatArray, cuts: npt.NDArray[np.int64],
                          has_block: npt.NDArray[np.bool_]) -> FloatArray:
        """Minimum over the earlier trips of the same block (large for a block's first trip)."""
        shifted = np.r_[np.inf, values[:-1]]
        shifted[cuts] = np.inf
        seg = np.repeat(np.arange(len(cuts)), np.diff(np.r_[cuts, len(values)]))
        # prefix minimum restarted at each block: offset blocks so one accumulate suffices
        big = 1e9 * (len(cuts) - seg)
        out = np.minimum.accumulate(np.minimum(shifted, 1e8) + big) - big
        blockless = np.repeat(~has_block, np.diff(np.r_[cuts, len(values)]))
        return np.where(blockless, 1e8, out)


def assignment_accuracy(feed: Feed, paths: TripPaths, avl: pd.DataFrame,
                        config: AssignmentConfig | None = None) -> float | None:
    """Share of positions assigned to their recorded trip when the trip ids are hidden.

    Parameters
    ----------
    avl : DataFrame
        From `telematics.evaluate.read_avl`; its ``trip_id`` is the ground truth and is
        not shown to the assigner (nor ``route_id``); ``start_date`` gives the service day.
    """
    truth = avl["trip_id"].to_numpy(dtype=str)
    if len(avl) == 0 or (truth == "").any():
        return None
    xy = paths.projection.to_xy(avl["lat"].to_numpy(), avl["lon"].to_numpy())
    times = avl["time_s"].to_numpy()
    # the service day is taken from the local date of the ping, not from the hidden trip
    local = pd.to_datetime(times, unit="s", utc=True).tz_convert(feed.timezone)
    days = pd.Series(local.strftime("%Y%m%d"), index=avl.index)
    vehicles = avl["vehicle_id"].to_numpy(dtype=str)
    correct = 0
    for day_text, day_rows in days.groupby(days).groups.items():
        day = dt.datetime.strptime(str(day_text), "%Y%m%d").date()
        assigner = TripAssigner(feed, paths, day, service_day_start(day, feed.timezone), config)
        rows = np.asarray(day_rows)
        got = assigner.assign_fleet(vehicles[rows], times[rows], xy[rows],
                                    avl["bearing"].to_numpy()[rows])
        correct += int((got == truth[rows]).sum())
    return round(correct / len(avl), 4)

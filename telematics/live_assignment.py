"""Incremental fleet trip assignment for the live service: one ping at a time.

The live counterpart of `telematics.assignment.TripAssigner.assign_fleet`: each vehicle
without a usable reported trip keeps its forward-pass cost per trip of the service day
(the same step), updated by each of its pings; its trip is its share of the joint
least-cost assignment of blocks to the active inferred vehicles (Hungarian algorithm),
with the blocks that other vehicles hold through their reported trips taken out. So two
vehicles never hold trips of the same block, and the work per ping is one projection
onto the day's paths plus an assignment over the vehicles being inferred (not a replay of
the vehicle's recent pings).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from telematics.assignment import TAKEN_COST, TripAssigner, evidence_weights, leave_scales

__all__ = ["LiveAssigner"]

FloatArray = npt.NDArray[np.float64]


@dataclass
class _Vehicle:
    row: int  # row of the vehicle in the cost matrix
    first_xy: tuple[float, float]  # its first ping (m), for the "has moved" test
    last_seen_s: float
    started: bool = False
    reportable: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per trip, last ping
    keeps: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per trip: kept if already its
    given: int = -1  # candidate given at its own last ping (-1 none)
    ready: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per trip: at its first stop
    last_xy: FloatArray | None = None  # the last ping (m)
    along: FloatArray = field(default_factory=lambda: np.zeros(0))  # per trip, distance along its path at the last ping
    first_since: FloatArray = field(default_factory=lambda: np.zeros(0))  # per trip, at its first stop since (epoch s)


class LiveAssigner:
    """Incremental block-aware trip assignment of one service day.

    Parameters
    ----------
    assigner : TripAssigner
        The day's trips, paths and thresholds.
    """

    def __init__(self, assigner: TripAssigner) -> None:
        self.assigner = assigner
        self.blocks = assigner.blocks()
        block_order, _cuts, _has, unit_cuts, _switch = self.blocks
        unit_of_sorted = np.cumsum(np.isin(np.arange(len(block_order)), unit_cuts)) - 1
        self.unit = np.empty(len(block_order), dtype=np.int64)  # assignment unit of each trip
        self.unit[block_order] = unit_of_sorted
        self.totals = np.zeros((0, len(assigner.trip_ids)))
        self.unit_costs = np.zeros((0, len(unit_cuts)))  # per row: least total per assignment unit
        self.vehicles: dict[str, _Vehicle] = {}
        self.trips: dict[str, str] = {}  # vehicle -> its current trip ("" none)
        self.days: dict[str, date] = {}  # vehicle -> the service day of its current trip
        self.revised: dict[str, str] = {}  # other vehicles whose trip the last `observe` changed

    def forget(self, vehicle_id: str) -> None:
        """Drop a vehicle (its trip became reported, or it left)."""
        v = self.vehicles.pop(vehicle_id, None)
        self.trips.pop(vehicle_id, None)
        self.days.pop(vehicle_id, None)
        if v is not None:
            self.totals[v.row] = np.inf  # the row is no longer active; reused by no one
            self.unit_costs[v.row] = np.inf

    def observe(self, vehicle_id: str, t_s: float, xy: tuple[float, float], bearing: float | None,
                held: Collection[str] = ()) -> str:
        """The trip of ``vehicle_id`` after its ping (``""`` none yet).

        The joint assignment is solved for every active vehicle: those whose trip it
        changes (a block passed to this vehicle, or swapped) are left in `revised`.

        Parameters
        ----------
        t_s : float
            Ping time (epoch s), later than the vehicle's previous ping.
        xy : tuple of float
            Position in the paths' projection (m).
        bearing : float or None
            Reported heading (degrees from north).
        held : collection of str
            Trips other vehicles hold through their reported trip ids: their blocks are taken.
        """
        a = self.assigner
        cfg = a.config
        self.revised = {}
        if len(a.trip_ids) == 0:  # no trip runs that day
            self.trips[vehicle_id] = ""
            self.days.pop(vehicle_id, None)
            return ""
        v = self.vehicles.get(vehicle_id)
        if v is None:
            v = _Vehicle(len(self.totals), (float(xy[0]), float(xy[1])), t_s)
            self.totals = np.vstack([self.totals, np.zeros((1, self.totals.shape[1]))])
            self.unit_costs = np.vstack([self.unit_costs, np.zeros((1, self.unit_costs.shape[1]))])
            self.vehicles[vehicle_id] = v
        elif t_s - v.last_seen_s > cfg.stale_after_s:
            self.totals[v.row] = 0.0
            v.given = -1
        fresh = v.last_xy is not None and t_s - v.last_seen_s <= cfg.stale_after_s
        previous = (v.last_xy, v.along) if v.last_xy is not None and fresh else None
        weight = float(evidence_weights([v.last_seen_s, t_s], cfg.stale_after_s)[-1]) if fresh else 1.0
        scale = float(leave_scales([v.last_seen_s, t_s], cfg.stale_after_s)[-1]) if fresh else 1.0
        cost, delay, early, plausible, en_route, along, ready, reportable, keeps, since = a._costs(
            np.array([t_s]), np.array([xy], dtype=np.float64),
            np.array([np.nan if bearing is None else bearing], dtype=np.float64), previous,
            (v.last_seen_s, v.first_since) if previous is not None else None)
        v.first_since = since[0]
        block_order, _cuts, _has_block, unit_cuts, switch_cost = self.blocks
        self.totals[v.row] = a._forward(self.totals[v.row], cost[0], delay[0], early[0], plausible[0], -1,
                                        switch_cost, block_order, weight, scale)
        v.last_seen_s = t_s
        v.last_xy, v.along = np.array(xy, dtype=np.float64), along[0]
        v.started = (v.started or bool(en_route[0])
                     or math.hypot(xy[0] - v.first_xy[0], xy[1] - v.first_xy[1]) >= cfg.min_move_m)
        self.unit_costs[v.row] = a.unit_costs(self.totals[v.row], block_order, unit_cuts,
                                              None if v.started else ready[0])
        v.reportable, v.keeps, v.ready = reportable[0], keeps[0], ready[0]
        self.revised = {}
        if not v.started:  # no trip before it moves; waiting at a first stop, it holds a block for the others' sake
            v.given = -1
            self.trips[vehicle_id] = ""
            self.days.pop(vehicle_id, None)
            return ""
        # in vehicle-id order, as the batch assignment (`TripAssigner.assign_candidates`) orders its
        # vehicles: the Hungarian algorithm breaks ties by row order (trip copies a headway apart tie)
        # the vehicles in the joint assignment: moving, or waiting at a trip's first stop before its
        # departure (it will run a block: no moving vehicle is given that one)
        ids = sorted(vid for vid, o in self.vehicles.items()
                     if (o.started or o.ready.any()) and t_s - o.last_seen_s <= cfg.stale_after_s)
        if vehicle_id not in ids:
            ids.append(vehicle_id)
        rows = np.array([self.vehicles[vid].row for vid in ids], dtype=np.int64)
        cost = self.unit_costs[rows]
        idx = [a._index[h] for h in held if h in a._index]
        cost[:, self.unit[idx]] += TAKEN_COST
        got = dict(zip(*linear_sum_assignment(cost), strict=True))  # vehicle position -> unit
        for n, vid in enumerate(ids):
            unit = got.get(n, -1)
            trip = ""
            day = None
            pick = -1
            if unit >= 0 and cost[n, unit] < TAKEN_COST:
                o = self.vehicles[vid]
                best = a.unit_trip(a.unit_members(unit, block_order, unit_cuts), self.totals[rows[n]],
                                   a.may_give(o.reportable, o.keeps, o.given))
                if best >= 0:
                    trip, day, pick = str(a.trip_ids[best]), a.service_day[best], best
            if vid == vehicle_id:
                v.given = pick
            if vid != vehicle_id and (trip != self.trips.get(vid, "") or day != self.days.get(vid)):
                self.revised[vid] = trip
            self.trips[vid] = trip
            if day is None:
                self.days.pop(vid, None)
            else:
                self.days[vid] = day
        return self.trips[vehicle_id]

"""Live holding advice: the headway rule of `telematics.holding` applied to a fleet's predictions.

Pure logic over a `telematics.fleet.Fleet` and the arrival predictions its board was built
from (no I/O); `telematics.service.ArrivalsService` calls `HoldingAdvisor.advise` at every
refresh and `telematics.advice.AdviceBoard` publishes the result.

* **Control stops** are `telematics.holding.control_stops`, the same as ``its eval
  holding``'s: the feed's timepoints (``stop_times.timepoint``) when it marks some, else
  each trip's first stop and every `telematics.holding.CONTROL_SPACING_S` of schedule; a
  route's ``control_stops`` list (`telematics.config.HoldingRoute`) replaces them on that
  route. Never a trip's last stop.
* **Rows**: every predicted arrival of a fresh vehicle at a control stop, keyed by (route,
  stop). Each vehicle decides at its next control stop on its current trip (at its trip's
  first stop while it has not left it: ready when its predicted arrival at the second
  stop less the scheduled running time says). The leader and follower are
  `telematics.holding.neighbours` (the last departure remembered from the vehicles'
  passings when no bus is predicted ahead) and `telematics.holding.headway_holds` applies
  the rule: one rule, the eval's.
* **Parameters per row**: the scheduled headway is the mean gap of the scheduled departures
  at that (route, stop) within `HEADWAY_WINDOW_S` of the bus's own, so a route is
  headway-managed (frequent) where and when it runs every ``holding_frequent_headway_s`` or
  more often; the gain and caps are the settings', per route where ``holding_routes`` says.
  Elsewhere a hold never takes a bus past its scheduled departure: a late bus there is
  never held.
* **At the stop** an advice is frozen: while the bus is within `AT_STOP_M` before to
  `HOLD_ZONE_M` beyond the advised stop and the hold has not run out (plus `HOLD_GRACE_S`),
  its advice stays as given and its departure (arrival + hold) is what later buses are
  spaced from.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from telematics.config import HoldingRoute, TelematicsSettings
from telematics.gtfs import service_day_start
from telematics.holding import (
    CONTROL_SPACING_S,
    RouteParams,
    control_stops,
    feed_timepoints,
    headway_holds,
    neighbours,
)

if TYPE_CHECKING:
    from telematics.fleet import Fleet, VehicleTrack

__all__ = ["AT_STOP_M", "HEADWAY_WINDOW_S", "HOLD_GRACE_S", "HOLD_ZONE_M", "ControlStops", "HoldAdvice",
           "HoldingAdvisor", "advice_id"]

FloatArray = npt.NDArray[np.float64]
#: Scheduled departures within this (s) of a bus's own give the scheduled headway there.
HEADWAY_WINDOW_S = 3600.0
#: A bus this close (m) before its advised stop, or `HOLD_ZONE_M` beyond it, is at the stop.
AT_STOP_M = 30.0
HOLD_ZONE_M = 60.0
#: An advice at the stop lasts until its hold has run out plus this (s).
HOLD_GRACE_S = 60.0
#: Remembered departures older than this (s) are forgotten.
LAST_DEPARTURE_TTL_S = 7200.0

Predicted = dict[tuple[str, date, int], tuple[float, float, float]]


def advice_id(agency: str, vehicle_id: str, trip_id: str, service_date: date, stop_sequence: int) -> str:
    """The id of the advice of a vehicle on a trip of a service day at a stop (16 hex digits)."""
    text = "\x1f".join((agency, vehicle_id, trip_id, service_date.isoformat(), str(stop_sequence)))
    return hashlib.blake2s(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class HoldAdvice:
    """A recommended hold of one vehicle at a control stop (times epoch s, durations s).

    ``forward_headway_s`` is the gap from the bus ahead's departure to this bus being ready,
    ``backward_headway_s`` the gap from it to the bus behind's predicted arrival (None when
    that bus is unknown: the rule then assumes one scheduled headway).
    """

    advice_id: str
    agency: str
    vehicle_id: str
    route_id: str
    trip_id: str
    service_date: date
    stop_id: str
    stop_sequence: int
    stop_index: int
    stop_name: str
    hold_s: float
    ready_s: float
    scheduled_departure_s: float
    forward_headway_s: float | None
    backward_headway_s: float | None
    scheduled_headway_s: float
    frequent: bool
    cap_s: float
    at_origin: bool
    control: str
    reason: str
    computed_s: float

    @property
    def depart_s(self) -> float:
        """When the bus should leave the stop (epoch s)."""
        return self.ready_s + self.hold_s

    def to_json(self) -> dict[str, Any]:
        """The advice as JSON (times ISO 8601 UTC, durations whole seconds)."""
        return {
            "advice_id": self.advice_id, "agency": self.agency, "vehicle_id": self.vehicle_id,
            "route_id": self.route_id, "trip_id": self.trip_id, "service_date": self.service_date.isoformat(),
            "stop_id": self.stop_id, "stop_sequence": self.stop_sequence, "stop_name": self.stop_name,
            "hold_s": round(self.hold_s), "arrive_at": _iso(self.ready_s), "depart_at": _iso(self.depart_s),
            "scheduled_departure": _iso(self.scheduled_departure_s),
            "forward_headway_s": _round(self.forward_headway_s), "backward_headway_s": _round(self.backward_headway_s),
            "scheduled_headway_s": round(self.scheduled_headway_s), "frequent": self.frequent,
            "cap_s": round(self.cap_s), "at_origin": self.at_origin, "control": self.control, "reason": self.reason,
        }


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(round(epoch_s), UTC).isoformat().replace("+00:00", "Z")


def _round(x: float | None) -> int | None:
    return None if x is None else round(x)


def _hhmm(epoch_s: float, tz: Any) -> str:
    return datetime.fromtimestamp(epoch_s, tz).strftime("%H:%M:%S")


@dataclass
class ControlStops:
    """A fleet's control stops (per flat stop-time row) and the scheduled departures at
    each (route, control stop) of a service day, for the scheduled headways."""

    fleet: Fleet
    mask: npt.NDArray[np.bool_]
    route_label: dict[str, str]  # route -> how its control stops were chosen
    departures: dict[date, dict[str, FloatArray]] = field(default_factory=dict)
    stop_names: dict[str, str] = field(default_factory=dict)  # stop_id -> stop_name (read once per fleet)

    def scheduled(self, fleet: Fleet, day: date) -> dict[str, FloatArray]:
        """Sorted scheduled departures (s of service day) per ``route\\x1fstop`` key on ``day``."""
        if day not in self.departures:
            if len(self.departures) > 3:
                self.departures.clear()
            running = fleet.services_on(day)
            rows = np.flatnonzero(self.mask & np.isin(fleet.st_service, np.array(sorted(running), dtype=str)))
            keys = np.array([fleet.trip_route[t] for t in fleet.st_trip[rows]], dtype=object) + "\x1f" + \
                fleet.st_stop[rows].astype(object)
            order = np.lexsort((fleet.st_dep[rows], keys.astype(str)))
            keys, deps = keys[order], fleet.st_dep[rows][order]
            cuts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True]) if len(keys) else np.zeros(1, np.int64)
            self.departures[day] = {str(keys[a]): deps[a:b] for a, b in itertools.pairwise(cuts)}
        return self.departures[day]


def _local_headway(times: FloatArray | None, t: float) -> float:
    """Mean gap (s) of the scheduled ``times`` within `HEADWAY_WINDOW_S` of ``t`` (NaN: fewer than two)."""
    if times is None:
        return math.nan
    lo = int(np.searchsorted(times, t - HEADWAY_WINDOW_S, side="left"))
    hi = int(np.searchsorted(times, t + HEADWAY_WINDOW_S, side="right"))
    n = hi - lo
    return float((times[hi - 1] - times[lo]) / (n - 1)) if n >= 2 else math.nan


class HoldingAdvisor:
    """Holding advice of every fresh vehicle of a fleet at its next control stop.

    Parameters
    ----------
    config : TelematicsSettings
        ``holding_*`` parameters and ``stale_after_s``.
    """

    def __init__(self, config: TelematicsSettings) -> None:
        self.config = config
        self._control: dict[str, ControlStops] = {}
        self._last_dep: dict[tuple[str, str, str], float] = {}  # (agency, route, stop) -> departure epoch s
        self._given: dict[tuple[str, str], HoldAdvice] = {}  # (agency, vehicle) -> last advice
        self._default_route = HoldingRoute()  # read only: built once, not per bus and update

    def _route(self, route_id: str) -> HoldingRoute:
        return self.config.holding_routes.get(route_id) or self._default_route

    def control_stops(self, fleet: Fleet) -> ControlStops:
        """The fleet's control stops (computed once per fleet)."""
        found = self._control.get(fleet.agency)
        if found is not None and found.fleet is fleet:
            return found
        n = len(fleet.st_trip)
        ptr = np.r_[np.sort([lo for lo, _hi in fleet.trip_rows.values()]), n].astype(np.int64)
        timepoint = feed_timepoints(fleet.feed.stop_times)
        mask = control_stops(fleet.st_dep, ptr, timepoint)
        default = "timepoints" if timepoint is not None else f"first stop and every {CONTROL_SPACING_S:.0f} s of schedule"
        routes = np.array([fleet.trip_route[t] for t in fleet.st_trip], dtype=object)
        route_label: dict[str, str] = {}
        for route_id in set(fleet.trip_route.values()):
            spec = self._route(route_id)
            mine = routes == route_id
            if not spec.enabled:
                mask &= ~mine
                route_label[route_id] = "disabled"
            elif spec.control_stops is not None:
                listed = mine & np.isin(fleet.st_stop, np.array(spec.control_stops, dtype=str))
                mask = np.where(mine, listed, mask)
                route_label[route_id] = "route list"
            else:
                route_label[route_id] = default
        mask[ptr[1:] - 1] = False
        names = ({str(k): str(v) for k, v in fleet.stops["stop_name"].items()} if "stop_name" in fleet.stops.columns
                 else {})
        found = ControlStops(fleet, mask, route_label, stop_names=names)
        self._control[fleet.agency] = found
        return found

    def advise(self, fleet: Fleet, now_s: float, predicted: Predicted) -> list[HoldAdvice]:
        """Advice of ``fleet``'s fresh vehicles at ``now_s`` (epoch s) from ``predicted``
        (`telematics.fleet.Fleet.predict`'s output, as in `telematics.board.Board`): holds
        of at least ``holding_min_hold_s`` and the advice frozen at their stop."""
        cfg = self.config
        ctl = self.control_stops(fleet)
        fresh = {(v.trip_id, v.service_date): v for v in fleet.vehicles.values()
                 if v.trip_id is not None and v.service_date is not None and now_s - v.observed_s <= cfg.stale_after_s}
        self._remember_departures(fleet, fresh.values(), ctl, now_s)
        frozen = self._frozen(fleet, fresh.values(), now_s)
        held_at = {(a.trip_id, a.service_date, fleet.trip_rows[a.trip_id][0] + a.stop_index): a.depart_s
                   for a in frozen.values()}
        # every predicted arrival at a control stop: a neighbour of the deciding buses
        keys = list(predicted)
        at_control = ctl.mask[np.fromiter((k for _t, _d, k in keys), np.int64, len(keys))]
        rows: list[tuple[str, date, int, float]] = []
        for i in np.flatnonzero(at_control).tolist():
            trip, day, k = keys[i]
            rows.append((trip, day, k, held_at.get(keys[i], predicted[keys[i]][0])))
        deciding: dict[tuple[str, date, int], VehicleTrack] = {}
        for (trip, day), v in fresh.items():
            if v.vehicle_id in frozen or trip not in fleet.trip_rows:
                continue
            lo, hi = fleet.trip_rows[trip]
            ahead = np.flatnonzero(ctl.mask[lo + v.next_stop:hi])
            if not len(ahead):
                continue
            k = lo + v.next_stop + int(ahead[0])
            if (trip, day, k) not in predicted:
                if k != lo or (trip, day, lo + 1) not in predicted:
                    continue
                # not left its first stop: ready when its predicted arrival at the second says
                nxt = predicted[(trip, day, lo + 1)][0]
                rows.append((trip, day, lo, max(now_s, nxt - (fleet.st_arr[lo + 1] - fleet.st_dep[lo]))))
            deciding[(trip, day, k)] = v
        out = self._decide(fleet, ctl, now_s, rows, deciding, frozen) if deciding else dict(frozen)
        self._given = {key: a for key, a in self._given.items() if key[0] != fleet.agency} | {
            (fleet.agency, vid): a for vid, a in out.items()}
        return list(out.values())

    def _decide(self, fleet: Fleet, ctl: ControlStops, now_s: float, rows: list[tuple[str, date, int, float]],
                deciding: dict[tuple[str, date, int], VehicleTrack], frozen: dict[str, HoldAdvice]
                ) -> dict[str, HoldAdvice]:
        """Apply the rule to ``rows``; the advice of the ``deciding`` ones (and ``frozen``) by vehicle."""
        cfg = self.config
        n = len(rows)
        route = [fleet.trip_route[trip] for trip, _d, _k, _t in rows]
        stop = [fleet.st_stop_list[k] for _t, _d, k, _a in rows]
        names = [f"{r}\x1f{s}" for r, s in zip(route, stop, strict=True)]
        codes: dict[str, int] = {}
        key = np.array([codes.setdefault(x, len(codes)) for x in names], dtype=np.int64)
        day0 = {d: service_day_start(d, fleet.timezone) for d in {d for _t, d, _k, _a in rows}}
        ready = np.array([t for _t, _d, _k, t in rows], dtype=np.float64)
        sched = np.array([day0[d] + fleet.st_dep[k] for _t, d, k, _a in rows], dtype=np.float64)
        last = np.array([self._last_dep.get((fleet.agency, r, s), np.nan) for r, s in zip(route, stop, strict=True)])
        is_deciding = np.array([(t, d, k) in deciding for t, d, k, _a in rows], dtype=bool)
        at_origin = np.array([k == fleet.trip_rows[t][0] for t, _d, k, _a in rows], dtype=bool)
        big_h = np.full(n, np.nan)
        gain, cap_share, origin_share = (np.zeros(n) for _ in range(3))
        frequent = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(is_deciding).tolist():
            t, d, k, _a = rows[i]
            spec = self._route(route[i])
            big_h[i] = _local_headway(ctl.scheduled(fleet, d).get(names[i]), float(fleet.st_dep[k]))
            frequent[i] = spec.frequent if spec.frequent is not None else big_h[i] <= cfg.holding_frequent_headway_s
            gain[i] = cfg.holding_gain if spec.gain is None else spec.gain
            cap_share[i] = cfg.holding_cap_share if spec.cap_share is None else spec.cap_share
            origin_share[i] = cfg.holding_origin_cap_share if spec.origin_cap_share is None else spec.origin_cap_share
        params = RouteParams(headway_s=big_h, frequent=frequent, gain=gain, cap_s=np.nan_to_num(cap_share * big_h),
                             origin_cap_s=np.nan_to_num(origin_share * big_h))
        lead, foll = neighbours(key, ready, last)
        hold = headway_holds(np.arange(n), ready, lead, foll, sched, params, at_origin)
        out = dict(frozen)
        for i in np.flatnonzero(is_deciding & (hold >= max(cfg.holding_min_hold_s, 1e-9))).tolist():
            t, d, k, _a = rows[i]
            v = deciding[(t, d, k)]
            cap = float(params.origin_cap_s[i] if at_origin[i] else params.cap_s[i])
            out[v.vehicle_id] = self._advice(fleet, ctl, v, t, d, k, float(hold[i]), float(ready[i]), float(sched[i]),
                                             float(lead[i]), float(foll[i]), float(big_h[i]), bool(frequent[i]), cap,
                                             bool(at_origin[i]), now_s)
        return out

    def _advice(self, fleet: Fleet, ctl: ControlStops, v: VehicleTrack, trip: str, day: date, k: int, hold: float,
                ready: float, sched: float, lead: float, foll: float, big_h: float, frequent: bool, cap: float,
                at_origin: bool, now_s: float) -> HoldAdvice:
        """One advice, with its reason in words."""
        h_f = None if math.isnan(lead) else ready - lead
        h_b = None if math.isnan(foll) else foll - ready
        ahead = "no bus ahead known" if h_f is None else f"{h_f:.0f} s behind the bus ahead"
        behind = "no bus behind known" if h_b is None else f"{h_b:.0f} s ahead of the bus behind"
        reason = f"{ahead}, {behind} (scheduled every {big_h:.0f} s): hold {hold:.0f} s to even the gaps"
        if abs(hold - cap) < 0.5:
            reason += f" (capped at {cap:.0f} s)"
        if not frequent:
            reason += f"; timetabled route: not past the scheduled departure {_hhmm(sched, ZoneInfo(fleet.timezone))}"
        stop_id = fleet.st_stop_list[k]
        lo = fleet.trip_rows[trip][0]
        name = ctl.stop_names.get(stop_id, "")
        seq = int(fleet.st_seq[k])
        return HoldAdvice(advice_id(fleet.agency, v.vehicle_id, trip, day, seq), fleet.agency, v.vehicle_id,
                          fleet.trip_route[trip], trip, day, stop_id, seq, k - lo, name, hold, ready, sched, h_f, h_b,
                          big_h, frequent, cap, at_origin, ctl.route_label.get(fleet.trip_route[trip], ""), reason,
                          now_s)

    def _remember_departures(self, fleet: Fleet, vehicles: Any, ctl: ControlStops, now_s: float) -> None:
        """Remember the latest passing of each (route, control stop) by a fresh vehicle."""
        for v in vehicles:
            lo, hi = fleet.trip_rows.get(v.trip_id, (0, 0))
            route = fleet.trip_route.get(v.trip_id, "")
            for j, when in enumerate(v.passed_s[:hi - lo]):
                if math.isfinite(when) and ctl.mask[lo + j]:
                    key = (fleet.agency, route, fleet.st_stop_list[lo + j])
                    if when > self._last_dep.get(key, -math.inf):
                        self._last_dep[key] = when
        cutoff = now_s - LAST_DEPARTURE_TTL_S
        if len(self._last_dep) > 50_000 or any(t < cutoff for t in self._last_dep.values()):
            self._last_dep = {k: t for k, t in self._last_dep.items() if t >= cutoff}

    def _frozen(self, fleet: Fleet, vehicles: Any, now_s: float) -> dict[str, HoldAdvice]:
        """The vehicles at the stop of their last advice, whose hold is still running."""
        out: dict[str, HoldAdvice] = {}
        for v in vehicles:
            given = self._given.get((fleet.agency, v.vehicle_id))
            if given is None or given.trip_id != v.trip_id or given.service_date != v.service_date:
                continue
            dist = fleet.paths.stop_dist_m[given.trip_id]
            off = v.along_m - float(dist[given.stop_index])
            if -AT_STOP_M <= off <= HOLD_ZONE_M and now_s <= given.depart_s + HOLD_GRACE_S:
                out[v.vehicle_id] = given
                if given.stop_index < v.next_stop:  # passed the stop's point: spaced from its departure
                    key = (fleet.agency, given.route_id, given.stop_id)
                    self._last_dep[key] = max(self._last_dep.get(key, -math.inf), given.depart_s)
        return out

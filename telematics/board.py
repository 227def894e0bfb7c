"""Arrival boards: what the API serves, computed from the live fleet state for a moment.

For every stop, the upcoming arrivals of the service days around now: predicted where a
fresh vehicle runs (or will next run, in its block) the trip, otherwise scheduled with a
``fallback`` reason; plus the vehicles' views, GTFS-realtime trip updates and alerts.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

from telematics.dispatch import AlertSpec, dispatcher_alerts
from telematics.gtfsrt import StopTimeUpdate, TripUpdate, VehicleSnapshot

if TYPE_CHECKING:
    from telematics.fleet import Fleet, VehicleTrack

__all__ = ["Board", "StopBoardJson", "build_board", "public_view", "vehicle_views"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Board:
    """Everything the API serves, computed at ``now_s`` (epoch s)."""

    now_s: float
    arrivals: dict[str, list[dict[str, Any]]]  # stop_id -> upcoming arrivals, soonest first
    vehicles: dict[str, dict[str, Any]]  # vehicle_id -> JSON view
    snapshots: list[VehicleSnapshot]
    trip_updates: list[TripUpdate]
    alerts: list[AlertSpec]
    predicted: dict[tuple[str, date, int], tuple[float, float, float]]  # Fleet.predict's output


def public_view(entry: dict[str, Any], now_s: float) -> dict[str, Any]:
    """An arrival or vehicle entry as served: internal ``_`` keys dropped, ``age_s`` (s) added."""
    out = {k: v for k, v in entry.items() if not k.startswith("_")}
    observed = entry.get("_observed_s")
    out["age_s"] = None if observed is None else round(max(now_s - observed, 0.0), 1)
    return out


def _age_json(observed_s: float | None, now_s: float) -> bytes:
    return b"null" if observed_s is None else orjson.dumps(round(max(now_s - observed_s, 0.0), 1))


@dataclass(frozen=True)
class StopBoardJson:
    """One stop's arrivals response serialised once per board: each entry is kept as JSON
    bytes up to its ``age_s`` value, which is the only part written per request.

    Rendering gives exactly ``orjson.dumps({"stop": stop, "generated_at": ..., "arrivals":
    [public_view(e, now_s) for e in entries if e["_sort"] <= horizon_s]})``.
    """

    stop: dict[str, Any]
    prefix: bytes  # '{"stop":{...},"generated_at":"...","arrivals":['
    heads: list[bytes]  # one per entry: '{...,"age_s":'
    observed_s: list[float | None]  # epoch (s) per entry
    sort_s: list[float]  # epoch (s) per entry: predicted, else scheduled arrival

    @classmethod
    def of(cls, stop: dict[str, Any], generated_at: str, entries: list[dict[str, Any]]) -> StopBoardJson:
        heads = [orjson.dumps({k: v for k, v in e.items() if not k.startswith("_") and k != "age_s"})[:-1]
                 + b',"age_s":' for e in entries]
        prefix = orjson.dumps({"stop": stop, "generated_at": generated_at})[:-1] + b',"arrivals":['
        return cls(stop, prefix, heads, [e.get("_observed_s") for e in entries], [e["_sort"] for e in entries])

    def render(self, horizon_s: float, now_s: float) -> bytes:
        """The response: entries due by ``horizon_s`` with their age at ``now_s`` (epoch s)."""
        items = [head + _age_json(obs, now_s) + b"}"
                 for head, obs, t in zip(self.heads, self.observed_s, self.sort_s, strict=True) if t <= horizon_s]
        return self.prefix + b",".join(items) + b"]}"


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None or not math.isfinite(epoch_s):
        return None
    return datetime.fromtimestamp(round(epoch_s), UTC).isoformat().replace("+00:00", "Z")


def _iso_many(epoch_s: FloatArray) -> list[str]:
    """ISO 8601 UTC strings (whole seconds, ``Z``) of many epoch times at once."""
    text = np.datetime_as_string(np.rint(epoch_s).astype("datetime64[s]"), unit="s")
    return [t + "Z" for t in text.tolist()]


def _after(p: tuple[float, float, float], departed_s: int | None) -> tuple[float, float, float]:
    """A predicted stop's arrival, p10 and p90 (epoch s) served after the trip's previous
    stop: an arrival not later, in whole seconds, than the departure served there
    (``departed_s``) moves to one second after it, its quantiles with it (GTFS-realtime
    times must increase from stop to stop)."""
    if departed_s is None or round(p[0]) > departed_s:
        return p
    lift = departed_s + 1.0 - p[0]
    return departed_s + 1.0, p[1] + lift, p[2] + lift


def _runner(fleet: Fleet, run: VehicleTrack | None, broken: set[str], trip: str, day: date, index: int
            ) -> tuple[bool, VehicleTrack | None, Any]:
    """Who serves stop ``index`` of a trip: ``(already passed, vehicle, block run)``.

    The vehicle on the trip, else the one whose block runs the trip after its current one
    (``block``); none when its board entries failed (``broken``: the schedule instead).
    """
    if run is not None and index < run.next_stop:
        return True, run, None
    block = fleet.block_runs.get((trip, day)) if run is None else None
    if block is not None:
        run = block[0]
    if run is not None and run.vehicle_id in broken:
        run = None
    return False, run, block


def _predicted_fields(fleet: Fleet, p: Any, run: VehicleTrack, block: Any, trip: str, k: int, lo: int,
                      sched_arr: float, sched_dep: float, prev_departure: int | None
                      ) -> tuple[dict[str, Any], StopTimeUpdate]:
    """A predicted board entry's fields and its trip update (times served after the previous stop's)."""
    arrive, p10, p90 = _after(p, prev_departure)
    leave = max(arrive + (sched_dep - sched_arr), arrive)
    along_m = float(fleet.paths.stop_dist_m[trip][k - lo])
    fields = {
        "predicted_arrival": _iso(arrive), "predicted_departure": _iso(leave),
        "delay_s": round(arrive - sched_arr), "p10_arrival": _iso(p10), "p90_arrival": _iso(p90),
        "distance_m": round(block[2] + along_m, 1) if block else round(max(along_m - run.along_m, 0.0), 1),
        "stops_away": int(block[1] + k - lo) if block else int(k - lo - run.next_stop),
        "observed_at": _iso(run.observed_s),
        "_observed_s": run.observed_s, "_sort": arrive, "fallback": None,
    }
    update = StopTimeUpdate(int(fleet.st_seq[k]), fleet.st_stop[k], arrive, leave, arrive - sched_arr,
                            (p[2] - p[1]) / 2.0)
    return fields, update


def build_board(fleet: Fleet, now_s: float, live: bool = True) -> Board:
    """Arrivals per stop, vehicles, trip updates and alerts of ``fleet`` at ``now_s`` (epoch s).

    Along each trip the served times increase strictly from stop to stop (`_after`), as
    GTFS-realtime requires. Only fresh vehicles (silent at most ``stale_after_s``) are in
    the snapshots of the VehiclePositions feed; the vehicles' views keep the stale ones,
    flagged. A vehicle whose part of the board fails is reported (`Fleet.vehicle_failed`)
    and its trips fall back to the schedule. ``live=False`` gives the schedule alone (no
    vehicle on any trip, no prediction): the service's last resort for an agency.
    """
    cfg = fleet.config
    fresh = [v for v in fleet.vehicles.values() if live and v.trip_id is not None and v.service_date is not None
             and now_s - v.observed_s <= cfg.stale_after_s]
    predicted = fleet.predict(now_s, fresh) if live else {}
    if not live:
        fleet.block_runs = {}
    by_trip: dict[tuple[str, date], VehicleTrack] = {}
    for v in fleet.vehicles.values():  # after `predict`: a vehicle that failed there has no trip now
        if live and v.trip_id is not None and v.service_date is not None:
            by_trip[(v.trip_id, v.service_date)] = v
    broken: set[str] = set()  # vehicles whose board entries failed: the schedule for the rest
    departed: dict[tuple[str, date], int] = {}  # (trip, day) -> served departure (epoch s) at its last stop so far
    rows, day0s = fleet.scheduled_window(now_s, cfg.board_window_min * 60.0)
    arrivals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    trip_updates: dict[tuple[str, date], list[StopTimeUpdate]] = defaultdict(list)
    days = {d0: fleet.local_date(d0 + 43200.0) for d0 in set(day0s.tolist())}
    arr_all, dep_all = day0s + fleet.st_arr[rows], day0s + fleet.st_dep[rows]
    arr_iso, dep_iso = _iso_many(arr_all), _iso_many(dep_all)
    for n, (k, day0) in enumerate(zip(rows.tolist(), day0s.tolist(), strict=True)):
        trip = fleet.st_trip[k]
        day = days[day0]
        sched_arr, sched_dep = float(arr_all[n]), float(dep_all[n])
        lo, _hi = fleet.trip_rows[trip]
        passed, run, block = _runner(fleet, by_trip.get((trip, day)), broken, trip, day, k - lo)
        if passed:
            continue
        p = predicted.get((trip, day, k))
        entry: dict[str, Any] = {
            "route_id": fleet.trip_route[trip], "route_name": fleet.route_name.get(fleet.trip_route[trip], ""),
            "trip_id": str(trip), "service_date": day.isoformat(), "headsign": fleet.trip_headsign.get(trip, ""),
            "stop_sequence": int(fleet.st_seq[k]),
            "scheduled_arrival": arr_iso[n], "scheduled_departure": dep_iso[n],
            "predicted": p is not None, "vehicle_id": run.vehicle_id if run else None,
        }
        done = False
        if p is not None and run is not None:
            try:
                fields, update = _predicted_fields(fleet, p, run, block, trip, k, lo, sched_arr, sched_dep,
                                                   departed.get((trip, day)))
                entry.update(fields)
                leave = update.departure_s
            except Exception as exc:
                broken.add(run.vehicle_id)
                fleet.vehicle_failed(run.vehicle_id, "board", exc)
                entry["vehicle_id"], run = None, None
            else:
                trip_updates[(trip, day)].append(update)
                departed[(trip, day)] = round(leave)
                done = True
        if not done:
            if sched_arr < now_s - 60.0:
                continue
            entry.update({
                "predicted": False, "predicted_arrival": None, "predicted_departure": None, "delay_s": None,
                "p10_arrival": None, "p90_arrival": None, "distance_m": None, "stops_away": None,
                "observed_at": _iso(run.observed_s) if run else None, "_observed_s": run.observed_s if run else None,
                "_sort": float(sched_arr), "fallback": "stale_vehicle" if run is not None else "no_vehicle",
            })
        arrivals[fleet.st_stop_list[k]].append(entry)
    for items in arrivals.values():
        items.sort(key=lambda e: e["_sort"])
    updates = []
    for (trip, day), stus in trip_updates.items():
        run = by_trip.get((trip, day)) or fleet.block_runs[(trip, day)][0]
        if run.vehicle_id in broken:
            continue
        rt_trip, start_time = fleet.gtfsrt_trip(str(trip))
        updates.append(TripUpdate(rt_trip, fleet.trip_route[trip], day, run.vehicle_id, run.observed_s, tuple(stus),
                                  start_time=start_time))
    vehicles, snapshots = vehicle_views(fleet, now_s)
    snapshots = [snap for snap in snapshots if now_s - snap.observed_s <= cfg.stale_after_s]
    return Board(now_s, dict(arrivals), vehicles, snapshots, updates, dispatcher_alerts(fleet, now_s, predicted),
                 predicted)


def vehicle_views(fleet: Fleet, now_s: float) -> tuple[dict[str, dict[str, Any]], list[VehicleSnapshot]]:
    """JSON view and GTFS-rt snapshot of every vehicle (one whose view fails is reported and
    shown without a trip)."""
    views: dict[str, dict[str, Any]] = {}
    snaps: list[VehicleSnapshot] = []
    for v in list(fleet.vehicles.values()):
        try:
            view, snap = _vehicle_view(fleet, v, now_s)
        except Exception as exc:
            fleet.vehicle_failed(v.vehicle_id, "view", exc)
            try:
                view, snap = _vehicle_view(fleet, v, now_s, with_trip=False)
            except Exception:  # not even its position: left out
                continue
        views[v.vehicle_id] = view
        snaps.append(snap)
    return views, snaps


def _vehicle_view(fleet: Fleet, v: VehicleTrack, now_s: float,
                  with_trip: bool = True) -> tuple[dict[str, Any], VehicleSnapshot]:
    """JSON view and GTFS-rt snapshot of one vehicle (its position alone unless ``with_trip``)."""
    if not with_trip:
        v = dataclasses.replace(v, trip_id=None, service_date=None, delay_s=None,
                                along_m=math.nan, offset_m=math.nan)
    next_stop_id, next_seq = None, None
    if v.trip_id is not None:
        lo, hi = fleet.trip_rows[v.trip_id]
        if v.next_stop < hi - lo:
            next_stop_id, next_seq = str(fleet.st_stop[lo + v.next_stop]), int(fleet.st_seq[lo + v.next_stop])
    route = fleet.trip_route.get(v.trip_id) if v.trip_id else None
    view = {
        "vehicle_id": v.vehicle_id, "agency": fleet.agency, "lat": v.lat, "lon": v.lon,
        "bearing": v.bearing, "speed_mps": v.speed_mps, "occupancy": v.occupancy,
        "trip_id": v.trip_id, "route_id": route,
        "service_date": v.service_date.isoformat() if v.service_date else None,
        "next_stop_id": next_stop_id, "next_stop_sequence": next_seq,
        "distance_along_m": None if math.isnan(v.along_m) else round(v.along_m, 1),
        "offset_m": None if math.isnan(v.offset_m) else round(v.offset_m, 1),
        "delay_s": None if v.delay_s is None else round(v.delay_s),
        "observed_at": _iso(v.observed_s), "_observed_s": v.observed_s,
        "stale": now_s - v.observed_s > fleet.config.stale_after_s,
    }
    rt_trip, start_time = fleet.gtfsrt_trip(v.trip_id) if v.trip_id else (None, None)
    return view, VehicleSnapshot(v.vehicle_id, v.observed_s, v.lat, v.lon, v.bearing, v.speed_mps,
                                 rt_trip, route, v.service_date, next_stop_id, next_seq,
                                 occupancy=v.occupancy, start_time=start_time)

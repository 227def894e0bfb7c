"""Dispatcher alerts from the live fleet state: stale, off-route and early vehicles,
bunching and gaps between consecutive vehicles of a route.

Pure functions over a `telematics.fleet.Fleet` and its predictions; the service raises and
clears them on `its.alerts.AlertSink`.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from telematics.gtfs import service_day_start

if TYPE_CHECKING:
    from telematics.fleet import Fleet, VehicleTrack

__all__ = ["AlertSpec", "dispatcher_alerts", "headway_alerts"]

#: (trip_id, service date, stop-time row) -> (arrival, p10, p90), epoch s
Predicted = dict[tuple[str, date, int], tuple[float, float, float]]


@dataclass(frozen=True)
class AlertSpec:
    """A dispatcher alert condition (see `its.alerts.AlertSink.raise_alert`)."""

    kind: str
    subject: str
    message: str
    severity: str = "warning"
    lat: float | None = None
    lon: float | None = None


def dispatcher_alerts(fleet: Fleet, now_s: float, predicted: Predicted) -> list[AlertSpec]:
    """Alerts of every vehicle of ``fleet`` at ``now_s`` (epoch s), thresholds from its config;
    a vehicle whose alerts fail is reported (`Fleet.vehicle_failed`) and raises none."""
    out: list[AlertSpec] = []
    for v in list(fleet.vehicles.values()):
        try:
            out.extend(_vehicle_alerts(fleet, v, now_s))
        except Exception as exc:
            fleet.vehicle_failed(v.vehicle_id, "alerts", exc)
    out.extend(headway_alerts(fleet, predicted))
    return out


def _vehicle_alerts(fleet: Fleet, v: VehicleTrack, now_s: float) -> list[AlertSpec]:
    """Stale, off-route and early-running alerts of one vehicle."""
    cfg = fleet.config
    out: list[AlertSpec] = []
    age = now_s - v.observed_s
    if cfg.stale_after_s < age <= 3600.0 and v.trip_id is not None:
        out.append(AlertSpec("stale_vehicle", f"{fleet.agency}/{v.vehicle_id}",
                             f"vehicle {v.vehicle_id} silent for {age:.0f} s", "warning", v.lat, v.lon))
    if age > cfg.stale_after_s or v.trip_id is None:
        return out
    if math.isfinite(v.offset_m) and v.offset_m > cfg.off_route_m:
        out.append(AlertSpec("off_route", f"{fleet.agency}/{v.vehicle_id}",
                             f"vehicle {v.vehicle_id} is {v.offset_m:.0f} m off trip {v.trip_id}",
                             "warning", v.lat, v.lon))
    if v.delay_s is not None and v.delay_s < -cfg.early_running_s:
        out.append(AlertSpec("early_running", f"{fleet.agency}/{v.vehicle_id}",
                             f"vehicle {v.vehicle_id} is {-v.delay_s:.0f} s early on trip {v.trip_id}",
                             "info", v.lat, v.lon))
    return out



def headway_alerts(fleet: Fleet, predicted: Predicted) -> list[AlertSpec]:
    """Bunching and gaps between consecutive vehicles of a route at their next common stop."""
    by_stop: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    on_trip = {(x.trip_id, x.service_date): x for x in fleet.vehicles.values()}
    failed: set[str] = set()
    for (trip, day, k), (arr, _p10, _p90) in predicted.items():
        v = on_trip.get((trip, day))
        if v is None or v.vehicle_id in failed:
            continue
        try:
            sched = service_day_start(day, fleet.timezone) + fleet.st_arr[k]
            by_stop[(fleet.trip_route[trip], fleet.st_stop[k])].append((arr, sched, v.vehicle_id))
        except Exception as exc:
            failed.add(v.vehicle_id)
            fleet.vehicle_failed(v.vehicle_id, "alerts", exc)
    seen: set[str] = set()
    out: list[AlertSpec] = []
    for (route, stop), items in sorted(by_stop.items(), key=lambda kv: min(a for a, _s, _v in kv[1])):
        items.sort()
        for (a0, s0, v0), (a1, s1, v1) in itertools.pairwise(items):
            subject = f"{fleet.agency}/{route}/{v1}"
            if subject in seen or v0 == v1:
                continue
            planned, actual = s1 - s0, a1 - a0
            if planned <= 60.0:
                continue
            seen.add(subject)
            if actual < fleet.config.bunching_ratio * planned:
                out.append(AlertSpec("bunching", subject, f"route {route}: vehicle {v1} {actual:.0f} s behind "
                                     f"{v0} at stop {stop} (planned {planned:.0f} s)"))
            elif actual > fleet.config.gap_ratio * planned and actual - planned > 600.0:
                out.append(AlertSpec("gap", subject, f"route {route}: {actual:.0f} s gap ahead of vehicle {v1} "
                                     f"at stop {stop} (planned {planned:.0f} s)"))
    return out

"""One vehicle's live state on its trip, as `telematics.fleet.Fleet` keeps it.

Plain data (no I/O): the last ping, the trip the vehicle runs and where it is along that
trip's path, the stops it has passed and the observations its pace and the time to its
next stop are learnt from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = ["VehicleTrack", "finite_or_none", "still_s"]


@dataclass
class VehicleTrack:
    """One vehicle's live state (times epoch s, distances m along its trip path).

    Attributes
    ----------
    agency, vehicle_id : str
        Platform agency id and the vehicle's id.
    observed_s : float
        Time of the last ping (epoch s).
    lat, lon : float
        Last position (degrees, WGS84).
    speed_mps, bearing : float or None
        Last reported speed (m/s) and bearing (degrees), None when not reported.
    occupancy : str or None
        Last reported GTFS-rt occupancy status.
    trip_id : str or None
        The trip the vehicle runs (reported or inferred), None when unknown.
    service_date : date or None
        Service day of ``trip_id``.
    day0_s : float
        Start of that service day (epoch s; GTFS times are seconds after it).
    along_m, offset_m : float
        Distance along the trip path and off it (m) of the last ping, NaN before matching.
    next_stop : int
        Index into the trip's stops of the first stop not yet passed.
    passed_s : list of float
        Passing time (epoch s) per passed stop, NaN when unknown.
    delay_s : float or None
        Lateness (s) against the schedule at ``along_m``, None at the origin.
    segments : list of tuple
        Latest completed segments ``(code, t0 s, t1 s, scheduled s, day0 s)`` feeding the pace.
    moving : bool
        The last ping advanced more than `telematics.downstream.MOVED_M`.
    moved_s : float
        Start (epoch s) of the last advancing interval (the ping before that advance).
    to_next : list of tuple
        Pings on the current segment ``(code, offset m, motion state, ping s)`` whose time
        to the next stop is learnt once it is passed.
    """

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
    """Time (s) the vehicle has been stationary at its last ping (`telematics.downstream.still_for`).

    Parameters
    ----------
    v : VehicleTrack
        The vehicle.

    Returns
    -------
    float
        0 while moving, else seconds since the start of its last advancing interval.
    """
    return 0.0 if v.moving else v.observed_s - v.moved_s


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when it is None or not finite (store reads give NaN for NULL).

    Parameters
    ----------
    value : Any
        A number or None.

    Returns
    -------
    float or None
    """
    return None if value is None or not math.isfinite(float(value)) else float(value)

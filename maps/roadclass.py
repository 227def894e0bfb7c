"""Road classes: which OSM highways are drivable, and per-class defaults.

Defaults follow OSMnx's approach (free-flow speed from ``maxspeed``, else the mean or a
class default) and HCM-style per-lane capacities. Values are typical urban figures; they
are estimates, replaced by observed speeds wherever the platform has evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DRIVABLE_HIGHWAYS",
    "ROAD_CLASSES",
    "ZONE_SPEEDS_KMH",
    "RoadClass",
    "capacity_vph",
    "class_freeflow_kmh",
    "default_lanes",
    "parse_maxspeed_kmh",
]


@dataclass(frozen=True)
class RoadClass:
    """Defaults of one road class.

    Attributes
    ----------
    speed_kmh : free-flow speed when ``maxspeed`` is absent (km/h).
    capacity_per_lane_vph : saturation capacity of one lane (vehicles/hour).
    lanes_per_direction : lanes in one direction when ``lanes`` is absent.
    """

    speed_kmh: float
    capacity_per_lane_vph: float
    lanes_per_direction: int


ROAD_CLASSES: dict[str, RoadClass] = {
    "motorway": RoadClass(100, 2000, 2),
    "motorway_link": RoadClass(60, 1500, 1),
    "trunk": RoadClass(80, 1800, 2),
    "trunk_link": RoadClass(50, 1400, 1),
    "primary": RoadClass(60, 1500, 2),
    "primary_link": RoadClass(40, 1200, 1),
    "secondary": RoadClass(50, 1200, 1),
    "secondary_link": RoadClass(40, 1000, 1),
    "tertiary": RoadClass(40, 1000, 1),
    "tertiary_link": RoadClass(30, 900, 1),
    "unclassified": RoadClass(40, 800, 1),
    "residential": RoadClass(30, 600, 1),
    "living_street": RoadClass(15, 300, 1),
    "service": RoadClass(20, 400, 1),
    "road": RoadClass(40, 800, 1),
    "busway": RoadClass(40, 800, 1),
    "bus_route": RoadClass(40, 1000, 1),  # network derived from GTFS shapes (class unknown)
    "synthetic": RoadClass(50, 1000, 1),
}
DRIVABLE_HIGHWAYS = frozenset(ROAD_CLASSES) - {"bus_route", "synthetic"}
_FALLBACK = ROAD_CLASSES["road"]

#: Implicit limits written as zone codes (``FI:urban``, ``DE:zone30``...), km/h.
#: Codes whose limit depends on the class (``XX:motorway``, ``none``) use the class default.
ZONE_SPEEDS_KMH: dict[str, float] = {
    "urban": 50.0,
    "rural": 80.0,
    "trunk": 100.0,
    "living_street": 20.0,
    "walk": 7.0,
    "zone20": 20.0,
    "zone30": 30.0,
    "zone40": 40.0,
}
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?\s*$")
_ZONE = re.compile(r"^[A-Z]{2}:([a-z_]*?)(\d+)?$")


def parse_maxspeed_kmh(value: str | None) -> float:
    """Parse an OSM ``maxspeed`` value to km/h; NaN when it does not fix a number.

    Handles ``"50"``, ``"30 mph"``, ``"FI:urban"``-style zone codes (see
    :data:`ZONE_SPEEDS_KMH`), ``"DE:zone30"``, ``"DE:30"``, ``"walk"``, and lists ``"60;40"`` (the
    lowest is taken). ``"none"``, ``"signals"``, ``"XX:motorway"`` give NaN: the caller
    falls back to the class default.
    """
    if value is None:
        return float("nan")
    parts = [p.strip() for p in str(value).split(";") if p.strip()]
    speeds = []
    for part in parts:
        m = _NUMBER.match(part.lower())
        if m:
            number = float(m.group(1))
            unit = m.group(2)
            factor = 1.609344 if unit == "mph" else 1.852 if unit == "knots" else 1.0
            if number > 0:
                speeds.append(number * factor)
            continue
        if part.lower() in ZONE_SPEEDS_KMH:
            speeds.append(ZONE_SPEEDS_KMH[part.lower()])
            continue
        z = _ZONE.match(part)
        if z:
            kind, number_text = z.group(1), z.group(2)
            if number_text and kind in ("", "zone"):
                speeds.append(float(number_text))
            elif f"{kind}{number_text or ''}" in ZONE_SPEEDS_KMH:
                speeds.append(ZONE_SPEEDS_KMH[f"{kind}{number_text or ''}"])
    return min(speeds) if speeds else float("nan")


def _lookup(road_class: npt.ArrayLike) -> list[RoadClass]:
    return [ROAD_CLASSES.get(str(c), _FALLBACK) for c in np.asarray(road_class).reshape(-1)]


def class_freeflow_kmh(road_class: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Default free-flow speed of each road class (km/h)."""
    classes, inverse = np.unique(np.asarray(road_class).astype(str), return_inverse=True)
    table = np.array([c.speed_kmh for c in _lookup(classes)], dtype=np.float64)
    return table[inverse.reshape(-1)]


def default_lanes(road_class: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Default lanes per direction of each road class."""
    classes, inverse = np.unique(np.asarray(road_class).astype(str), return_inverse=True)
    table = np.array([c.lanes_per_direction for c in _lookup(classes)], dtype=np.int16)
    return table[inverse.reshape(-1)]


def capacity_vph(road_class: npt.ArrayLike, lanes: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Directional capacity (vehicles/hour): per-lane capacity of the class × lanes (≥ 1)."""
    classes, inverse = np.unique(np.asarray(road_class).astype(str), return_inverse=True)
    table = np.array([c.capacity_per_lane_vph for c in _lookup(classes)], dtype=np.float64)
    lanes_arr = np.maximum(np.asarray(lanes, dtype=np.float64).reshape(-1), 1.0)
    return np.asarray(table[inverse.reshape(-1)] * lanes_arr, dtype=np.float64)

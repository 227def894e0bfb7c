"""Availability of a parking site: capacity, occupied, free, unknown and a DATEX II status.

Pure functions over plain numbers and numpy arrays; the service keeps the inputs in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from parking.cleaning import FLAG_CLAMPED_NEGATIVE, FLAG_CLAMPED_OVER_CAPACITY, clamp_occupancy
from parking.config import ParkingSettings

__all__ = [
    "FLAG_NO_DATA",
    "FLAG_STALE_COUNT",
    "FLAG_STALE_SENSORS",
    "ParkingStatus",
    "SiteAvailability",
    "availability_from_count",
    "availability_from_spaces",
    "fresh_spaces",
    "site_status",
]

FLAG_STALE_SENSORS = "stale_sensors"
FLAG_STALE_COUNT = "stale_count"
FLAG_NO_DATA = "no_data"


class ParkingStatus(StrEnum):
    """Site status of the platform's own API, named after DATEX II terms.

    ``spacesAvailable``, ``almostFull``, ``full`` and ``unknown`` are DATEX II parking site
    status values; ``closed`` is a DATEX II *opening* status. The DATEX II Parking Publication
    Light export (:mod:`parking.datex2`) maps them to its own terms (``isOpenNow``,
    ``availableSpaces``).
    """

    SPACES_AVAILABLE = "spacesAvailable"
    ALMOST_FULL = "almostFull"
    FULL = "full"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SiteAvailability:
    """Current availability of one site.

    Attributes
    ----------
    capacity : int
        Spaces (total).
    occupied, free : int or None
        Occupied / free spaces among those whose state is known; None when nothing is known.
    unknown : int
        Spaces whose state is unknown (stale or offline sensors).
    status : ParkingStatus
    observed_at : datetime or None
        Source time of the newest input used (UTC).
    flags : tuple of str
        Quality flags (clamped input, stale sensors, stale count, counter drift ...).
    free_by_type : dict
        Free spaces per vehicle type where sensors know the type of each space.
    """

    site_id: str
    capacity: int
    occupied: int | None
    free: int | None
    unknown: int
    status: ParkingStatus
    observed_at: datetime | None
    flags: tuple[str, ...] = ()
    free_by_type: dict[str, int] = field(default_factory=dict)

    def age_s(self, now: datetime) -> float | None:
        """Seconds since ``observed_at`` at ``now`` (s)."""
        if self.observed_at is None:
            return None
        return max(0.0, (now - self.observed_at).total_seconds())

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """JSON-ready record with freshness (``observed_at`` ISO 8601, ``age_s``)."""
        age = self.age_s(now)
        return {
            "site_id": self.site_id,
            "capacity": self.capacity,
            "occupied": self.occupied,
            "free": self.free,
            "unknown": self.unknown,
            "status": self.status.value,
            "observed_at": self.observed_at.isoformat() if self.observed_at else None,
            "age_s": round(age, 1) if age is not None else None,
            "flags": list(self.flags),
            "free_by_type": dict(self.free_by_type),
        }


def site_status(
    capacity: int, occupied: int | None, unknown: int, is_open: bool, settings: ParkingSettings
) -> ParkingStatus:
    """DATEX II status from counts (spaces) and the configured thresholds.

    ``closed`` outside opening hours; ``unknown`` without data or when unknown spaces exceed
    ``max_unknown_ratio`` of capacity; ``full`` when free spaces are at most
    ``full_free_spaces`` and none is unknown; ``almostFull`` at ``almost_full_ratio``
    occupancy (or when only unknown spaces might be free); else ``spacesAvailable``.
    """
    if not is_open:
        return ParkingStatus.CLOSED
    if occupied is None or capacity <= 0 or unknown > settings.max_unknown_ratio * capacity:
        return ParkingStatus.UNKNOWN
    free = capacity - unknown - occupied
    if free <= settings.full_free_spaces:
        return ParkingStatus.FULL if unknown == 0 else ParkingStatus.ALMOST_FULL
    if occupied >= settings.almost_full_ratio * (capacity - unknown):
        return ParkingStatus.ALMOST_FULL
    return ParkingStatus.SPACES_AVAILABLE


def availability_from_count(
    site_id: str,
    capacity: int,
    occupied: float | None,
    observed_at: datetime | None,
    now: datetime,
    settings: ParkingSettings,
    is_open: bool = True,
    flags: tuple[str, ...] = (),
) -> SiteAvailability:
    """Availability of a counter-equipped site from its latest occupancy (spaces).

    The reading is clamped into ``[0, capacity]`` and flagged when it was outside; a count
    older than ``counter_stale_s`` gives status ``unknown`` with flag ``stale_count``.
    """
    out_flags = list(flags)
    if occupied is None or observed_at is None:
        status = ParkingStatus.CLOSED if not is_open else ParkingStatus.UNKNOWN
        return SiteAvailability(site_id, capacity, None, None, 0, status, None, (*out_flags, FLAG_NO_DATA))
    clamped, over, negative = clamp_occupancy(round(occupied), capacity)
    if bool(over):
        out_flags.append(FLAG_CLAMPED_OVER_CAPACITY)
    if bool(negative):
        out_flags.append(FLAG_CLAMPED_NEGATIVE)
    occ = int(clamped)
    status = site_status(capacity, occ, 0, is_open, settings)
    if (now - observed_at).total_seconds() > settings.counter_stale_s:
        out_flags.append(FLAG_STALE_COUNT)
        if status is not ParkingStatus.CLOSED:
            status = ParkingStatus.UNKNOWN
    return SiteAvailability(
        site_id, capacity, occ, capacity - occ, 0, status, observed_at, tuple(dict.fromkeys(out_flags))
    )


def fresh_spaces(
    last_seen_s: npt.NDArray[np.float64], online: npt.NDArray[np.bool_], now_s: float, settings: ParkingSettings
) -> npt.NDArray[np.bool_]:
    """Spaces whose sensor state is known: online, heard, and heard within ``sensor_stale_s``.

    Parameters
    ----------
    last_seen_s : ndarray of float, shape (N,)
        Epoch time of each sensor's last message (s); NaN if never heard.
    online : ndarray of bool, shape (N,)
        False once the sensor's Last Will / offline status arrived.
    now_s : float
        Current epoch time (s).
    """
    age = now_s - np.nan_to_num(last_seen_s, nan=-np.inf)
    return np.asarray(online & ~np.isnan(last_seen_s) & (age <= settings.sensor_stale_s), dtype=bool)


def availability_from_spaces(
    site_id: str,
    occupied: npt.NDArray[np.bool_],
    last_seen_s: npt.NDArray[np.float64],
    online: npt.NDArray[np.bool_],
    now_s: float,
    settings: ParkingSettings,
    is_open: bool = True,
    vehicle_types: npt.NDArray[np.str_] | None = None,
) -> SiteAvailability:
    """Availability of a sensor zone from the state of each space.

    Parameters
    ----------
    occupied : ndarray of bool, shape (N,)
        Last reported state of each space.
    last_seen_s : ndarray of float, shape (N,)
        Epoch time of each sensor's last message (s); NaN if never heard.
    online : ndarray of bool, shape (N,)
        False once the sensor's Last Will / offline status arrived.
    now_s : float
        Current epoch time (s).
    vehicle_types : ndarray of str, optional
        Vehicle type of each space, for ``free_by_type``.

    Notes
    -----
    A space whose sensor is offline, never heard or silent longer than ``sensor_stale_s``
    counts as unknown, never as free.
    """
    n = int(occupied.size)
    fresh = fresh_spaces(last_seen_s, online, now_s, settings)
    unknown = int(n - fresh.sum())
    occ = int((occupied & fresh).sum())
    free_mask = fresh & ~occupied
    flags = (FLAG_STALE_SENSORS,) if unknown else ()
    by_type: dict[str, int] = {}
    if vehicle_types is not None and n:
        kinds, inverse = np.unique(vehicle_types, return_inverse=True)
        counts = np.bincount(inverse, weights=free_mask.astype(np.float64), minlength=kinds.size)
        by_type = {str(k): int(c) for k, c in zip(kinds, counts, strict=True)}
    seen = last_seen_s[fresh]
    observed = datetime.fromtimestamp(float(seen.max()), tz=UTC) if seen.size else None
    any_known = bool(fresh.any())
    status = site_status(n, occ if any_known else None, unknown, is_open, settings)
    return SiteAvailability(
        site_id, n, occ if any_known else None, int(free_mask.sum()) if any_known else None,
        unknown, status, observed, flags, by_type,
    )


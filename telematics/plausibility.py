"""Plausibility of vehicle positions: impossible speeds, fixes outside the service area, the future.

One pure, vectorised kernel, `plausibility_flags`, judges a set of fixes (any number of
vehicles, any order) and is the one rule wherever positions are used: the live arrivals
state applies only plausible fixes (`telematics.service`), and the report's vehicle-km, AVL
completeness and data-quality counts leave the flagged ones out (`telematics.kpi`). Stored
positions are kept as received (nothing is lost); a fix's flags are a function of its
vehicle's fixes, the thresholds and the service area, so live state and reports agree and a
re-configured threshold re-judges history.

The rule, per vehicle in time order:

* ``AREA``: the fix lies outside the service area (`ServiceArea`: the bounding box of the
  agency's GTFS stops widened by a margin, or a configured box).
* ``SPEED``: the fix is inside the area but reaching it from the vehicle's last *accepted*
  fix would need more than ``max_speed_mps`` (distance minus ``gps_noise_m`` over the time
  between them). A vehicle's first fix in the area is accepted. After ``reanchor_fixes``
  consecutive fixes flagged for speed that are plausible one from the next, the last of them
  is accepted: the vehicle is where they say (the earlier anchor was the wrong one).
* ``FUTURE``: the fix is stamped more than ``max_future_s`` after ``now_s`` (only when a
  clock is given: live state); it is not used as an anchor either.

A fix with no flag is accepted and becomes the anchor of the next ones. The sequential rule
is computed with whole-array passes that converge in two or three rounds on real data (every
round settles at least the next fix of each vehicle that changed); a vehicle still changing
after `MAX_ROUNDS` rounds is finished by the plain sequential loop, which also judges inputs of
at most `SMALL` fixes (a live message: numpy's per-call cost would exceed the work).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "AREA",
    "FLAG_NAMES",
    "FUTURE",
    "MAX_ROUNDS",
    "SMALL",
    "SPEED",
    "ServiceArea",
    "flag_names",
    "plausibility_flags",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: Flags of a fix (bits of the ``uint8`` `plausibility_flags` returns).
SPEED, AREA, FUTURE = 1, 2, 4
FLAG_NAMES = {SPEED: "speed", AREA: "area", FUTURE: "future"}
#: Whole-array rounds before the vehicles still changing are finished sequentially.
MAX_ROUNDS = 8
#: Up to this many fixes (a live message) are judged fix by fix in plain Python.
SMALL = 16
EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0


@dataclass(frozen=True)
class ServiceArea:
    """A latitude/longitude box (degrees, WGS84) where an agency's vehicles may be."""

    west: float
    south: float
    east: float
    north: float

    def __post_init__(self) -> None:
        if not (-180.0 <= self.west <= self.east <= 180.0 and -90.0 <= self.south <= self.north <= 90.0):
            raise ValueError(f"service area needs west <= east in [-180, 180] and south <= north in [-90, 90], "
                             f"got {self.west}, {self.south}, {self.east}, {self.north}")

    @classmethod
    def around(cls, lat: npt.ArrayLike, lon: npt.ArrayLike, margin_m: float) -> ServiceArea | None:
        """The bounding box of points (e.g. an agency's stops, degrees) widened by ``margin_m`` (m)
        on every side; None without a finite point."""
        la, lo = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
        ok = np.isfinite(la) & np.isfinite(lo)
        if not ok.any():
            return None
        la, lo = la[ok], lo[ok]
        d_lat = margin_m / _M_PER_DEG_LAT
        widest = min(89.0, max(abs(float(la.min())), abs(float(la.max()))) + d_lat)
        d_lon = margin_m / (_M_PER_DEG_LAT * math.cos(math.radians(widest)))
        return cls(max(-180.0, float(lo.min()) - d_lon), max(-90.0, float(la.min()) - d_lat),
                   min(180.0, float(lo.max()) + d_lon), min(90.0, float(la.max()) + d_lat))

    @classmethod
    def of(cls, box: Sequence[float]) -> ServiceArea:
        """From ``(west, south, east, north)`` degrees (GeoJSON bbox order)."""
        if len(box) != 4:
            raise ValueError(f"service area needs 4 numbers west, south, east, north; got {len(box)}")
        return cls(*(float(v) for v in box))

    def contains(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> BoolArray:
        """Whether each point (degrees) lies in the box (edges included; NaN never does)."""
        la, lo = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
        return np.asarray((la >= self.south) & (la <= self.north) & (lo >= self.west) & (lo <= self.east))


def flag_names(flags: int) -> list[str]:
    """The names of the bits set in ``flags`` (``["speed"]``...)."""
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


def _distance_m(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    """Great-circle distance (m) between points (degrees), element-wise."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def plausibility_flags(
    vehicle: npt.ArrayLike,
    t_s: npt.ArrayLike,
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    *,
    max_speed_mps: float = 50.0,
    area: ServiceArea | None = None,
    gps_noise_m: float = 50.0,
    reanchor_fixes: int = 3,
    now_s: float | None = None,
    max_future_s: float = 300.0,
) -> npt.NDArray[np.uint8]:
    """Flags of each fix (``SPEED | AREA | FUTURE`` bits; 0: plausible), in input order.

    Parameters
    ----------
    vehicle : array-like
        Vehicle key of each fix (any hashable values: ids, or ``agency/id`` strings).
    t_s : array-like of float
        Time of each fix, epoch s (any order: fixes are judged in time order per vehicle;
        equal times keep input order).
    lat, lon : array-like of float
        Position, degrees WGS84.
    max_speed_mps : float
        Fastest plausible move between two accepted fixes, m/s (50 m/s = 180 km/h).
    area : ServiceArea, optional
        Where vehicles may be (None: anywhere).
    gps_noise_m : float
        Distance two fixes may differ by at no time apart (GPS error), m.
    reanchor_fixes : int
        Consecutive speed-flagged, mutually plausible fixes after which the last is accepted
        (at least 2).
    now_s : float, optional
        The clock, epoch s: fixes stamped more than ``max_future_s`` (s) after it are flagged
        ``FUTURE`` (None: no clock, no future check).

    Returns
    -------
    ndarray of uint8
        The flags of each fix.
    """
    if reanchor_fixes < 2:
        raise ValueError("reanchor_fixes must be at least 2")
    if not max_speed_mps > 0 or not gps_noise_m >= 0:
        raise ValueError("max_speed_mps must be > 0 and gps_noise_m >= 0")
    t = np.asarray(t_s, np.float64)
    la, lo = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    n = len(t)
    if n <= SMALL:
        return _flags_small(vehicle, t.tolist(), la.tolist(), lo.tolist(), max_speed_mps, area, gps_noise_m,
                            reanchor_fixes, now_s, max_future_s)
    codes = _codes(vehicle, n)
    order = np.lexsort((np.arange(n), t, codes))
    ts, las, los, vs = t[order], la[order], lo[order], codes[order]
    inside = area.contains(las, los) if area is not None else np.isfinite(las) & np.isfinite(los)
    future = (ts > now_s + max_future_s) if now_s is not None else np.zeros(n, bool)
    usable = inside & ~future & np.isfinite(ts)
    accepted = _accept(vs, ts, las, los, usable, max_speed_mps, gps_noise_m, reanchor_fixes)
    flags = np.zeros(n, np.uint8)
    flags[order] = (np.where(~inside, AREA, 0) | np.where(future, FUTURE, 0)
                    | np.where(inside & ~future & ~accepted, SPEED, 0))
    return flags


def _flags_small(vehicle: npt.ArrayLike, t: list[float], lat: list[float], lon: list[float], vmax: float,
                 area: ServiceArea | None, noise: float, k: int, now_s: float | None,
                 max_future_s: float) -> npt.NDArray[np.uint8]:
    """`plausibility_flags` of a few fixes (a live message), in plain Python: the same rule
    without numpy's per-call cost."""
    keys = np.asarray(vehicle, dtype=object).tolist()
    groups: dict[object, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    flags = [0] * len(t)
    for rows in groups.values():
        rows.sort(key=lambda i: t[i])  # stable: equal times keep input order
        usable = []
        for i in rows:
            inside = (area.south <= lat[i] <= area.north and area.west <= lon[i] <= area.east) if area is not None \
                else math.isfinite(lat[i]) and math.isfinite(lon[i])
            future = now_s is not None and t[i] > now_s + max_future_s
            flags[i] = (0 if inside else AREA) | (FUTURE if future else 0)
            usable.append(inside and not future and math.isfinite(t[i]))
        accepted = _accept_sequential([t[i] for i in rows], [lat[i] for i in rows], [lon[i] for i in rows], usable,
                                      vmax, noise, k)
        for i, ok, use in zip(rows, accepted, usable, strict=True):
            if use and not ok:
                flags[i] = SPEED
    return np.array(flags, np.uint8)


def _codes(vehicle: npt.ArrayLike, n: int) -> npt.NDArray[np.intp]:
    """An integer code per distinct vehicle key (pandas for many rows, a dict for the few of a live fix)."""
    if n > 64:
        return np.asarray(pd.factorize(pd.Series(np.asarray(vehicle, dtype=object)), sort=False)[0], np.intp)
    seen: dict[object, int] = {}
    return np.fromiter((seen.setdefault(key, len(seen)) for key in np.asarray(vehicle, dtype=object).tolist()),
                       np.intp, count=n)


def _accept(v: npt.NDArray[np.intp], t: FloatArray, lat: FloatArray, lon: FloatArray, usable: BoolArray,
            vmax: float, noise: float, k: int) -> BoolArray:
    """Accepted fixes of arrays sorted by (vehicle, time) (see the module docstring)."""
    n = len(t)
    idx = np.arange(n)
    first = np.empty(n, bool)
    first[0] = True
    np.not_equal(v[1:], v[:-1], out=first[1:])
    start = np.maximum.accumulate(np.where(first, idx, 0))  # first row of each row's vehicle

    def reach(a: npt.NDArray[np.intp], b: npt.NDArray[np.intp]) -> BoolArray:
        d = _distance_m(lat[a], lon[a], lat[b], lon[b])
        return np.asarray(d <= noise + vmax * np.maximum(t[b] - t[a], 0.0))

    # chain[i]: usable fixes ending at i, each plausible from the one before (no vehicle change)
    linked = np.zeros(n, bool)
    linked[1:] = ~first[1:] & usable[1:] & usable[:-1] & reach(idx[:-1], idx[1:])
    chain = np.where(usable, idx - np.maximum.accumulate(np.where(linked, 0, idx)) + 1, 0)
    can_reanchor = chain >= k

    def step(acc: BoolArray) -> BoolArray:
        last = np.maximum.accumulate(np.where(acc, idx, -1))
        anchor = np.empty(n, np.intp)
        anchor[0] = -1
        anchor[1:] = last[:-1]
        has = anchor >= start
        ok = ~has
        rows = np.flatnonzero(has & usable)
        ok[rows] = reach(anchor[rows], rows)
        csum = np.zeros(n + 1, np.intp)
        np.cumsum(acc, out=csum[1:])
        quiet = np.zeros(n, bool)  # no accepted fix among the k-1 before (the chain's rows)
        cand = np.flatnonzero(can_reanchor)
        quiet[cand] = csum[cand] - csum[cand - k + 1] == 0
        return np.asarray(usable & (ok | quiet))

    acc = usable.copy()
    for _ in range(MAX_ROUNDS):
        new = step(acc)
        if np.array_equal(new, acc):
            return acc
        acc = new
    changed = np.unique(v[step(acc) != acc])
    for code in changed.tolist():  # rare: vehicles whose fixes keep changing, done one fix at a time
        rows = np.flatnonzero(v == code)
        acc[rows] = _accept_sequential(t[rows].tolist(), lat[rows].tolist(), lon[rows].tolist(),
                                       usable[rows].tolist(), vmax, noise, k)
    return acc


def _accept_sequential(t: list[float], lat: list[float], lon: list[float], usable: list[bool], vmax: float,
                       noise: float, k: int) -> list[bool]:
    """The rule fix by fix over one vehicle's time-ordered fixes (the reference `_accept` agrees with)."""

    def reach(a: int, b: int) -> bool:
        p1, p2 = math.radians(lat[a]), math.radians(lat[b])
        h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon[b] - lon[a]) / 2) ** 2
        return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, h)))) <= noise + vmax * max(t[b] - t[a], 0.0)

    acc = [False] * len(t)
    anchor, chain = -1, 0
    for i in range(len(t)):
        if not usable[i]:
            chain = 0
            continue
        chain = chain + 1 if i > 0 and usable[i - 1] and reach(i - 1, i) else 1
        if anchor < 0 or reach(anchor, i) or (chain >= k and not any(acc[i - k + 1:i])):
            acc[i] = True
            anchor = i
    return acc

"""In-memory live state of every site: counters, space sensors, availability and change versions.

Pure and thread-safe: the service feeds it messages (live or replayed from the store) and
asks it for availability; no I/O here.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import opening_hours
import orjson
from scipy.spatial import cKDTree

from parking.availability import (
    SiteAvailability,
    availability_from_count,
    availability_from_spaces,
    fresh_spaces,
)
from parking.cleaning import CounterTracker
from parking.config import ParkingSettings
from parking.sites import Site

log = logging.getLogger(__name__)

__all__ = ["FLAG_DUPLICATE_IGNORED", "ParkingState", "SiteChange", "SiteIndex", "SpaceStates", "distance_m"]

FLAG_DUPLICATE_IGNORED = "duplicates_ignored"
EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat: float, lon: float, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Great-circle (haversine) distance from one point to many (degrees in, m out)."""
    p1, p2 = np.radians(lat), np.radians(lats)
    dphi = p2 - p1
    dlmb = np.radians(lons - lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _sphere_xyz(lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Points on a sphere of radius ``EARTH_RADIUS_M`` (degrees in, m out), shape (N, 3)."""
    phi, lmb = np.radians(lats), np.radians(lons)
    return EARTH_RADIUS_M * np.column_stack((np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)))


class SiteIndex:
    """Sites in a KD-tree over 3-D sphere coordinates (chord distance is monotone in great-circle
    distance, so one tree serves every city without a local projection).

    Parameters
    ----------
    ids : list of str
        Site ids, one per position.
    lats, lons : ndarray of float, shape (N,)
        Site positions, WGS84 degrees.
    """

    def __init__(self, ids: list[str], lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]) -> None:
        self.ids, self.lats, self.lons = ids, lats, lons
        self.tree = cKDTree(_sphere_xyz(lats, lons)) if lats.size else None

    def within(self, lat: float, lon: float, radius_m: float) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Indices and great-circle distances (m) of the sites within ``radius_m`` (m),
        nearest first (ties in index order)."""
        if self.tree is None:
            return np.empty(0, dtype=np.intp), np.empty(0)
        half_angle = min(radius_m / EARTH_RADIUS_M, np.pi) / 2.0
        chord = 2.0 * EARTH_RADIUS_M * np.sin(half_angle) * (1.0 + 1e-9) + 1e-6
        phi, lmb = math.radians(lat), math.radians(lon)
        point = (EARTH_RADIUS_M * math.cos(phi) * math.cos(lmb), EARTH_RADIUS_M * math.cos(phi) * math.sin(lmb),
                 EARTH_RADIUS_M * math.sin(phi))
        idx = np.sort(np.asarray(self.tree.query_ball_point(point, chord), dtype=np.intp))
        dist = distance_m(lat, lon, self.lats[idx], self.lons[idx])
        keep = dist <= radius_m
        idx, dist = idx[keep], dist[keep]
        order = np.argsort(dist, kind="stable")
        return idx[order], dist[order]


@dataclass
class _CounterSite:
    tracker: CounterTracker = field(default_factory=CounterTracker)
    observed_at: datetime | None = None
    duplicates: int = 0


@dataclass
class _SensorSite:
    index: dict[str, int]
    occupied: npt.NDArray[np.bool_]
    last_seen_s: npt.NDArray[np.float64]
    online: npt.NDArray[np.bool_]
    types: npt.NDArray[np.str_]
    devices: list[str]
    duplicates: int = 0


@dataclass(frozen=True)
class SpaceStates:
    """State of each space of a sensor zone at one instant, in the order of ``Site.spaces``.

    Attributes
    ----------
    occupied : ndarray of bool, shape (N,)
        Last reported state (meaningful only where ``known``).
    known : ndarray of bool, shape (N,)
        Sensor online and heard within ``sensor_stale_s``.
    last_seen_s : ndarray of float, shape (N,)
        Epoch time of each sensor's last message (s); NaN if never heard.
    """

    occupied: npt.NDArray[np.bool_]
    known: npt.NDArray[np.bool_]
    last_seen_s: npt.NDArray[np.float64]


@dataclass(frozen=True)
class SiteChange:
    """A site whose availability changed: before (None at first) and after."""

    site_id: str
    before: SiteAvailability | None
    after: SiteAvailability


class ParkingState:
    """Live state of all sites.

    Parameters
    ----------
    settings : ParkingSettings
        Thresholds (staleness, status).
    """

    def __init__(self, settings: ParkingSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self.sites: dict[str, Site] = {}
        self._counters: dict[str, _CounterSite] = {}
        self._sensors: dict[str, _SensorSite] = {}
        self._sensor_ids: dict[str, tuple[str, int]] = {}
        self._hours: dict[str, opening_hours.OpeningHours | None] = {}
        self._zones: dict[str, ZoneInfo] = {}
        self._current: dict[str, SiteAvailability] = {}
        self.site_versions: dict[str, int] = {}
        self.version = 0
        self._listeners: list[Callable[[list[SiteChange]], None]] = []
        self.index: tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]] = ([], np.empty(0), np.empty(0))
        self.site_index = SiteIndex([], np.empty(0), np.empty(0))

    # ------------------------------------------------------------------ sites
    def set_sites(self, sites: list[Site]) -> None:
        """Install or update site definitions, keeping the live state of unchanged sites."""
        with self._lock:
            for site in sites:
                old = self.sites.get(site.site_id)
                self.sites[site.site_id] = site
                self._hours[site.site_id] = opening_hours.OpeningHours(site.opening_hours) if site.opening_hours else None
                self._zones[site.site_id] = ZoneInfo(site.timezone or self.settings.timezone)
                if site.spaces:
                    if old is None or old.spaces != site.spaces:
                        n = len(site.spaces)
                        self._sensors[site.site_id] = _SensorSite(
                            {s.space_id: i for i, s in enumerate(site.spaces)},
                            np.zeros(n, dtype=bool), np.full(n, np.nan), np.ones(n, dtype=bool),
                            np.array([s.vehicle_type for s in site.spaces]),
                            [site.sensor_of(s) for s in site.spaces],
                        )
                    self._counters.pop(site.site_id, None)
                else:
                    self._counters.setdefault(site.site_id, _CounterSite())
                    self._sensors.pop(site.site_id, None)
            self._sensor_ids = {
                site.sensor_of(sp): (site.site_id, i)
                for site in self.sites.values() for i, sp in enumerate(site.spaces)
            }
            order = sorted(self.sites)
            lats = np.array([self.sites[s].lat for s in order], dtype=np.float64)
            lons = np.array([self.sites[s].lon for s in order], dtype=np.float64)
            self.site_index = SiteIndex(order, lats, lons)
            self.index = (order, lats, lons)

    def zone(self, site_id: str) -> ZoneInfo:
        return self._zones[site_id]

    def sensor_site(self, device_id: str) -> tuple[str, str] | None:
        """``(site_id, space_id)`` of a sensor device id, None if unknown."""
        hit = self._sensor_ids.get(device_id)
        if hit is None:
            return None
        return hit[0], self.sites[hit[0]].spaces[hit[1]].space_id

    # ------------------------------------------------------------------ input
    def apply_count(self, site_id: str, time: datetime, occupied: int | None, entries: int | None, exits: int | None) -> bool:
        """Apply a counter message; False when the site is unknown or it is older than the state."""
        with self._lock:
            counter = self._counters.get(site_id)
            if counter is None:
                return False
            if counter.observed_at is not None and time <= counter.observed_at:
                counter.duplicates += 1
                return False
            if occupied is not None:
                counter.tracker.absolute(occupied)
            else:
                counter.tracker.delta(entries or 0, exits or 0)
            counter.observed_at = time
            return True

    def apply_space(self, site_id: str, space_id: str, time: datetime, occupied: bool) -> bool:
        """Apply a space sensor message (a message also means the sensor is online)."""
        with self._lock:
            sensors = self._sensors.get(site_id)
            i = sensors.index.get(space_id) if sensors is not None else None
            if sensors is None or i is None:
                return False
            t = time.timestamp()
            if not np.isnan(sensors.last_seen_s[i]) and t <= sensors.last_seen_s[i]:
                sensors.duplicates += 1
                return False
            sensors.occupied[i] = occupied
            sensors.last_seen_s[i] = t
            sensors.online[i] = True
            return True

    def apply_device_status(self, device_id: str, time: datetime, online: bool) -> str | None:
        """Apply a sensor heartbeat / Last Will; return the site id it belongs to."""
        with self._lock:
            hit = self._sensor_ids.get(device_id)
            if hit is None:
                return None
            site_id, i = hit
            sensors = self._sensors[site_id]
            sensors.online[i] = online
            if online and (np.isnan(sensors.last_seen_s[i]) or time.timestamp() > sensors.last_seen_s[i]):
                sensors.last_seen_s[i] = time.timestamp()
            return site_id

    def offline_sensors(self, now: datetime) -> set[str]:
        """Device ids of sensors offline (Last Will) or silent past ``sensor_stale_s``."""
        now_s = now.timestamp()
        out: set[str] = set()
        with self._lock:
            for s in self._sensors.values():
                seen = s.last_seen_s
                silent = ~np.isnan(seen) & (now_s - np.nan_to_num(seen) > self.settings.sensor_stale_s)
                bad = np.flatnonzero(~s.online | silent)
                if bad.size:
                    out.update(s.devices[i] for i in bad)
        return out

    # ------------------------------------------------------------------ output
    def is_open(self, site_id: str, now: datetime) -> bool:
        hours = self._hours.get(site_id)
        if hours is None:
            return True
        local = now.astimezone(self._zones[site_id]).replace(tzinfo=None)
        return bool(hours.is_open(local))

    def compute(self, site_id: str, now: datetime) -> SiteAvailability:
        """Availability of a site at ``now`` from the current inputs."""
        with self._lock:
            site = self.sites[site_id]
            is_open = self.is_open(site_id, now)
            sensors = self._sensors.get(site_id)
            if sensors is not None:
                avail = availability_from_spaces(
                    site_id, sensors.occupied.copy(), sensors.last_seen_s.copy(), sensors.online.copy(),
                    now.timestamp(), self.settings, is_open, sensors.types,
                )
                if sensors.duplicates:
                    avail = _with_flag(avail, FLAG_DUPLICATE_IGNORED)
                return avail
            counter = self._counters[site_id]
            flags = tuple(sorted(counter.tracker.flags))
            if counter.duplicates:
                flags = (*flags, FLAG_DUPLICATE_IGNORED)
            return availability_from_count(
                site_id, site.capacity, counter.tracker.occupied, counter.observed_at, now, self.settings,
                is_open, flags,
            )

    def space_states(self, now: datetime) -> dict[str, SpaceStates]:
        """Per-space state of every sensor zone at ``now`` (copies), keyed by site id."""
        now_s = now.timestamp()
        with self._lock:
            return {
                site_id: SpaceStates(s.occupied.copy(), fresh_spaces(s.last_seen_s, s.online, now_s, self.settings),
                                     s.last_seen_s.copy())
                for site_id, s in self._sensors.items()
            }

    def add_listener(self, listener: Callable[[list[SiteChange]], None]) -> None:
        """Call ``listener`` with every refresh's changes, in the order of the versions (under the
        state's lock, so it must be quick and must not block)."""
        with self._lock:
            self._listeners.append(listener)

    def refresh(self, now: datetime, site_ids: list[str] | None = None) -> list[SiteChange]:
        """Recompute sites (all by default); return those whose availability changed (also
        handed to the listeners)."""
        changes = []
        with self._lock:
            for site_id in site_ids if site_ids is not None else list(self.sites):
                if site_id not in self.sites:
                    continue
                after = self.compute(site_id, now)
                before = self._current.get(site_id)
                if before is None or _key(before) != _key(after):
                    self._current[site_id] = after
                    self.version += 1
                    self.site_versions[site_id] = self.version
                    changes.append(SiteChange(site_id, before, after))
            if changes:
                for listener in self._listeners:
                    try:
                        listener(changes)
                    except Exception:
                        log.exception("a parking change listener failed")
        return changes

    def current(self, site_id: str) -> SiteAvailability | None:
        with self._lock:
            return self._current.get(site_id)

    def all_current(self) -> list[SiteAvailability]:
        with self._lock:
            return [self._current[s] for s in self.order if s in self._current]

    @property
    def order(self) -> list[str]:
        """Site ids, sorted (the order of ``index``)."""
        return self.index[0]

    def changed_since(self, version: int) -> tuple[int, list[SiteAvailability]]:
        """Current version and the sites changed after ``version``."""
        with self._lock:
            ids = [s for s, v in self.site_versions.items() if v > version]
            return self.version, [self._current[s] for s in ids]

    def content_tag(self) -> str:
        """Hash of the availability content (without ages): equal state, equal tag."""
        with self._lock:
            body = orjson.dumps([_key(a) for a in self.all_current()], default=str)
        return hashlib.sha256(body).hexdigest()[:32]


def _key(a: SiteAvailability) -> tuple[object, ...]:
    return (a.site_id, a.capacity, a.occupied, a.free, a.unknown, a.status.value,
            a.observed_at.isoformat() if a.observed_at else None, a.flags, tuple(sorted(a.free_by_type.items())))


def _with_flag(a: SiteAvailability, flag: str) -> SiteAvailability:
    return SiteAvailability(a.site_id, a.capacity, a.occupied, a.free, a.unknown, a.status, a.observed_at,
                            (*a.flags, flag), a.free_by_type)


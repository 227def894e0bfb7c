"""Per-interval aggregation of line crossings: counts, mean speed, occupancy.

Intervals are aligned on multiples of ``interval_s`` since the Unix epoch (UTC). For every
closed interval the aggregator emits one :class:`CountRecord` per line × direction × class,
zero counts included (a quiet minute is data too). The mean speed (km/h) of a line is the
mean of the speeds of the vehicles that crossed it: measured on the calibrated ground plane
(:meth:`IntervalAggregator.add_speeds`, see :mod:`video.speeds`), or from a
:class:`SpeedTrap`, two of the camera's lines a known road distance apart, where a track's
speed is that distance over the time between its two crossings, credited to the line crossed
second. Occupancy is the
fraction of the interval during which any vehicle covered the line (loop-detector style).
Crossings whose interval was already emitted are dropped and counted in ``late_crossings``
(records are idempotent rows keyed by interval; they are never re-sent with partial counts).
Tracks of unknown class (-1) are counted as cars.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from video.classify import CLASS_NAMES, class_name

__all__ = ["DIRECTIONS", "CountRecord", "IntervalAggregator", "SpeedTrap"]

DIRECTIONS = ("in", "out")
_MAX_SPEED_KMH = 250.0


@dataclass(frozen=True)
class SpeedTrap:
    """Two lines a known distance apart along the road.

    Attributes
    ----------
    first_line, second_line : str
        Line ids (order does not matter: either crossing order is timed).
    distance_m : float
        Road distance between the lines, metres.
    """

    first_line: str
    second_line: str
    distance_m: float

    def __post_init__(self) -> None:
        if self.distance_m <= 0:
            raise ValueError("speed trap distance_m must be > 0 metres")
        if self.first_line == self.second_line:
            raise ValueError("speed trap needs two different lines")


@dataclass(frozen=True)
class CountRecord:
    """One row of ``traffic_counts`` / one MQTT counts message."""

    interval_start: datetime
    interval_s: int
    line_id: str
    direction: str
    vehicle_class: str
    count: int
    mean_speed_kmh: float | None = None
    occupancy: float | None = None

    def payload(self) -> dict[str, Any]:
        """JSON object for ``its/v1/cameras/{camera_id}/counts`` (DESIGN.md)."""
        out: dict[str, Any] = {
            "interval_start": self.interval_start.isoformat().replace("+00:00", "Z"),
            "interval_s": self.interval_s,
            "line_id": self.line_id,
            "direction": self.direction,
            "vehicle_class": self.vehicle_class,
            "count": self.count,
        }
        if self.mean_speed_kmh is not None:
            out["mean_speed_kmh"] = round(self.mean_speed_kmh, 2)
        if self.occupancy is not None:
            out["occupancy"] = round(self.occupancy, 4)
        return out


class IntervalAggregator:
    """Accumulate crossings and line occupancy; emit records for closed intervals.

    Parameters
    ----------
    line_ids : list of str
        Lines of the camera (records are emitted for each).
    interval_s : int
        Interval length, seconds (default 60).
    speed_traps : list of SpeedTrap
        Calibrated line pairs for speed.
    """

    def __init__(self, line_ids: list[str], interval_s: int = 60, speed_traps: list[SpeedTrap] | None = None) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0 seconds")
        self.line_ids = list(line_ids)
        self.interval_s = int(interval_s)
        self.speed_traps = list(speed_traps or [])
        for trap in self.speed_traps:
            for name in (trap.first_line, trap.second_line):
                if name not in self.line_ids:
                    raise ValueError(f"speed trap refers to unknown line {name!r}")
        # bucket -> (line, direction, class) -> count
        self._counts: dict[int, dict[tuple[str, str, int], int]] = defaultdict(lambda: defaultdict(int))
        self._speeds: dict[int, dict[tuple[str, str, int], list[float]]] = defaultdict(lambda: defaultdict(list))
        self._occupied_s: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._crossed_at: dict[tuple[str, int], float] = {}
        self._open_from: int | None = None
        self._flushed_until: int | None = None
        self.late_crossings = 0

    def _bucket(self, t: float) -> int:
        return int(t // self.interval_s)

    def add_crossings(self, t: float, line_id: str, direction: str, track_ids: npt.NDArray[np.int64], class_ids: npt.NDArray[np.int64]) -> None:
        """Record tracks that crossed ``line_id`` in ``direction`` at epoch time ``t`` (s)."""
        if not len(track_ids):
            return
        b = self._bucket(t)
        if self._flushed_until is not None and b < self._flushed_until:
            self.late_crossings += len(track_ids)  # its interval was already published
            return
        self._open_from = b if self._open_from is None else min(self._open_from, b)
        cls, num = np.unique(class_ids, return_counts=True)
        for c, k in zip(cls.tolist(), num.tolist(), strict=True):
            self._counts[b][(line_id, direction, int(c))] += int(k)
        for tid, c in zip(track_ids.tolist(), class_ids.tolist(), strict=True):
            self._time_speed(t, b, line_id, direction, int(tid), int(c))

    def add_speeds(self, t: float, line_id: str, direction: str, class_ids: npt.NDArray[np.int64],
                   kmh: npt.NDArray[np.float64]) -> None:
        """Record the speeds ``kmh`` (km/h; NaN = unknown, skipped) of vehicles of ``class_ids``
        that crossed ``line_id`` in ``direction`` at epoch time ``t`` (s)."""
        b = self._bucket(t)
        if self._flushed_until is not None and b < self._flushed_until:
            return
        for c, v in zip(class_ids.tolist(), kmh.tolist(), strict=True):
            if np.isfinite(v) and 0 <= v <= _MAX_SPEED_KMH:
                self._open_from = b if self._open_from is None else min(self._open_from, b)
                self._speeds[b][(line_id, direction, max(int(c), 0))].append(float(v))

    def _time_speed(self, t: float, b: int, line_id: str, direction: str, tid: int, cls: int) -> None:
        for trap in self.speed_traps:
            if line_id not in (trap.first_line, trap.second_line):
                continue
            other = trap.second_line if line_id == trap.first_line else trap.first_line
            t0 = self._crossed_at.pop((other, tid), None)
            if t0 is None:
                self._crossed_at[(line_id, tid)] = t
                continue
            if t > t0:
                kmh = trap.distance_m / (t - t0) * 3.6
                if kmh <= _MAX_SPEED_KMH:
                    self._speeds[b][(line_id, direction, cls)].append(kmh)
        if len(self._crossed_at) > 10_000:  # forget the oldest unmatched crossings
            for key in list(self._crossed_at)[:5_000]:
                del self._crossed_at[key]

    def add_occupancy(self, t: float, dt: float, occupied: dict[str, bool]) -> None:
        """Credit ``dt`` seconds ending at epoch ``t`` to each occupied line."""
        b = self._bucket(t)
        if self._flushed_until is not None and b < self._flushed_until:
            return
        self._open_from = b if self._open_from is None else min(self._open_from, b)
        for line_id, occ in occupied.items():
            self._occupied_s[b][line_id] += dt if occ else 0.0

    def flush(self, now: float, final: bool = False) -> list[CountRecord]:
        """Emit records for every interval that ended at or before epoch ``now`` (s).

        With ``final`` the current, partial interval is emitted too (end of a file).
        """
        if self._open_from is None:
            return []
        last = self._bucket(now) if final else self._bucket(now) - 1
        records: list[CountRecord] = []
        for b in range(self._open_from, last + 1):
            records.extend(self._records(b))
        if last >= self._open_from:
            self._open_from = last + 1 if not final else None
            self._flushed_until = last + 1
        return records

    def _records(self, b: int) -> list[CountRecord]:
        counts = self._counts.pop(b, {})
        speeds = self._speeds.pop(b, {})
        occ = self._occupied_s.pop(b, {})
        start = datetime.fromtimestamp(b * self.interval_s, tz=UTC)
        out = []
        for line in self.line_ids:
            occupancy = min(occ.get(line, 0.0) / self.interval_s, 1.0) if occ else None
            for direction in DIRECTIONS:
                for cls, name in enumerate(CLASS_NAMES):
                    key = (line, direction, cls)
                    n = counts.get(key, 0) + (counts.get((line, direction, -1), 0) if cls == 0 else 0)
                    sp = speeds.get(key)
                    out.append(CountRecord(
                        interval_start=start, interval_s=self.interval_s, line_id=line,
                        direction=direction, vehicle_class=class_name(cls) if name else name,
                        count=n, mean_speed_kmh=float(np.mean(sp)) if sp else None,
                        occupancy=occupancy,
                    ))
        return out

"""Directed line counters and zone counters over tracked detections.

Direction convention
--------------------
A line is directed from its first point ``A`` to its second point ``B`` in image pixel
coordinates (x right, y down). A vehicle is counted **in** when its anchor crosses the
segment from the left-hand side of ``A→B`` to its right-hand side *as seen on the screen*,
and **out** the other way. For a horizontal line drawn left to right, ``in`` is moving down
the image (towards a camera that looks down the road); drawn right to left, ``in`` is moving
up. Each track is counted at most once per line, whatever it does afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import shapely

from video.detections import Detections

__all__ = ["Anchor", "LineCounter", "ZoneCounter", "anchors"]

Float = npt.NDArray[np.float64]
Int = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Anchor = Literal["center", "bottom_center"]


def anchors(detections: Detections, anchor: Anchor = "center") -> Float:
    """Reference points ``(N, 2)`` of detections, pixels."""
    if anchor == "center":
        return detections.centroid
    xy = detections.xyxy
    return np.stack([(xy[:, 0] + xy[:, 2]) / 2.0, xy[:, 3]], axis=1)


def _cross(a: Float, b: Float) -> Float:
    return np.asarray(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0], dtype=np.float64)


class _LastPositions:
    """Last anchor of every recently seen track id (sorted arrays, vectorised lookups)."""

    def __init__(self, max_age: int) -> None:
        self.max_age = max_age
        self.ids: Int = np.zeros(0, dtype=np.int64)
        self.xy: Float = np.zeros((0, 2))
        self.seen: Int = np.zeros(0, dtype=np.int64)
        self.tick = 0

    def lookup(self, ids: Int) -> tuple[Bool, Float]:
        idx = np.clip(np.searchsorted(self.ids, ids), 0, max(len(self.ids) - 1, 0))
        if not len(self.ids):
            return np.zeros(len(ids), dtype=bool), np.zeros((len(ids), 2))
        found = self.ids[idx] == ids
        return found, self.xy[idx]

    def store(self, ids: Int, xy: Float) -> None:
        self.tick += 1
        keep = ~np.isin(self.ids, ids) & (self.tick - self.seen <= self.max_age)
        all_ids = np.concatenate([self.ids[keep], ids])
        order = np.argsort(all_ids, kind="stable")
        self.ids = all_ids[order]
        self.xy = np.concatenate([self.xy[keep], xy])[order]
        self.seen = np.concatenate([self.seen[keep], np.full(len(ids), self.tick)])[order]


@dataclass
class LineCounter:
    """Count tracks crossing the directed segment ``start → end`` (see module docstring).

    Parameters
    ----------
    start, end : tuple of float
        Segment end points ``(x, y)``, frame pixels.
    line_id : str
        Name used in outputs.
    anchor : {"center", "bottom_center"}
        Which point of a box must cross the segment.
    max_gap : int
        A track's last position is remembered for this many updates (covers coasting).
    """

    start: tuple[float, float]
    end: tuple[float, float]
    line_id: str = "line-0"
    anchor: Anchor = "center"
    max_gap: int = 60
    in_count: int = 0
    out_count: int = 0
    by_class: dict[str, dict[int, int]] = field(default_factory=lambda: {"in": {}, "out": {}})

    def __post_init__(self) -> None:
        if np.allclose(self.start, self.end):
            raise ValueError(f"line {self.line_id}: start and end points coincide")
        self._a = np.asarray(self.start, dtype=np.float64)
        self._b = np.asarray(self.end, dtype=np.float64)
        self._last = _LastPositions(self.max_gap)
        self._counted: Int = np.zeros(0, dtype=np.int64)

    def side(self, points: Float) -> Float:
        """Signed side of ``points`` ``(N, 2)``: > 0 right-hand side of A→B on screen."""
        return _cross(self._b - self._a, np.asarray(points, dtype=np.float64) - self._a)

    def trigger(self, detections: Detections) -> tuple[Bool, Bool]:
        """Update with tracked detections; return masks of those counted ``in`` and ``out`` now.

        Detections without a track id (``tracker_id < 0``) are ignored.
        """
        n = len(detections)
        crossed_in = np.zeros(n, dtype=bool)
        crossed_out = np.zeros(n, dtype=bool)
        tracked = np.flatnonzero(detections.tracker_id >= 0)
        if not len(tracked):
            self._last.store(np.zeros(0, dtype=np.int64), np.zeros((0, 2)))
            return crossed_in, crossed_out
        ids = detections.tracker_id[tracked]
        p1 = anchors(detections, self.anchor)[tracked]
        found, p0 = self._last.lookup(ids)
        s0, s1 = self.side(p0), self.side(p1)
        changed = found & ((s0 > 0) != (s1 > 0))
        # the motion segment p0→p1 must cut the line *segment* A→B, not its extension
        d, e = p1 - p0, self._b - self._a
        denom = _cross(e, d)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = _cross(p0 - self._a, d) / denom
        within = np.isfinite(u) & (u >= 0.0) & (u <= 1.0)
        fresh = ~np.isin(ids, self._counted)
        hit = changed & within & fresh
        going_in = hit & (s1 > 0)
        going_out = hit & (s1 <= 0)
        crossed_in[tracked[going_in]] = True
        crossed_out[tracked[going_out]] = True
        self._counted = np.concatenate([self._counted, ids[hit]])
        self._last.store(ids, p1)
        self.in_count += int(going_in.sum())
        self.out_count += int(going_out.sum())
        for direction, mask in (("in", crossed_in), ("out", crossed_out)):
            cls, num = np.unique(detections.class_id[mask], return_counts=True)
            table = self.by_class[direction]
            for k, v in zip(cls.tolist(), num.tolist(), strict=True):
                table[k] = table.get(k, 0) + v
        return crossed_in, crossed_out

    def occupied(self, detections: Detections) -> bool:
        """True when any box intersects the segment (loop-detector occupancy).

        Exact slab clipping of the segment against every box at once (Liang-Barsky).
        """
        if not len(detections):
            return False
        xy = detections.xyxy
        lo = np.zeros(len(xy))
        hi = np.ones(len(xy))
        for axis in (0, 1):
            a, d = self._a[axis], self._b[axis] - self._a[axis]
            near, far = xy[:, axis], xy[:, axis + 2]
            if d == 0.0:
                outside = (a < near) | (a > far)
                hi = np.where(outside, -1.0, hi)
                continue
            t1, t2 = (near - a) / d, (far - a) / d
            lo = np.maximum(lo, np.minimum(t1, t2))
            hi = np.minimum(hi, np.maximum(t1, t2))
        return bool(np.any(lo <= hi))


class ZoneCounter:
    """Occupancy and dwell time of tracks whose anchor lies inside a polygon.

    Parameters
    ----------
    polygon : sequence of (x, y)
        Zone vertices, frame pixels.
    zone_id : str
        Name used in outputs.
    anchor : {"center", "bottom_center"}
        Point of a box tested against the zone.
    """

    def __init__(self, polygon: list[tuple[float, float]], zone_id: str = "zone-0", anchor: Anchor = "bottom_center") -> None:
        if len(polygon) < 3:
            raise ValueError(f"zone {zone_id}: a polygon needs at least 3 points")
        self.polygon = shapely.Polygon(polygon)
        if not self.polygon.is_valid or self.polygon.area <= 0:
            raise ValueError(f"zone {zone_id}: polygon is invalid or has no area")
        shapely.prepare(self.polygon)
        self.zone_id = zone_id
        self.anchor: Anchor = anchor
        self.occupancy = 0
        self._entered: dict[int, float] = {}
        self._last_in: dict[int, float] = {}
        self.dwell_s: list[float] = []

    def trigger(self, detections: Detections, t: float) -> Bool:
        """Update at time ``t`` (s); return the mask of detections inside the zone.

        Tracks that were inside and are not any more (left, or lost) complete a dwell, in
        seconds, appended to :attr:`dwell_s`.
        """
        pts = anchors(detections, self.anchor)
        inside = np.asarray(shapely.contains_xy(self.polygon, pts[:, 0], pts[:, 1]), dtype=bool)
        self.occupancy = int(inside.sum())
        now_ids = set(detections.tracker_id[inside & (detections.tracker_id >= 0)].tolist())
        for tid in now_ids:
            self._entered.setdefault(tid, t)
            self._last_in[tid] = t
        for tid in [k for k in self._entered if k not in now_ids]:
            self.dwell_s.append(self._last_in.pop(tid) - self._entered.pop(tid))
        return inside

"""Map-matching of vehicle positions onto trip paths.

All geometry is planar, in metres, in a local azimuthal equidistant projection
(`LocalProjection`). `project_points` and `projection_candidates` are vectorised over
points and segments (broadcast in chunks); `match_monotone` picks, for one vehicle's
successive pings, the candidate projections consistent with forward progress (a Viterbi
pass whose forward part is causal, so it also gives the online estimate).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pyproj

from telematics.nearest import SegmentIndex, foot_on_segments, nearest_projection, segment_length2

__all__ = [
    "LocalProjection",
    "MonotoneMatch",
    "Polyline",
    "broadcast_projection",
    "chord_detour_m",
    "detour_offsets",
    "match_monotone",
    "project_points",
    "projection_candidates",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Largest number of point x segment distances computed at once (memory bound).
CHUNK_CELLS = 2_000_000
#: From this many point x segment distances on, `project_points` asks the path's spatial
#: index (`telematics.nearest`) for each point's few candidate segments instead (same result).
INDEX_CELLS = 20_000


class LocalProjection:
    """Azimuthal equidistant projection centred on a point (metres, error < 0.1% within 100 km).

    Parameters
    ----------
    lat0, lon0 : float
        Centre of the projection in degrees WGS84.
    """

    def __init__(self, lat0: float, lon0: float):
        self.lat0 = float(lat0)
        self.lon0 = float(lon0)
        crs = pyproj.CRS.from_proj4(
            f"+proj=aeqd +lat_0={self.lat0} +lon_0={self.lon0} +datum=WGS84 +units=m +no_defs")
        self._forward = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def to_xy(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
        """Project degrees to an ``(n, 2)`` array of x, y metres."""
        x, y = self._forward.transform(np.asarray(lon, dtype=np.float64),
                                       np.asarray(lat, dtype=np.float64))
        return np.column_stack([np.atleast_1d(x), np.atleast_1d(y)])


@dataclass(frozen=True)
class Polyline:
    """A planar path: vertices ``xy`` (n, 2) in metres and cumulative length ``cum_m`` (n,)."""

    xy: FloatArray
    cum_m: FloatArray

    @classmethod
    def from_xy(cls, xy: npt.ArrayLike) -> Polyline:
        """Build from vertices, dropping consecutive duplicates."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if len(pts) > 1:
            keep = np.r_[True, np.any(np.diff(pts, axis=0) != 0, axis=1)]
            pts = pts[keep]
        if len(pts) == 1:
            pts = np.vstack([pts, pts + 1e-3])
        step = np.hypot(*np.diff(pts, axis=0).T)
        return cls(xy=pts, cum_m=np.r_[0.0, np.cumsum(step)])

    @property
    def length_m(self) -> float:
        """Total length in metres."""
        return float(self.cum_m[-1])

    def point_at(self, along_m: npt.ArrayLike) -> FloatArray:
        """Points (k, 2) at distances ``along_m`` (clipped to the path)."""
        d = np.clip(np.asarray(along_m, dtype=np.float64), 0.0, self.length_m)
        return np.column_stack([np.interp(d, self.cum_m, self.xy[:, 0]),
                                np.interp(d, self.cum_m, self.xy[:, 1])])

    @cached_property
    def index(self) -> SegmentIndex:
        """The spatial index of the path's segments (built on first use, kept with the path)."""
        return SegmentIndex(self)

    def heading_at(self, along_m: npt.ArrayLike) -> FloatArray:
        """Compass heading (degrees clockwise from north) of the segment at ``along_m``."""
        d = np.asarray(along_m, dtype=np.float64)
        seg = np.clip(np.searchsorted(self.cum_m, d, side="right") - 1, 0, len(self.cum_m) - 2)
        delta = self.xy[seg + 1] - self.xy[seg]
        return np.degrees(np.arctan2(delta[..., 0], delta[..., 1])) % 360.0


def chord_detour_m(to_start_m: npt.ArrayLike, to_end_m: npt.ArrayLike, chord_m: npt.ArrayLike) -> FloatArray:
    """Half the detour (m) of passing through a point on the way between two stops.

    ``(|PA| + |PB| - |AB|) / 2`` for a point P and stops A, B: 0 on the straight line AB, the
    distance to the nearer stop beyond either end, and at most the distance from the line
    (``sqrt((L/2)^2 + h^2) - L/2`` at a distance h from the middle of a chord of length L).
    A road between two stops bends away from the straight line more the farther apart the
    stops are; this distance grows with it, where the distance from the line would call a bus
    on a winding road between stops 1 km apart hundreds of metres off its path.

    Parameters
    ----------
    to_start_m, to_end_m : array_like
        Distances (m) from the point to the chord's start and end.
    chord_m : array_like
        Length (m) of the chord (broadcast against the distances).

    Returns
    -------
    ndarray
        Half the detour (m), at least 0.
    """
    excess = (np.asarray(to_start_m, dtype=np.float64) + np.asarray(to_end_m, dtype=np.float64)
              - np.asarray(chord_m, dtype=np.float64)) / 2.0
    return np.asarray(np.maximum(excess, 0.0))


def detour_offsets(line: Polyline, pts: npt.ArrayLike) -> FloatArray:
    """How far (m) points lie off a path of straight lines between stops, as detours.

    The least `chord_detour_m` over the path's segments: how far each point is from the way
    between some two consecutive stops, allowing the road between them to bend. For a path
    built from a feed's stops where it has no shapes; `project_points` gives the distance
    from the straight lines themselves.

    Parameters
    ----------
    line : Polyline
        The path (metres), its vertices the stops.
    pts : array_like, shape (m, 2)
        Points (metres).

    Returns
    -------
    ndarray, shape (m,)
        Half the least detour (m) per point.
    """
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    out = np.empty(len(p))
    a, b = line.xy[:-1], line.xy[1:]
    chord = np.hypot(*(b - a).T)[None, :]
    step = max(1, CHUNK_CELLS // max(1, len(a)))
    for lo in range(0, len(p), step):
        q = p[lo:lo + step]
        to_a = np.hypot(q[:, None, 0] - a[None, :, 0], q[:, None, 1] - a[None, :, 1])
        to_b = np.hypot(q[:, None, 0] - b[None, :, 0], q[:, None, 1] - b[None, :, 1])
        out[lo:lo + step] = chord_detour_m(to_a, to_b, chord).min(axis=1)
    return out


def _segment_distances(line: Polyline, pts: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Distance (m, s) of each point to each segment and the along-path distance of the foot."""
    a = line.xy[:-1]
    ab = line.xy[1:] - a
    seg_len2 = segment_length2(ab)
    return foot_on_segments(pts[:, None, 0], pts[:, None, 1], a[None, :, 0], a[None, :, 1], ab[None, :, 0],
                            ab[None, :, 1], seg_len2[None, :], np.sqrt(seg_len2)[None, :], line.cum_m[None, :-1])


def project_points(line: Polyline, pts: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Nearest projection of many points onto a polyline.

    Parameters
    ----------
    line : Polyline
        The path (metres).
    pts : array_like, shape (m, 2)
        Points in the same planar CRS (metres).

    Returns
    -------
    along_m, offset_m : ndarray, shape (m,)
        Distance along the path of the nearest point on it, and the distance to it (m).
    """
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    if len(p) * (len(line.cum_m) - 1) < INDEX_CELLS:
        return broadcast_projection(line, p)
    along, offset, found = nearest_projection(line.index, p)  # a long path and many points: a few candidates each
    rest = np.flatnonzero(~found)  # non-finite points: as the broadcast gives them
    if len(rest):
        along[rest], offset[rest] = broadcast_projection(line, p[rest])
    return along, offset


def broadcast_projection(line: Polyline, p: FloatArray) -> tuple[FloatArray, FloatArray]:
    """`project_points` by every point x segment distance (``CHUNK_CELLS`` at a time): the bare
    computation the spatial index must reproduce, and what `project_points` uses for a few points
    or a short path, where building and asking the index costs more."""
    along = np.empty(len(p))
    offset = np.empty(len(p))
    step = max(1, CHUNK_CELLS // max(1, len(line.cum_m) - 1))
    for lo in range(0, len(p), step):
        dist, foot = _segment_distances(line, p[lo:lo + step])
        best = np.argmin(dist, axis=1)
        rows = np.arange(len(best))
        along[lo:lo + step] = foot[rows, best]
        offset[lo:lo + step] = dist[rows, best]
    return along, offset


def projection_candidates(line: Polyline, pts: npt.ArrayLike, k: int = 4,
                          max_offset_m: float = 200.0) -> tuple[FloatArray, FloatArray]:
    """Up to ``k`` locally nearest projections of each point (one per pass of a looping path).

    Parameters
    ----------
    line : Polyline
        The path (metres).
    pts : array_like, shape (m, 2)
        Points (metres).
    k : int
        Candidates kept per point (the nearest local minima of distance over segments).
    max_offset_m : float
        Candidates farther than this from the path are dropped; the global nearest
        projection is always kept so every point has at least one candidate.

    Returns
    -------
    along_m, offset_m : ndarray, shape (m, k)
        Candidate distances along the path and offsets, sorted by offset, NaN-padded.
    """
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    along_out = np.full((len(p), k), np.nan)
    offset_out = np.full((len(p), k), np.nan)
    nseg = len(line.cum_m) - 1
    step = max(1, CHUNK_CELLS // max(1, nseg))
    for lo in range(0, len(p), step):
        dist, foot = _segment_distances(line, p[lo:lo + step])
        left = np.c_[np.full(len(dist), np.inf), dist[:, :-1]]
        right = np.c_[dist[:, 1:], np.full(len(dist), np.inf)]
        local = (dist <= left) & (dist < right)
        nearest = np.argmin(dist, axis=1)
        local[np.arange(len(dist)), nearest] = True
        score = np.where(local & (dist <= max_offset_m), dist, np.inf)
        score[np.arange(len(dist)), nearest] = dist[np.arange(len(dist)), nearest]
        kk = min(k, nseg)
        order = np.argsort(score, axis=1)[:, :kk]
        chosen = np.take_along_axis(score, order, axis=1)
        ok = np.isfinite(chosen)
        along_out[lo:lo + step, :kk] = np.where(ok, np.take_along_axis(foot, order, axis=1), np.nan)
        offset_out[lo:lo + step, :kk] = np.where(ok, chosen, np.nan)
    return along_out, offset_out


@dataclass(frozen=True)
class MonotoneMatch:
    """Result of `match_monotone` for one vehicle's pings (all arrays shape (m,)).

    ``online_*`` at ping i use only pings 0..i (causal filter); ``along_m``/``offset_m``
    are the smoothed best path over all pings. ``online_along_m`` is made non-decreasing.
    """

    along_m: FloatArray
    offset_m: FloatArray
    online_along_m: FloatArray
    online_offset_m: FloatArray


def match_monotone(along_m: FloatArray, offset_m: FloatArray, times_s: npt.ArrayLike | None = None,
                   *, gps_sigma_m: float = 25.0, backtrack_m: float = 30.0,
                   max_speed_mps: float = 30.0) -> MonotoneMatch:
    """Choose one candidate per ping so that progress along the path is monotone.

    Parameters
    ----------
    along_m, offset_m : ndarray, shape (m, k)
        Candidates from `projection_candidates` (NaN = none).
    times_s : array_like, shape (m,), optional
        Ping times in seconds; when given, forward jumps faster than ``max_speed_mps``
        are penalised.
    gps_sigma_m : float
        GPS noise scale (m) for the offset cost.
    backtrack_m : float
        Backward motion tolerated without penalty (GPS noise), metres.
    max_speed_mps : float
        Plausible top speed (m/s).

    Returns
    -------
    MonotoneMatch
        Smoothed and causal choices.
    """
    m, k = along_m.shape
    if m == 0:  # no ping: nothing to choose
        return MonotoneMatch(along_m=np.zeros(0), offset_m=np.zeros(0), online_along_m=np.zeros(0),
                             online_offset_m=np.zeros(0))
    times = None if times_s is None else np.asarray(times_s, dtype=np.float64)
    emit = np.where(np.isnan(offset_m), np.inf, 0.5 * (np.nan_to_num(offset_m) / gps_sigma_m) ** 2)
    cand = np.nan_to_num(along_m, nan=0.0)
    cost = emit[0].copy()
    back = np.zeros((m, k), dtype=np.int64)
    online = np.zeros(m, dtype=np.int64)
    online[0] = int(np.argmin(cost))
    jump_penalty = 50.0
    for i in range(1, m):
        delta = cand[i][None, :] - cand[i - 1][:, None]
        trans = 0.5 * (np.minimum(delta + backtrack_m, 0.0) / 10.0) ** 2
        trans += 0.5 * (np.minimum(delta, 0.0) / (4 * backtrack_m)) ** 2
        if times is not None:
            reach = max_speed_mps * max(float(times[i] - times[i - 1]), 1.0) + 2 * backtrack_m
            trans += np.where(delta > reach, jump_penalty, 0.0)
        trans = np.minimum(trans, jump_penalty)
        total = cost[:, None] + trans
        back[i] = np.argmin(total, axis=0)
        cost = total[back[i], np.arange(k)] + emit[i]
        cost -= cost[np.isfinite(cost)].min() if np.isfinite(cost).any() else 0.0
        online[i] = int(np.argmin(cost))
    path = np.empty(m, dtype=np.int64)
    path[-1] = int(np.argmin(cost))
    for i in range(m - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    rows = np.arange(m)
    online_along = np.maximum.accumulate(cand[rows, online]) if m else cand[:, 0]
    return MonotoneMatch(along_m=cand[rows, path], offset_m=offset_m[rows, path],
                         online_along_m=online_along, online_offset_m=offset_m[rows, online])

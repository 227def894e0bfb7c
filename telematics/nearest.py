"""Nearest projection of many points onto one long path, through a spatial index.

`telematics.matching.project_points` measures every point against every segment of a path
(points x segments distances, broadcast in chunks). A shape of a few thousand vertices and
a day of pings make that the assignment's largest cost. `nearest_projection` gives the same
answer bit for bit from a few candidate segments per point: an STR-tree of the path's
segments (shapely, GEOS) finds each point's nearest segment and every segment within a
hair (``TIE_M``) of it, and the distances of those candidates are then computed with the
very arithmetic of the broadcast version, the first least one kept, as ``np.argmin`` keeps
it. GEOS and numpy round differently by far less than ``TIE_M``, so the segment numpy would
pick is always among the candidates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import shapely

if TYPE_CHECKING:
    from telematics.matching import Polyline

__all__ = ["TIE_M", "SegmentIndex", "foot_on_segments", "nearest_projection", "segment_length2"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Candidates within this much (m) of a point's nearest segment are measured exactly.
TIE_M = 1e-3


def segment_length2(vector: FloatArray) -> FloatArray:
    """Squared lengths (m^2) of segment vectors (k, 2), at least 1e-12 (a repeated vertex)."""
    return np.maximum(np.einsum("ij,ij->i", vector, vector), 1e-12)


class SegmentIndex:
    """An STR-tree of a path's segments and the segments' vectors, built once per path.

    Parameters
    ----------
    line : Polyline
        The path (metres).
    """

    def __init__(self, line: Polyline) -> None:
        self.start = line.xy[:-1]
        self.vector = line.xy[1:] - self.start
        self.length2 = segment_length2(self.vector)
        self.length = np.sqrt(self.length2)
        self.cum_m = line.cum_m[:-1]
        self.tree = shapely.STRtree(shapely.linestrings(np.stack([line.xy[:-1], line.xy[1:]], axis=1)))


def foot_on_segments(px: FloatArray, py: FloatArray, ax: FloatArray, ay: FloatArray, abx: FloatArray,
                     aby: FloatArray, length2: FloatArray, length: FloatArray, start_m: FloatArray
                     ) -> tuple[FloatArray, FloatArray]:
    """Distance (m) from points ``(px, py)`` to segments from ``(ax, ay)`` along ``(abx, aby)``
    (squared length ``length2``, length ``length``, m) and the along-path distance (m) of the
    foot (``start_m`` at the segment's start); all arrays broadcast together. The one arithmetic
    of both the broadcast projection (`telematics.matching.broadcast_projection`) and the
    index's candidates, so both give the same bits."""
    ap_x = px - ax
    ap_y = py - ay
    u = np.clip((ap_x * abx + ap_y * aby) / length2, 0.0, 1.0)
    dx = ap_x - u * abx
    dy = ap_y - u * aby
    return np.hypot(dx, dy), start_m + u * length


def nearest_projection(index: SegmentIndex, pts: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Nearest projection of points (m, shape (m, 2)) onto the indexed path.

    Returns
    -------
    along_m, offset_m : ndarray, shape (m,)
        Distance along the path of the nearest point on it, and the distance to it (m).
    found : ndarray of bool, shape (m,)
        False where the tree gave no candidate (a non-finite point): those rows are left NaN
        for the caller to measure against every segment.
    """
    m = len(pts)
    along, offset = np.full(m, np.nan), np.full(m, np.nan)
    found = np.zeros(m, dtype=bool)
    if m == 0:
        return along, offset, found
    geoms = shapely.points(pts)
    # one nearest segment per point with any (a non-finite point has none), then all within TIE_M of it
    (rows, _), nearest_m = index.tree.query_nearest(geoms, return_distance=True, all_matches=False)
    if len(rows) == 0:
        return along, offset, found
    point, seg = index.tree.query(geoms[rows], predicate="dwithin", distance=nearest_m + TIE_M)
    point = rows[point]
    a, ab = index.start[seg], index.vector[seg]
    dist, foot = foot_on_segments(pts[point, 0], pts[point, 1], a[:, 0], a[:, 1], ab[:, 0], ab[:, 1],
                                  index.length2[seg], index.length[seg], index.cum_m[seg])
    order = np.lexsort((seg, dist, point))  # per point: least distance, then first segment (np.argmin)
    point, dist, foot = point[order], dist[order], foot[order]
    first = np.r_[True, point[1:] != point[:-1]]
    along[point[first]], offset[point[first]] = foot[first], dist[first]
    found[point[first]] = True
    return along, offset, found

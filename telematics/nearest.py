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

__all__ = ["TIE_M", "SegmentIndex", "nearest_projection"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Candidates within this much (m) of a point's nearest segment are measured exactly.
TIE_M = 1e-3


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
        # the broadcast version's own expression, so each candidate's arithmetic is identical
        self.length2 = np.maximum(np.einsum("ij,ij->i", self.vector, self.vector), 1e-12)
        self.length = np.sqrt(self.length2)
        self.cum_m = line.cum_m[:-1]
        self.tree = shapely.STRtree(shapely.linestrings(np.stack([line.xy[:-1], line.xy[1:]], axis=1)))


def _measure(index: SegmentIndex, pts: FloatArray, point: IntArray, seg: IntArray) -> tuple[FloatArray, FloatArray]:
    """Distance (m) of ``pts[point]`` to segment ``seg`` and the along-path distance (m) of the foot."""
    a, ab, length2 = index.start[seg], index.vector[seg], index.length2[seg]
    ap_x = pts[point, 0] - a[:, 0]
    ap_y = pts[point, 1] - a[:, 1]
    u = np.clip((ap_x * ab[:, 0] + ap_y * ab[:, 1]) / length2, 0.0, 1.0)
    dx = ap_x - u * ab[:, 0]
    dy = ap_y - u * ab[:, 1]
    return np.hypot(dx, dy), index.cum_m[seg] + u * index.length[seg]


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
    (point, _), nearest_m = index.tree.query_nearest(geoms, return_distance=True, all_matches=False)
    hit = np.zeros(m, dtype=bool)
    reach = np.zeros(m)
    hit[point] = True
    reach[point] = nearest_m + TIE_M
    rows = np.flatnonzero(hit)
    if len(rows) == 0:
        return along, offset, found
    point, seg = index.tree.query(geoms[rows], predicate="dwithin", distance=reach[rows])
    point = rows[point]
    dist, foot = _measure(index, pts, point.astype(np.int64), seg.astype(np.int64))
    order = np.lexsort((seg, dist, point))  # per point: least distance, then first segment (np.argmin)
    point, dist, foot = point[order], dist[order], foot[order]
    first = np.r_[True, point[1:] != point[:-1]]
    along[point[first]], offset[point[first]] = foot[first], dist[first]
    found[point[first]] = True
    return along, offset, found

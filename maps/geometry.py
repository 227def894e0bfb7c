"""Projections and vectorised polyline geometry.

Polylines are stored the CSR way, as one ``(N, 2)`` coordinate array plus an ``offsets``
array of length ``n_lines + 1``: line ``i`` is ``coords[offsets[i]:offsets[i + 1]]``. Every
function here works on whole arrays (no per-point Python loops), so snapping thousands of
positions to thousands of edges stays fast.

Metric work is done in a local transverse-Mercator CRS centred on the data
(:func:`local_crs`): over a city (< 100 km) its scale error is below 0.01 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyproj

__all__ = [
    "EARTH_RADIUS_M",
    "PolylineProjection",
    "Projector",
    "angle_diff_deg",
    "haversine_m",
    "local_crs",
    "polyline_lengths",
    "project_points_to_polylines",
    "project_points_to_segments",
    "resample_polylines",
    "segment_bearing_deg",
]

EARTH_RADIUS_M = 6_371_008.8
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def local_crs(west: float, south: float, east: float, north: float) -> pyproj.CRS:
    """A metric transverse-Mercator CRS centred on a lon/lat bounding box (degrees)."""
    if not (np.isfinite([west, south, east, north]).all() and west <= east and south <= north):
        raise ValueError(f"invalid bbox W,S,E,N = {west},{south},{east},{north}")
    lon0 = (west + east) / 2.0
    lat0 = (south + north) / 2.0
    return pyproj.CRS.from_proj4(
        f"+proj=tmerc +lat_0={lat0:.7f} +lon_0={lon0:.7f} +k=1 +x_0=0 +y_0=0 "
        "+ellps=WGS84 +units=m +no_defs"
    )


@dataclass
class Projector:
    """Forward/inverse projection between WGS84 lon/lat (degrees) and a metric CRS (m)."""

    crs: pyproj.CRS
    _fwd: pyproj.Transformer = field(init=False, repr=False)
    _inv: pyproj.Transformer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fwd = pyproj.Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
        self._inv = pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    @classmethod
    def for_bbox(cls, west: float, south: float, east: float, north: float) -> Projector:
        """Projector to the :func:`local_crs` of a bounding box (degrees)."""
        return cls(local_crs(west, south, east, north))

    @classmethod
    def for_points(cls, lon: npt.ArrayLike, lat: npt.ArrayLike) -> Projector:
        """Projector centred on the bounding box of points (degrees)."""
        lo = np.asarray(lon, dtype=np.float64)
        la = np.asarray(lat, dtype=np.float64)
        if lo.size == 0:
            raise ValueError("no points to centre a projection on")
        return cls.for_bbox(float(lo.min()), float(la.min()), float(lo.max()), float(la.max()))

    def to_xy(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Project lon/lat (degrees) to x/y (metres)."""
        x, y = self._fwd.transform(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def to_lonlat(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Unproject x/y (metres) to lon/lat (degrees)."""
        lon, lat = self._inv.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def coords_to_xy(self, coords: npt.ArrayLike) -> FloatArray:
        """Project an ``(N, 2)`` lon/lat array to an ``(N, 2)`` metric array."""
        c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        x, y = self.to_xy(c[:, 0], c[:, 1])
        return np.column_stack([x, y])


def haversine_m(lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike) -> FloatArray:
    """Great-circle distance in metres between lon/lat points (degrees), broadcasting."""
    lo1, la1, lo2, la2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lon1, lat1, lon2, lat2))
    h = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64)


def polyline_lengths(coords: npt.ArrayLike, offsets: npt.ArrayLike) -> FloatArray:
    """Length of each polyline in metric ``coords`` (units of the coordinates, e.g. m)."""
    c = np.asarray(coords, dtype=np.float64)
    off = np.asarray(offsets, dtype=np.int64)
    n = len(off) - 1
    if n <= 0:
        return np.zeros(0)
    seg = np.hypot(np.diff(c[:, 0]), np.diff(c[:, 1]))
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    # segments that cross a line boundary are excluded by differencing the cumulative sum
    return np.asarray(cum[off[1:] - 1] - cum[off[:-1]], dtype=np.float64)


def segment_bearing_deg(ax: npt.ArrayLike, ay: npt.ArrayLike, bx: npt.ArrayLike, by: npt.ArrayLike) -> FloatArray:
    """Compass bearing of segments a→b in a metric CRS (degrees clockwise from north, [0, 360))."""
    dx = np.asarray(bx, dtype=np.float64) - np.asarray(ax, dtype=np.float64)
    dy = np.asarray(by, dtype=np.float64) - np.asarray(ay, dtype=np.float64)
    return np.asarray(np.degrees(np.arctan2(dx, dy)) % 360.0, dtype=np.float64)


def angle_diff_deg(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Absolute difference between bearings (degrees), in [0, 180]; NaN where either is NaN."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) % 360.0
    return np.asarray(np.minimum(d, 360.0 - d), dtype=np.float64)


def project_points_to_segments(
    px: npt.ArrayLike, py: npt.ArrayLike, ax: npt.ArrayLike, ay: npt.ArrayLike, bx: npt.ArrayLike, by: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Orthogonal projection of points p onto segments a→b, element by element.

    Returns
    -------
    distance : ndarray
        Distance from p to its projection (coordinate units, e.g. m).
    t : ndarray
        Position of the projection on the segment as a fraction in [0, 1].
    """
    pxa, pya = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
    axa, aya = np.asarray(ax, dtype=np.float64), np.asarray(ay, dtype=np.float64)
    dx = np.asarray(bx, dtype=np.float64) - axa
    dy = np.asarray(by, dtype=np.float64) - aya
    den = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(den > 0, ((pxa - axa) * dx + (pya - aya) * dy) / np.where(den > 0, den, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    dist = np.hypot(axa + t * dx - pxa, aya + t * dy - pya)
    return np.asarray(dist, dtype=np.float64), np.asarray(t, dtype=np.float64)


@dataclass(frozen=True)
class PolylineProjection:
    """Result of projecting points onto polylines (one row per point/polyline pair).

    Attributes
    ----------
    distance_m : distance from the point to the polyline (m).
    offset_m : distance along the polyline from its start to the projection (m).
    fraction : ``offset_m / length`` in [0, 1] (0 for zero-length lines).
    x, y : projected point (m).
    bearing_deg : bearing of the polyline at the projection (degrees from north).
    """

    distance_m: FloatArray
    offset_m: FloatArray
    fraction: FloatArray
    x: FloatArray
    y: FloatArray
    bearing_deg: FloatArray


def project_points_to_polylines(
    px: npt.ArrayLike,
    py: npt.ArrayLike,
    coords: npt.ArrayLike,
    offsets: npt.ArrayLike,
    line_index: npt.ArrayLike,
) -> PolylineProjection:
    """Project point ``i`` onto polyline ``line_index[i]`` (metric coordinates), vectorised.

    Each pair is expanded to all segments of its polyline, projected with
    :func:`project_points_to_segments`, and the nearest segment per pair is kept with a
    segmented ``argmin`` (``np.minimum.reduceat``), so the cost is linear in the number of
    (pair, segment) combinations.
    """
    c = np.asarray(coords, dtype=np.float64)
    off = np.asarray(offsets, dtype=np.int64)
    li = np.asarray(line_index, dtype=np.int64)
    pxa = np.asarray(px, dtype=np.float64).reshape(-1)
    pya = np.asarray(py, dtype=np.float64).reshape(-1)
    if not (len(pxa) == len(pya) == len(li)):
        raise ValueError("px, py and line_index must have the same length")
    n = len(li)
    if n == 0:
        e = np.zeros(0)
        return PolylineProjection(e, e, e, e, e, e)
    start = off[li]
    nseg = np.maximum(off[li + 1] - start - 1, 1)
    if (off[li + 1] - start < 2).any():
        raise ValueError("every polyline needs at least 2 vertices")
    pair = np.repeat(np.arange(n), nseg)
    first = np.concatenate([[0], np.cumsum(nseg)[:-1]])
    k = np.arange(len(pair)) - first[pair]
    ia = start[pair] + k
    ax, ay, bx, by = c[ia, 0], c[ia, 1], c[ia + 1, 0], c[ia + 1, 1]
    dist, t = project_points_to_segments(pxa[pair], pya[pair], ax, ay, bx, by)
    # nearest segment per pair: min distance, first such segment
    dmin = np.minimum.reduceat(dist, first)
    is_min = dist <= dmin[pair]
    cand = np.where(is_min, np.arange(len(pair)), len(pair))
    best = np.minimum.reduceat(cand, first)
    seg_len = np.hypot(bx - ax, by - ay)
    cum = np.cumsum(seg_len)  # over the expanded segments only
    before_pair = cum[first] - seg_len[first]
    along = cum[best] - seg_len[best] - before_pair + t[best] * seg_len[best]
    last = np.concatenate([first[1:], [len(pair)]]) - 1
    total = cum[last] - before_pair
    frac = np.where(total > 0, along / np.where(total > 0, total, 1.0), 0.0)
    qx = ax[best] + t[best] * (bx[best] - ax[best])
    qy = ay[best] + t[best] * (by[best] - ay[best])
    bearing = segment_bearing_deg(ax[best], ay[best], bx[best], by[best])
    return PolylineProjection(dist[best], along, np.clip(frac, 0.0, 1.0), qx, qy, bearing)


def resample_polylines(coords: npt.ArrayLike, offsets: npt.ArrayLike, step: float) -> tuple[FloatArray, IntArray]:
    """Insert vertices so no segment is longer than ``step`` (coordinate units).

    Original vertices are kept; each segment of length L gets ``ceil(L / step) - 1``
    evenly spaced interior points.

    Returns
    -------
    coords, offsets : the densified polylines in the same CSR layout.
    """
    if step <= 0:
        raise ValueError("step must be positive")
    c = np.asarray(coords, dtype=np.float64)
    off = np.asarray(offsets, dtype=np.int64)
    if len(c) == 0:
        return c.reshape(0, 2), off.copy()
    seg_len = np.hypot(np.diff(c[:, 0]), np.diff(c[:, 1]))
    boundary = np.zeros(len(c) - 1, dtype=bool)
    boundary[off[1:-1] - 1] = True  # the "segment" from one line's end to the next line's start
    pieces = np.where(boundary, 1, np.maximum(np.ceil(seg_len / step).astype(np.int64), 1))
    # each vertex i < N-1 emits `pieces[i]` points: itself plus interior points of its segment,
    # except that at a line boundary it emits only itself
    counts = np.concatenate([pieces, [1]])
    idx = np.repeat(np.arange(len(c)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(len(idx)) - first[idx]
    nxt = np.minimum(idx + 1, len(c) - 1)
    frac = np.where(idx < len(c) - 1, k / counts[idx], 0.0)
    out = c[idx] + (c[nxt] - c[idx]) * frac[:, None]
    new_off = np.concatenate([[0], np.cumsum(counts)])[off]
    return out, new_off.astype(np.int64)

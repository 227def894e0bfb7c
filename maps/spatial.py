"""Snapping points to road edges with a shapely 2 STRtree (vectorised queries).

Points come in as lon/lat degrees, are projected to the network's local metric CRS and
queried in one call against the tree of edge geometries; exact positions along the edges
(offset, fraction, bearing) come from :func:`maps.geometry.project_points_to_polylines`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from maps.geometry import angle_diff_deg, project_points_to_polylines
from maps.network import RoadNetwork

__all__ = ["EdgeCandidates", "EdgeSnapper", "Snap"]


@dataclass(frozen=True)
class Snap:
    """Nearest edge of each point (arrays of the number of points).

    ``edge`` is -1 (and the other fields NaN) where no edge lies within the search radius.

    Attributes
    ----------
    edge : edge index.
    distance_m : distance from the point to the edge (m).
    offset_m : distance along the edge from its start node to the snapped point (m).
    fraction : ``offset_m`` / edge length, in [0, 1].
    lon, lat : snapped point (degrees).
    """

    edge: npt.NDArray[np.int64]
    distance_m: npt.NDArray[np.float64]
    offset_m: npt.NDArray[np.float64]
    fraction: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]


@dataclass(frozen=True)
class EdgeCandidates:
    """Candidate edges near points: one row per (point, edge) pair, sorted by point then distance.

    Attributes
    ----------
    point : index of the query point.
    edge : edge index.
    distance_m : distance point–edge (m).
    offset_m : position of the projection along the edge (m from its start).
    fraction : ``offset_m`` / edge length.
    bearing_deg : edge bearing at the projection (degrees clockwise from north).
    heading_diff_deg : |point heading − edge bearing| in [0, 180] (NaN without headings).
    """

    point: npt.NDArray[np.int64]
    edge: npt.NDArray[np.int64]
    distance_m: npt.NDArray[np.float64]
    offset_m: npt.NDArray[np.float64]
    fraction: npt.NDArray[np.float64]
    bearing_deg: npt.NDArray[np.float64]
    heading_diff_deg: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.point)


class EdgeSnapper:
    """STRtree over a network's edges (metric geometry) for nearest/within-radius queries."""

    def __init__(self, network: RoadNetwork) -> None:
        self.network = network
        self.tree = shapely.STRtree(network.geometries_xy)

    def _points(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        if lo.shape != la.shape:
            raise ValueError("lon and lat must have the same shape")
        if not (np.isfinite(lo).all() and np.isfinite(la).all()):
            raise ValueError("lon/lat must be finite")
        return self.network.projector.to_xy(lo, la)

    def candidates(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        radius_m: float,
        heading_deg: npt.ArrayLike | None = None,
        max_per_point: int | None = None,
    ) -> EdgeCandidates:
        """All edges within ``radius_m`` (m) of each point, with distance and heading difference.

        Parameters
        ----------
        lon, lat : query points (degrees).
        radius_m : search radius (m).
        heading_deg : travel direction of each point (degrees from north), NaN when unknown.
        max_per_point : keep only the nearest this many candidates of each point.
        """
        x, y = self._points(lon, lat)
        pairs = self.tree.query(shapely.points(x, y), predicate="dwithin", distance=float(radius_m))
        pt, edge = pairs[0].astype(np.int64), pairs[1].astype(np.int64)
        proj = project_points_to_polylines(x[pt], y[pt], self.network.coords_xy, self.network.geom_offsets, edge)
        if heading_deg is None:
            hdiff = np.full(len(pt), np.nan)
        else:
            h = np.broadcast_to(np.asarray(heading_deg, dtype=np.float64), x.shape)
            hdiff = angle_diff_deg(h[pt], proj.bearing_deg)
        order = np.lexsort((edge, proj.distance_m, pt))
        if max_per_point is not None and len(order):
            sp = pt[order]
            start = np.concatenate([[True], sp[1:] != sp[:-1]])
            first_of = np.maximum.accumulate(np.where(start, np.arange(len(sp)), 0))
            order = order[np.arange(len(sp)) - first_of < max_per_point]
        return EdgeCandidates(
            point=pt[order], edge=edge[order], distance_m=proj.distance_m[order],
            offset_m=proj.offset_m[order], fraction=proj.fraction[order],
            bearing_deg=proj.bearing_deg[order], heading_diff_deg=hdiff[order],
        )

    def nearest(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        max_distance_m: float | None = None,
        heading_deg: npt.ArrayLike | None = None,
    ) -> Snap:
        """Nearest edge of each point (ties, e.g. the two directions of a street, are broken
        by the smallest heading difference when headings are given, else by lower index)."""
        x, y = self._points(lon, lat)
        n = len(x)
        idx = self.tree.query_nearest(shapely.points(x, y), max_distance=max_distance_m, all_matches=True)
        pt, edge = idx[0].astype(np.int64), idx[1].astype(np.int64)
        # the opposite direction of a two-way street has the same geometry: always a tie
        rev = self.network.reverse_edge[edge]
        has = rev >= 0
        pairs = np.unique(np.column_stack([np.concatenate([pt, pt[has]]), np.concatenate([edge, rev[has]])]), axis=0)
        pt, edge = pairs[:, 0], pairs[:, 1]
        proj = project_points_to_polylines(x[pt], y[pt], self.network.coords_xy, self.network.geom_offsets, edge)
        if heading_deg is None:
            tie = np.zeros(len(pt))
        else:
            h = np.broadcast_to(np.asarray(heading_deg, dtype=np.float64), x.shape)
            tie = np.nan_to_num(angle_diff_deg(h[pt], proj.bearing_deg), nan=0.0)
        # distances of tied matches agree to float noise: round to the millimetre
        order = np.lexsort((edge, tie, np.round(proj.distance_m, 3), pt))
        first = order[np.concatenate([[True], pt[order][1:] != pt[order][:-1]])] if len(order) else order
        out_edge = np.full(n, -1, dtype=np.int64)
        dist, off, frac, qx, qy = (np.full(n, np.nan) for _ in range(5))
        p = pt[first]
        out_edge[p] = edge[first]
        dist[p], off[p], frac[p] = proj.distance_m[first], proj.offset_m[first], proj.fraction[first]
        qx[p], qy[p] = proj.x[first], proj.y[first]
        lon_s, lat_s = np.full(n, np.nan), np.full(n, np.nan)
        if len(p):
            lon_s[p], lat_s[p] = self.network.projector.to_lonlat(qx[p], qy[p])
        return Snap(out_edge, dist, off, frac, lon_s, lat_s)

"""Synthetic grid road networks for benchmarks and tests.

A Manhattan grid of two-way streets; every ``arterial_every``-th row and column is a
``primary`` road, the rest ``residential``. Built entirely with numpy.
"""

from __future__ import annotations

import numpy as np

from maps.network import RoadNetwork

__all__ = ["grid_network"]

_M_PER_DEG_LAT = 111_320.0


def grid_network(
    n_rows: int,
    n_cols: int,
    spacing_m: float = 100.0,
    origin_lon: float = 24.90,
    origin_lat: float = 60.15,
    arterial_every: int = 5,
    name: str = "grid",
) -> RoadNetwork:
    """A grid of ``n_rows`` × ``n_cols`` intersections ``spacing_m`` apart (m).

    Edges: ``2 * (n_rows * (n_cols - 1) + (n_rows - 1) * n_cols)`` directed edges
    (e.g. 159 × 159 → 100,488). Node ``r * n_cols + c`` sits at row ``r``, column ``c``
    with the south-west corner at (``origin_lon``, ``origin_lat``) degrees.
    """
    if n_rows < 1 or n_cols < 1 or n_rows * n_cols < 2:
        raise ValueError("a grid needs at least 2 intersections")
    if spacing_m <= 0:
        raise ValueError("spacing_m must be positive")
    rr, cc = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    node = (rr * n_cols + cc).ravel()
    dlat = spacing_m / _M_PER_DEG_LAT
    dlon = spacing_m / (_M_PER_DEG_LAT * np.cos(np.radians(origin_lat)))
    lon = origin_lon + cc.ravel() * dlon
    lat = origin_lat + rr.ravel() * dlat
    h_u = node.reshape(n_rows, n_cols)[:, :-1].ravel()
    h_arterial = (rr[:, :-1].ravel() % arterial_every) == 0
    v_u = node.reshape(n_rows, n_cols)[:-1, :].ravel()
    v_arterial = (cc[:-1, :].ravel() % arterial_every) == 0
    a = np.concatenate([h_u, v_u])
    b = np.concatenate([h_u + 1, v_u + n_cols])
    arterial = np.concatenate([h_arterial, v_arterial])
    u = np.concatenate([a, b])
    v = np.concatenate([b, a])
    road_class = np.where(np.concatenate([arterial, arterial]), "primary", "residential")
    coords = np.column_stack([lon[np.column_stack([u, v]).ravel()], lat[np.column_stack([u, v]).ravel()]])
    offsets = np.arange(0, 2 * len(u) + 1, 2, dtype=np.int64)
    return RoadNetwork.from_edges(
        name, lon, lat, u, v, coords, offsets, road_class,
        oneway=np.zeros(len(u), dtype=bool), source=f"synthetic grid {n_rows}x{n_cols} @ {spacing_m} m",
    )

"""GeoJSON export of road edges with per-edge attributes supplied as arrays (for the UI)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from maps.network import RoadNetwork

__all__ = ["edges_geojson", "edges_in_bbox"]


def edges_in_bbox(network: RoadNetwork, bbox: tuple[float, float, float, float]) -> npt.NDArray[np.int64]:
    """Indices of edges whose bounding box intersects ``bbox`` (west, south, east, north degrees).

    A vectorised box-overlap test on :attr:`RoadNetwork.edge_bounds`.
    """
    w, s, e, n = bbox
    if not (w <= e and s <= n):
        raise ValueError(f"invalid bbox W,S,E,N = {w},{s},{e},{n}")
    b = network.edge_bounds
    hit = (b[:, 0] <= e) & (b[:, 2] >= w) & (b[:, 1] <= n) & (b[:, 3] >= s)
    return np.nonzero(hit)[0].astype(np.int64)


def _column(values: npt.ArrayLike, idx: npt.NDArray[np.int64], decimals: int | None) -> list[Any]:
    arr = np.asarray(values)[idx]
    if arr.dtype.kind == "f":
        if decimals is not None:
            arr = np.round(arr, decimals)
        out: list[Any] = arr.tolist()
        bad = ~np.isfinite(arr)
        for i in np.nonzero(bad)[0].tolist():
            out[i] = None  # JSON has no NaN/inf
        return out
    return list(arr.tolist())


def edges_geojson(
    network: RoadNetwork,
    properties: dict[str, npt.ArrayLike] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    edges: npt.ArrayLike | None = None,
    coord_decimals: int = 6,
    value_decimals: int | None = 3,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of edges.

    Parameters
    ----------
    network : the road network.
    properties : extra per-edge arrays of shape ``(n_edges,)`` (e.g. ``speed_mps``,
        ``level``) added to each feature's properties; NaN becomes ``null``.
    bbox : keep edges intersecting (west, south, east, north) degrees.
    edges : keep only these edge indices (applied before ``bbox``).
    coord_decimals : decimals of lon/lat (6 ≈ 0.1 m).
    value_decimals : decimals of float properties (None: unrounded).

    Every feature has ``id`` = edge index and properties ``edge``, ``road_class``,
    ``name``, ``length_m``, ``freeflow_mps``, ``lanes``, ``oneway`` plus the extra arrays.
    """
    extra = {k: np.asarray(v) for k, v in (properties or {}).items()}
    for key, arr in extra.items():
        if arr.shape != (network.n_edges,):
            raise ValueError(f"property {key!r} must have shape ({network.n_edges},), got {arr.shape}")
    if edges is None:
        idx = edges_in_bbox(network, bbox) if bbox is not None else np.arange(network.n_edges, dtype=np.int64)
    else:
        idx = np.asarray(edges, dtype=np.int64)
        if ((idx < 0) | (idx >= network.n_edges)).any():
            raise ValueError(f"edge indices must be in 0..{network.n_edges - 1}")
        if bbox is not None:
            idx = np.intersect1d(idx, edges_in_bbox(network, bbox))
    columns: dict[str, list[Any]] = {
        "edge": idx.tolist(),
        "road_class": _column(network.road_class, idx, None),
        "name": _column(network.street_name, idx, None),
        "length_m": _column(network.length_m, idx, 1),
        "freeflow_mps": _column(network.freeflow_mps, idx, 2),
        "lanes": _column(network.lanes, idx, None),
        "oneway": _column(network.oneway, idx, None),
    }
    for key, arr in extra.items():
        columns[key] = _column(arr, idx, value_decimals)
    # gather only the selected edges' vertices (CSR slice), round once, convert once
    counts = np.diff(network.geom_offsets)[idx]
    local = np.concatenate([[0], np.cumsum(counts)])
    pts = np.repeat(network.geom_offsets[idx], counts) + (np.arange(local[-1]) - np.repeat(local[:-1], counts))
    coords = np.round(network.coords[pts], coord_decimals).tolist()
    off = local.tolist()
    keys = list(columns)
    values = list(zip(*(columns[k] for k in keys), strict=True))
    features = [
        {
            "type": "Feature",
            "id": e,
            "geometry": {"type": "LineString", "coordinates": coords[off[i]:off[i + 1]]},
            "properties": dict(zip(keys, row, strict=True)),
        }
        for i, (e, row) in enumerate(zip(columns["edge"], values, strict=True))
    ]
    return {"type": "FeatureCollection", "features": features}

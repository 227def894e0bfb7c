"""Network indices: travel time index per area and corridor, incident candidates.

Travel time index (TTI) of a group of edges = sum(length / current speed) / sum(length /
free-flow speed): 1.0 is free flow, 1.5 means trips take 50% longer. Areas are square grid
cells of the local metric projection; corridors are named streets (edges sharing a
``street_name``).

Incident candidates: edges whose estimate is below ``incident_ratio`` × their usual speed
for that time of day (the historical profile) on direct evidence, and corridors whose
travel time exceeds their usual travel time by the same factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from maps.network import RoadNetwork
from traffic.config import TrafficSettings
from traffic.congestion import CongestionState

__all__ = ["GroupIndex", "Incident", "area_ids", "corridor_ids", "incident_candidates", "travel_time_index"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class GroupIndex:
    """TTI per group: ``group`` ids present, ``tti``, ``edges`` count, ``length_m`` sum."""

    group: IntArray
    tti: npt.NDArray[np.float64]
    edges: IntArray
    length_m: npt.NDArray[np.float64]


def travel_time_index(state: CongestionState, length_m: npt.ArrayLike, group: npt.ArrayLike) -> GroupIndex:
    """TTI of every group (edges with ``group`` < 0 are ignored)."""
    g = np.asarray(group, dtype=np.int64)
    length = np.asarray(length_m, dtype=np.float64)
    ok = g >= 0
    gid, inv = np.unique(g[ok], return_inverse=True)
    cur = np.bincount(inv, weights=length[ok] / state.speed_mps[ok], minlength=len(gid))
    free = np.bincount(inv, weights=length[ok] / state.freeflow_mps[ok], minlength=len(gid))
    return GroupIndex(gid, cur / np.maximum(free, 1e-9), np.bincount(inv, minlength=len(gid)).astype(np.int64),
                      np.bincount(inv, weights=length[ok], minlength=len(gid)).astype(np.float64))


def area_ids(network: RoadNetwork, cell_m: float = 1000.0) -> IntArray:
    """Grid-cell id of each edge's midpoint vertex (cells of ``cell_m`` metres)."""
    mid = network.geom_offsets[:-1] + np.diff(network.geom_offsets) // 2
    xy = network.coords_xy[mid]
    ix = np.floor(xy[:, 0] / cell_m).astype(np.int64)
    iy = np.floor(xy[:, 1] / cell_m).astype(np.int64)
    return (ix - ix.min()) * 1_000_003 + (iy - iy.min())


def corridor_ids(network: RoadNetwork) -> tuple[IntArray, npt.NDArray[np.str_]]:
    """Corridor id of each edge (-1 for unnamed edges) and the corridor names."""
    names = network.street_name.astype(str)
    named = names != ""
    labels, inv = np.unique(names[named], return_inverse=True)
    out = np.full(network.n_edges, -1, dtype=np.int64)
    out[named] = inv
    return out, labels


@dataclass(frozen=True)
class Incident:
    """A place whose speed is far below its usual speed now."""

    kind: str  # "edge" or "corridor"
    subject: str
    speed_mps: float
    usual_mps: float
    ratio: float
    confidence: float
    lon: float
    lat: float
    edges: tuple[int, ...]


def incident_candidates(
    network: RoadNetwork,
    state: CongestionState,
    settings: TrafficSettings | None = None,
    corridors: tuple[IntArray, npt.NDArray[np.str_]] | None = None,
    min_corridor_m: float = 300.0,
    max_edges: int = 200,
) -> list[Incident]:
    """Edges and corridors whose speed dropped below ``incident_ratio`` × usual.

    Only edges with direct current evidence (probe + flow share of the estimate ≥
    ``incident_min_confidence``) count, so a jam propagated to a neighbour is not reported;
    a corridor needs ``min_corridor_m`` of such edges. At most ``max_edges`` edge
    candidates are returned, the worst first.
    """
    s = settings or TrafficSettings()
    usual = np.maximum(state.profile_mps, 1e-3)
    ratio = state.speed_mps / usual
    direct = state.source_mix[:, 0] + state.source_mix[:, 1]
    sure = direct >= s.incident_min_confidence
    hit = np.nonzero(sure & (ratio < s.incident_ratio))[0]
    mid = network.geom_offsets[:-1] + np.diff(network.geom_offsets) // 2
    out = [
        Incident("edge", f"{network.name}:{e}", float(state.speed_mps[e]), float(usual[e]), float(ratio[e]),
                 float(state.confidence[e]), float(network.coords[mid[e], 0]), float(network.coords[mid[e], 1]), (int(e),))
        for e in hit[np.argsort(ratio[hit])][:max_edges]
    ]
    cid, labels = corridors if corridors is not None else corridor_ids(network)
    ok = (cid >= 0) & sure
    if ok.any():
        length = network.length_m
        cur = np.bincount(cid[ok], weights=length[ok] / state.speed_mps[ok], minlength=len(labels))
        usual_t = np.bincount(cid[ok], weights=length[ok] / usual[ok], minlength=len(labels))
        total = np.bincount(cid[ok], weights=length[ok], minlength=len(labels))
        with np.errstate(invalid="ignore", divide="ignore"):
            cratio = usual_t / cur
        for c in np.nonzero((total >= min_corridor_m) & (cratio < s.incident_ratio))[0]:
            edges = np.nonzero(ok & (cid == c))[0]
            e0 = edges[np.argmin(ratio[edges])]
            out.append(Incident(
                "corridor", f"{network.name}:{labels[c]}", float(total[c] / cur[c]), float(total[c] / usual_t[c]),
                float(cratio[c]), float(state.confidence[edges].mean()), float(network.coords[mid[e0], 0]),
                float(network.coords[mid[e0], 1]), tuple(int(x) for x in edges),
            ))
    return out

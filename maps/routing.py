"""Shortest paths by travel time with ``scipy.sparse.csgraph.dijkstra``.

The CSR structure (which node pairs are linked, and which parallel edges share a pair) is
built once per network; per-edge weights are an array that can be swapped at any time
(:meth:`Router.set_weights`, or ``weights=`` per query) with an O(n_edges) numpy reduction,
so congestion-aware routing never rebuilds the graph.

Points are routed from their snapped position on an edge: the trip starts part-way along
the origin edge and ends part-way along the destination edge; both directions of a
two-way street are tried at each end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from maps.network import RoadNetwork
from maps.spatial import EdgeSnapper

__all__ = ["NoRouteError", "Route", "Router"]

_CLOSED = 1e30  # weight standing for "no passage" (a closed or unknown edge)


class NoRouteError(LookupError):
    """No path exists between the requested points/nodes (or a point is too far from roads)."""


@dataclass(frozen=True)
class Route:
    """A path through the network.

    Attributes
    ----------
    edges : edge indices in travel order (the first and last may be partly travelled).
    start_fraction : position on the first edge where the trip starts (0..1).
    end_fraction : position on the last edge where the trip ends (0..1).
    length_m : travelled length (m).
    time_s : travel time under the weights used (s).
    freeflow_time_s : travel time at free-flow speed over the same path (s).
    """

    edges: npt.NDArray[np.int64]
    start_fraction: float
    end_fraction: float
    length_m: float
    time_s: float
    freeflow_time_s: float

    def _partial_sum(self, per_edge: npt.NDArray[np.float64]) -> float:
        vals = per_edge[self.edges].astype(np.float64)
        share = np.ones(len(vals))
        if len(vals) == 1:
            share[0] = self.end_fraction - self.start_fraction
        elif len(vals):
            share[0] = 1.0 - self.start_fraction
            share[-1] = self.end_fraction
        return float((vals * share).sum())


class Router:
    """Shortest-path queries on a :class:`RoadNetwork` with swappable edge weights.

    Parameters
    ----------
    network : the road network.
    weights : initial per-edge travel time (s); default the free-flow time.
    snapper : spatial index used to snap points (built when omitted).
    """

    def __init__(
        self,
        network: RoadNetwork,
        weights: npt.ArrayLike | None = None,
        snapper: EdgeSnapper | None = None,
    ) -> None:
        self.network = network
        self._snapper = snapper
        m, n = network.n_edges, network.n_nodes
        self._order = np.lexsort((network.v, network.u)).astype(np.int64)
        key = network.u[self._order] * n + network.v[self._order]
        starts = np.concatenate([[True], key[1:] != key[:-1]]) if m else np.zeros(0, bool)
        self._group_start = np.nonzero(starts)[0]
        self._group_of = np.cumsum(starts) - 1
        pair_u = network.u[self._order][self._group_start]
        self._indices = network.v[self._order][self._group_start].astype(np.int32)
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(pair_u, minlength=n))]).astype(np.int32)
        self._pair_key = pair_u * n + self._indices  # sorted: CSR entry of node pair (u, v)
        self.set_weights(network.freeflow_time_s if weights is None else weights)

    @property
    def snapper(self) -> EdgeSnapper:
        if self._snapper is None:
            self._snapper = EdgeSnapper(self.network)
        return self._snapper

    def _reduce(self, weights: npt.ArrayLike) -> tuple[sp.csr_matrix, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.network.n_edges,):
            raise ValueError(f"weights must have shape ({self.network.n_edges},), got {w.shape}")
        if (w < 0).any():
            raise ValueError("edge weights must be non-negative")
        w = np.where(np.isfinite(w), np.maximum(w, 1e-9), _CLOSED)
        ws = w[self._order]
        best = np.minimum.reduceat(ws, self._group_start) if len(ws) else ws
        pos = np.where(ws <= best[self._group_of], np.arange(len(ws)), len(ws))
        entry_edge = self._order[np.minimum.reduceat(pos, self._group_start)] if len(ws) else self._order
        n = self.network.n_nodes
        matrix = sp.csr_matrix((best, self._indices, self._indptr), shape=(n, n))
        return matrix, entry_edge, w

    def set_weights(self, weights: npt.ArrayLike) -> None:
        """Replace the default per-edge travel times (s); NaN/inf marks an edge closed.

        The swap is one attribute assignment, so queries running in other threads see
        either the old or the new weights, never a mix.
        """
        self._current = self._reduce(weights)

    @property
    def weights(self) -> npt.NDArray[np.float64]:
        """Current per-edge weights (s), closed edges as 1e30."""
        return self._current[2]

    def _edges_of_path(self, nodes: list[int], entry_edge: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        if len(nodes) < 2:
            return np.zeros(0, dtype=np.int64)
        path = np.asarray(nodes, dtype=np.int64)
        pos = np.searchsorted(self._pair_key, path[:-1] * self.network.n_nodes + path[1:])
        return np.asarray(entry_edge[pos], dtype=np.int64)

    @staticmethod
    def _walk(pred_row: npt.NDArray[np.int32], target: int) -> list[int]:
        path = [target]
        while pred_row[path[-1]] >= 0:
            path.append(int(pred_row[path[-1]]))
        return path[::-1]

    def _finish(self, edges: npt.NDArray[np.int64], f0: float, f1: float, w: npt.NDArray[np.float64]) -> Route:
        r = Route(edges, f0, f1, 0.0, 0.0, 0.0)
        time_s = r._partial_sum(w)
        if time_s >= _CLOSED / 10:
            raise NoRouteError("every path uses a closed edge")
        return Route(edges, f0, f1, r._partial_sum(self.network.length_m), time_s,
                     r._partial_sum(self.network.freeflow_time_s))

    def route_nodes(
        self, source: int, target: int, weights: npt.ArrayLike | None = None, limit_s: float | None = None
    ) -> Route:
        """Shortest path from node ``source`` to node ``target`` (node indices).

        ``limit_s`` bounds the search (s of travel time): farther targets raise
        :class:`NoRouteError`, and the search stops early.
        """
        matrix, entry_edge, w = self._current if weights is None else self._reduce(weights)
        n = self.network.n_nodes
        if not (0 <= source < n and 0 <= target < n):
            raise ValueError(f"node index out of range 0..{n - 1}")
        limit = np.inf if limit_s is None else float(limit_s)
        dist, pred = dijkstra(matrix, indices=source, return_predecessors=True, limit=limit)
        if not np.isfinite(dist[target]):
            raise NoRouteError(f"no path from node {source} to node {target}" + ("" if limit_s is None else f" within {limit_s:g} s"))
        edges = self._edges_of_path(self._walk(pred, target), entry_edge)
        return self._finish(edges, 0.0, 1.0, w)

    def route(
        self,
        origin: tuple[float, float],
        destination: tuple[float, float],
        weights: npt.ArrayLike | None = None,
        max_snap_m: float = 500.0,
        limit_s: float | None = None,
    ) -> Route:
        """Fastest path between two points given as ``(lon, lat)`` degrees.

        Each point is snapped to its nearest edge (and that edge's reverse, when the street
        is two-way) within ``max_snap_m`` (m). ``limit_s`` bounds the search (s of travel
        time). Raises :class:`NoRouteError` when a point is too far from any road or no
        path (within the limit) connects them.
        """
        net = self.network
        snap = self.snapper.nearest([origin[0], destination[0]], [origin[1], destination[1]], max_distance_m=max_snap_m)
        if snap.edge[0] < 0 or snap.edge[1] < 0:
            which = "origin" if snap.edge[0] < 0 else "destination"
            raise NoRouteError(f"{which} is more than {max_snap_m:g} m from any road")

        def ends(k: int) -> list[tuple[int, float]]:
            e, f = int(snap.edge[k]), float(snap.fraction[k])
            out = [(e, f)]
            r = int(net.reverse_edge[e])
            if r >= 0:
                out.append((r, 1.0 - f))
            return out

        return self.edge_route(ends(0), ends(1), weights, limit_s)

    def edge_costs(self, starts: Sequence[tuple[int, float]], stops: Sequence[tuple[int, float]],
                   weights: npt.ArrayLike | None = None, limit_s: float | None = None) -> npt.NDArray[np.float64]:
        """Travel time (s) from each start to each stop, both ``(edge, fraction along it)``; inf
        when no path (within ``limit_s``) joins them. One search from all the starts."""
        matrix, _, w = self._current if weights is None else self._reduce(weights)
        net = self.network
        out = np.full((len(starts), len(stops)), np.inf)
        if not len(starts) or not len(stops):
            return out
        sources = np.unique([int(net.v[e]) for e, _ in starts])
        dist = np.atleast_2d(dijkstra(matrix, indices=sources, limit=np.inf if limit_s is None else float(limit_s)))
        for i, (e0, f0) in enumerate(starts):
            row = int(np.searchsorted(sources, net.v[e0]))
            for j, (e1, f1) in enumerate(stops):
                if e0 == e1 and f1 >= f0:
                    out[i, j] = (f1 - f0) * w[e0]
                else:
                    out[i, j] = (1.0 - f0) * w[e0] + dist[row, net.u[e1]] + f1 * w[e1]
        if limit_s is not None:
            out[out > limit_s] = np.inf
        return out

    def edge_route(self, starts: Sequence[tuple[int, float]], stops: Sequence[tuple[int, float]],
                   weights: npt.ArrayLike | None = None, limit_s: float | None = None) -> Route:
        """Fastest path from any of ``starts`` to any of ``stops``, each ``(edge, fraction along it)``.

        Raises :class:`NoRouteError` when no path (within ``limit_s``, s) joins them.
        """
        matrix, entry_edge, w = self._current if weights is None else self._reduce(weights)
        net = self.network
        if not len(starts) or not len(stops):
            raise NoRouteError("no origin or no destination edge")
        sources = np.unique([int(net.v[e]) for e, _ in starts])
        limit = np.inf if limit_s is None else float(limit_s)
        dist, pred = dijkstra(matrix, indices=sources, return_predecessors=True, limit=limit)
        dist, pred = np.atleast_2d(dist), np.atleast_2d(pred)
        best: tuple[float, npt.NDArray[np.int64], float, float] | None = None
        best_pair = (-1, -1)
        for e0, f0 in starts:
            for e1, f1 in stops:
                if e0 == e1 and f1 >= f0:
                    cost = (f1 - f0) * w[e0]
                    edges = np.array([e0], dtype=np.int64)
                else:
                    row = int(np.searchsorted(sources, net.v[e0]))
                    mid = dist[row, net.u[e1]]
                    cost = (1.0 - f0) * w[e0] + mid + f1 * w[e1]
                    if not np.isfinite(cost) or (limit_s is not None and cost > limit_s):
                        continue
                    edges = np.array([], dtype=np.int64)  # filled below for the winner only
                if best is None or cost < best[0]:
                    best = (float(cost), edges, f0, f1)
                    best_pair = (e0, e1)
        if best is None:
            raise NoRouteError("no path connects the origin and destination")
        cost, edges, f0, f1 = best
        if len(edges) == 0:
            e0, e1 = best_pair
            row = int(np.searchsorted(sources, net.v[e0]))
            middle = self._edges_of_path(self._walk(pred[row], int(net.u[e1])), entry_edge)
            edges = np.concatenate([[e0], middle, [e1]]).astype(np.int64)
        return self._finish(edges, f0, f1, w)

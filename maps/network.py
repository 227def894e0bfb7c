"""The road network: a directed graph with parallel numpy arrays of edge attributes.

Nodes are indexed ``0..n_nodes-1`` and edges ``0..n_edges-1``; an edge index is the one id
other packages use (probe observations, speed estimates, GeoJSON features). Attributes
live in arrays so a full-network update is array arithmetic; networkx views and scipy CSR
matrices are derived from them on demand and cached.

A two-way street is two directed edges with reversed geometry (``reverse_edge`` links
them); a one-way street is one edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from maps.geometry import Projector, polyline_lengths
from maps.roadclass import capacity_vph, class_freeflow_kmh, default_lanes

__all__ = ["FORMAT_VERSION", "RoadNetwork"]

FORMAT_VERSION = 1
_ARRAYS = (
    "node_lon", "node_lat", "node_source_id", "u", "v", "length_m", "road_class", "lanes",
    "oneway", "freeflow_mps", "capacity_vph", "way_id", "street_name", "coords", "geom_offsets",
)


@dataclass(eq=False)
class RoadNetwork:
    """Directed road graph with edge attributes as parallel arrays.

    Attributes
    ----------
    name : network name (database key, e.g. ``"helsinki"``).
    node_lon, node_lat : node position (degrees), shape ``(n_nodes,)``.
    node_source_id : id of the node in its source (OSM node id; grid cell id), int64.
    u, v : start and end node index of each edge, int64, shape ``(n_edges,)``.
    length_m : edge length along its geometry (m).
    road_class : OSM ``highway`` value or ``bus_route``/``synthetic`` (str array).
    lanes : lanes in the edge's direction (≥ 1), int16.
    oneway : True when no opposite edge exists (bool).
    freeflow_mps : free-flow speed (m/s): ``maxspeed`` or the class default.
    capacity_vph : directional capacity (vehicles/hour): class per-lane capacity × lanes.
    way_id : source way id (OSM way; GTFS-derived: -1), int64.
    street_name : street name ("" when unknown).
    coords : edge geometries, ``(N, 2)`` lon/lat (degrees) in CSR layout with ``geom_offsets``
        (edge ``i`` is ``coords[geom_offsets[i]:geom_offsets[i+1]]``, from u to v).
    source : where the network came from (file name, feed), free text.
    """

    name: str
    node_lon: npt.NDArray[np.float64]
    node_lat: npt.NDArray[np.float64]
    node_source_id: npt.NDArray[np.int64]
    u: npt.NDArray[np.int64]
    v: npt.NDArray[np.int64]
    length_m: npt.NDArray[np.float64]
    road_class: npt.NDArray[np.str_]
    lanes: npt.NDArray[np.int16]
    oneway: npt.NDArray[np.bool_]
    freeflow_mps: npt.NDArray[np.float64]
    capacity_vph: npt.NDArray[np.float64]
    way_id: npt.NDArray[np.int64]
    street_name: npt.NDArray[np.str_]
    coords: npt.NDArray[np.float64]
    geom_offsets: npt.NDArray[np.int64]
    source: str = ""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edges(
        cls,
        name: str,
        node_lon: npt.ArrayLike,
        node_lat: npt.ArrayLike,
        u: npt.ArrayLike,
        v: npt.ArrayLike,
        coords: npt.ArrayLike,
        geom_offsets: npt.ArrayLike,
        road_class: npt.ArrayLike,
        *,
        node_source_id: npt.ArrayLike | None = None,
        maxspeed_kmh: npt.ArrayLike | None = None,
        lanes: npt.ArrayLike | None = None,
        oneway: npt.ArrayLike | None = None,
        way_id: npt.ArrayLike | None = None,
        street_name: npt.ArrayLike | None = None,
        source: str = "",
    ) -> RoadNetwork:
        """Build a network, deriving length, free-flow speed, lanes, capacity and oneway.

        Parameters
        ----------
        maxspeed_kmh : posted speed per edge (km/h), NaN where unknown → class default.
        lanes : lanes per direction, 0 or negative where unknown → class default.
        oneway : given flags; default: an edge is one-way when no edge runs v→u.
        """
        u_arr = np.asarray(u, dtype=np.int64)
        v_arr = np.asarray(v, dtype=np.int64)
        n_edges = len(u_arr)
        cls_arr = np.asarray(road_class).astype(str)
        if cls_arr.shape == ():
            cls_arr = np.full(n_edges, str(cls_arr))
        c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        off = np.asarray(geom_offsets, dtype=np.int64)
        lon = np.asarray(node_lon, dtype=np.float64)
        lat = np.asarray(node_lat, dtype=np.float64)
        proj = Projector.for_points(lon, lat)
        length = polyline_lengths(proj.coords_to_xy(c), off)
        speed = np.full(n_edges, np.nan) if maxspeed_kmh is None else np.asarray(maxspeed_kmh, dtype=np.float64)
        speed = np.where(np.isfinite(speed) & (speed > 0), speed, class_freeflow_kmh(cls_arr))
        lanes_arr = np.zeros(n_edges, dtype=np.int16) if lanes is None else np.asarray(lanes, dtype=np.int16)
        lanes_arr = np.where(lanes_arr > 0, lanes_arr, default_lanes(cls_arr)).astype(np.int16)
        if oneway is None:
            fwd = u_arr * (len(lon) + 1) + v_arr
            rev = v_arr * (len(lon) + 1) + u_arr
            oneway_arr = ~np.isin(fwd, rev)
        else:
            oneway_arr = np.asarray(oneway, dtype=bool)
        net = cls(
            name=name,
            node_lon=lon,
            node_lat=lat,
            node_source_id=np.arange(len(lon), dtype=np.int64) if node_source_id is None else np.asarray(node_source_id, dtype=np.int64),
            u=u_arr,
            v=v_arr,
            length_m=length,
            road_class=cls_arr,
            lanes=lanes_arr,
            oneway=oneway_arr,
            freeflow_mps=speed / 3.6,
            capacity_vph=capacity_vph(cls_arr, lanes_arr),
            way_id=np.full(n_edges, -1, dtype=np.int64) if way_id is None else np.asarray(way_id, dtype=np.int64),
            street_name=np.full(n_edges, "", dtype=str) if street_name is None else np.asarray(street_name).astype(str),
            coords=c,
            geom_offsets=off,
            source=source,
        )
        net.validate()
        return net

    def validate(self) -> None:
        """Check array shapes and index ranges; raise ``ValueError`` naming the problem."""
        n, m = self.n_nodes, self.n_edges
        for attr in ("node_lat", "node_source_id"):
            if len(getattr(self, attr)) != n:
                raise ValueError(f"{attr} has {len(getattr(self, attr))} entries, expected {n} nodes")
        for attr in ("v", "length_m", "road_class", "lanes", "oneway", "freeflow_mps", "capacity_vph", "way_id", "street_name"):
            if len(getattr(self, attr)) != m:
                raise ValueError(f"{attr} has {len(getattr(self, attr))} entries, expected {m} edges")
        if len(self.geom_offsets) != m + 1 or (m and self.geom_offsets[-1] != len(self.coords)):
            raise ValueError("geom_offsets must have n_edges + 1 entries ending at len(coords)")
        if m and (np.diff(self.geom_offsets) < 2).any():
            raise ValueError("every edge geometry needs at least 2 points")
        if m and (min(self.u.min(), self.v.min()) < 0 or max(self.u.max(), self.v.max()) >= n):
            raise ValueError("edge endpoints out of node range")

    # ------------------------------------------------------------------ basic views
    @property
    def n_nodes(self) -> int:
        return len(self.node_lon)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    @property
    def freeflow_time_s(self) -> npt.NDArray[np.float64]:
        """Free-flow travel time of each edge (s)."""
        return np.asarray(self.length_m / self.freeflow_mps, dtype=np.float64)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of all geometry (degrees)."""
        return (float(self.coords[:, 0].min()), float(self.coords[:, 1].min()),
                float(self.coords[:, 0].max()), float(self.coords[:, 1].max()))

    @cached_property
    def projector(self) -> Projector:
        """Local metric projection centred on the network."""
        return Projector.for_bbox(*self.bbox)

    @cached_property
    def coords_xy(self) -> npt.NDArray[np.float64]:
        """Edge geometry vertices in the local metric CRS (m), same layout as ``coords``."""
        return self.projector.coords_to_xy(self.coords)

    def _linestrings(self, c: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
        idx = np.repeat(np.arange(self.n_edges), np.diff(self.geom_offsets))
        return np.asarray(shapely.linestrings(c, indices=idx), dtype=object)

    @cached_property
    def geometries(self) -> npt.NDArray[np.object_]:
        """Shapely LineStrings in lon/lat (degrees), one per edge."""
        return self._linestrings(self.coords)

    @cached_property
    def geometries_xy(self) -> npt.NDArray[np.object_]:
        """Shapely LineStrings in the local metric CRS (m), one per edge."""
        return self._linestrings(self.coords_xy)

    @cached_property
    def edge_bounds(self) -> npt.NDArray[np.float64]:
        """Bounding box of each edge, ``(n_edges, 4)`` as west, south, east, north (degrees)."""
        start = self.geom_offsets[:-1]
        lon, lat = self.coords[:, 0], self.coords[:, 1]
        return np.column_stack([
            np.minimum.reduceat(lon, start), np.minimum.reduceat(lat, start),
            np.maximum.reduceat(lon, start), np.maximum.reduceat(lat, start),
        ]) if self.n_edges else np.zeros((0, 4))

    @cached_property
    def reverse_edge(self) -> npt.NDArray[np.int64]:
        """Index of the opposite edge v→u of the same way (shortest such), or -1."""
        key = self.u * self.n_nodes + self.v
        rkey = self.v * self.n_nodes + self.u
        order = np.lexsort((self.length_m, key))
        skey = key[order]
        first = np.searchsorted(skey, rkey)
        found = (first < len(skey)) & (skey[np.minimum(first, len(skey) - 1)] == rkey)
        out = np.where(found, order[np.minimum(first, len(skey) - 1)], -1)
        return np.asarray(out, dtype=np.int64)

    @cached_property
    def edge_index(self) -> dict[tuple[int, int], int]:
        """Map ``(u, v)`` node indices to the shortest edge between them."""
        order = np.argsort(-self.length_m, kind="stable")  # shortest written last wins
        return {(int(a), int(b)): int(e) for a, b, e in zip(self.u[order], self.v[order], order, strict=True)}

    # ------------------------------------------------------------------ graph views
    def node_adjacency(self, weights: npt.ArrayLike) -> tuple[sp.csr_matrix, npt.NDArray[np.int64]]:
        """Node-to-node CSR matrix of edge weights and the edge behind each entry.

        Parallel edges keep the smallest weight. Zero weights are stored as a tiny positive
        value (csgraph treats explicit zeros as missing edges).

        Parameters
        ----------
        weights : per-edge cost (e.g. travel time in s), shape ``(n_edges,)``; edges with
            a non-finite weight are left out (closed roads).

        Returns
        -------
        matrix : ``(n_nodes, n_nodes)`` CSR of weights.
        entry_edge : edge index for each stored entry, aligned with ``matrix.data``.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.n_edges,):
            raise ValueError(f"weights must have shape ({self.n_edges},), got {w.shape}")
        ok = np.isfinite(w)
        if (w[ok] < 0).any():
            raise ValueError("edge weights must be non-negative")
        edges = np.nonzero(ok)[0]
        order = np.lexsort((w[edges], self.v[edges], self.u[edges]))
        edges = edges[order]
        key = self.u[edges] * self.n_nodes + self.v[edges]
        keep = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else np.zeros(0, bool)
        edges = edges[keep]
        data = np.maximum(w[edges], 1e-9)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(self.u[edges], minlength=self.n_nodes))])
        matrix = sp.csr_matrix((data, self.v[edges], indptr), shape=(self.n_nodes, self.n_nodes))
        return matrix, edges.astype(np.int64)

    @cached_property
    def line_graph(self) -> sp.csr_matrix:
        """Edge-to-edge successor matrix: entry (i, j) = 1 when edge j can follow edge i.

        U-turns onto the reverse edge are excluded. Shape ``(n_edges, n_edges)``.
        """
        m, n = self.n_edges, self.n_nodes
        ones = np.ones(m, dtype=np.float32)
        into = sp.csr_matrix((ones, (np.arange(m), self.v)), shape=(m, n))
        out = sp.csr_matrix((ones, (self.u, np.arange(m))), shape=(n, m))
        succ = (into @ out).tocoo()
        keep = succ.col != self.reverse_edge[succ.row]
        return sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (succ.row[keep], succ.col[keep])), shape=(m, m))

    def strongly_connected_edges(self) -> npt.NDArray[np.bool_]:
        """Mask of edges inside the largest strongly connected component."""
        matrix, _ = self.node_adjacency(np.ones(self.n_edges))
        _, labels = connected_components(matrix, directed=True, connection="strong")
        biggest = np.bincount(labels).argmax()
        return np.asarray((labels[self.u] == biggest) & (labels[self.v] == biggest))

    def to_networkx(self, weights: dict[str, npt.ArrayLike] | None = None) -> nx.MultiDiGraph:
        """A networkx MultiDiGraph (key = edge index) for analysis.

        Nodes carry ``x`` (lon), ``y`` (lat); edges carry ``edge`` (index), ``length_m``,
        ``road_class``, ``freeflow_mps`` and any extra per-edge ``weights`` arrays.
        """
        g = nx.MultiDiGraph(name=self.name)
        g.add_nodes_from((i, {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(zip(self.node_lon, self.node_lat, strict=True)))
        extra = {k: np.asarray(a) for k, a in (weights or {}).items()}
        for e in range(self.n_edges):
            attrs: dict[str, Any] = {
                "edge": e, "length_m": float(self.length_m[e]), "road_class": str(self.road_class[e]),
                "freeflow_mps": float(self.freeflow_mps[e]),
            }
            attrs.update({k: a[e].item() for k, a in extra.items()})
            g.add_edge(int(self.u[e]), int(self.v[e]), key=e, **attrs)
        return g

    def subset(self, edge_mask: npt.ArrayLike, name: str | None = None) -> RoadNetwork:
        """The network restricted to the masked edges (nodes renumbered, unused ones dropped)."""
        mask = np.asarray(edge_mask, dtype=bool)
        edges = np.nonzero(mask)[0]
        used = np.unique(np.concatenate([self.u[edges], self.v[edges]]))
        renum = np.full(self.n_nodes, -1, dtype=np.int64)
        renum[used] = np.arange(len(used))
        counts = np.diff(self.geom_offsets)[edges]
        pts = np.repeat(self.geom_offsets[edges], counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        return RoadNetwork(
            name=name or self.name, node_lon=self.node_lon[used], node_lat=self.node_lat[used],
            node_source_id=self.node_source_id[used], u=renum[self.u[edges]], v=renum[self.v[edges]],
            length_m=self.length_m[edges], road_class=self.road_class[edges], lanes=self.lanes[edges],
            oneway=self.oneway[edges], freeflow_mps=self.freeflow_mps[edges],
            capacity_vph=self.capacity_vph[edges], way_id=self.way_id[edges],
            street_name=self.street_name[edges], coords=self.coords[pts],
            geom_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), source=self.source,
        )

    @classmethod
    def concat(cls, networks: list[RoadNetwork], name: str) -> RoadNetwork:
        """Disjoint union of networks (node and edge indices shifted, in the given order).

        Metric views (``projector``, snapping) use one CRS centred on the union, so the
        parts should lie in the same region (within a few hundred km).
        """
        if not networks:
            raise ValueError("nothing to concatenate")
        node_shift = np.cumsum([0] + [n.n_nodes for n in networks[:-1]])
        coord_shift = np.cumsum([0] + [len(n.coords) for n in networks[:-1]])
        net = cls(
            name=name, source=" + ".join(n.source or n.name for n in networks),
            node_lon=np.concatenate([n.node_lon for n in networks]),
            node_lat=np.concatenate([n.node_lat for n in networks]),
            node_source_id=np.concatenate([n.node_source_id for n in networks]),
            u=np.concatenate([n.u + k for n, k in zip(networks, node_shift, strict=True)]),
            v=np.concatenate([n.v + k for n, k in zip(networks, node_shift, strict=True)]),
            length_m=np.concatenate([n.length_m for n in networks]),
            road_class=np.concatenate([n.road_class for n in networks]),
            lanes=np.concatenate([n.lanes for n in networks]),
            oneway=np.concatenate([n.oneway for n in networks]),
            freeflow_mps=np.concatenate([n.freeflow_mps for n in networks]),
            capacity_vph=np.concatenate([n.capacity_vph for n in networks]),
            way_id=np.concatenate([n.way_id for n in networks]),
            street_name=np.concatenate([n.street_name for n in networks]),
            coords=np.concatenate([n.coords for n in networks]),
            geom_offsets=np.concatenate(
                [[0]] + [n.geom_offsets[1:] + k for n, k in zip(networks, coord_shift, strict=True)]
            ).astype(np.int64),
        )
        net.validate()
        return net

    # ------------------------------------------------------------------ disk cache
    def save(self, path: str | Path) -> Path:
        """Write the network to an ``.npz`` file (no pickles); return the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"format": FORMAT_VERSION, "name": self.name, "source": self.source})
        arrays = {k: getattr(self, k) for k in _ARRAYS}
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez_compressed(tmp, meta=np.array(meta), **arrays)
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> RoadNetwork:
        """Read a network written by :meth:`save`."""
        p = Path(path)
        with np.load(p, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"{p}: network cache format {meta.get('format')} != {FORMAT_VERSION}")
            missing = [k for k in _ARRAYS if k not in data]
            if missing:
                raise ValueError(f"{p}: network cache lacks arrays {missing}")
            arrays = {k: data[k] for k in _ARRAYS}
        net = cls(name=meta["name"], source=meta.get("source", ""), **arrays)
        net.validate()
        return net

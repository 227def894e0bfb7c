"""A road network derived from a GTFS feed's ``shapes.txt`` (for offline demo cities).

Method
------
1. Shapes are projected to a local metric CRS and vertices closer than ``snap_m``
   (default 3 m) merge into one, preferring the vertex most shapes share, without
   chaining (no vertex moves more than ``snap_m``).
2. Noding: a vertex lying within ``snap_m`` of another shape's segment (not at its ends)
   is inserted into that segment, so a street drawn with different vertex spacing by two
   shapes ends up with the same vertex sequence in both.
3. The directed vertex-to-vertex steps of all shapes form one graph: a section used by
   several shapes is one set of steps, hence one edge (shared road sections are merged).
4. Vertices where the graph branches (undirected degree ≠ 2), where the set of travelled
   directions changes, or where a shape starts or ends are nodes; chains of vertices
   between nodes become edges. An edge is two-way when shapes travel it in both
   directions (its reverse is a separate edge with reversed geometry).

Limits (by design)
------------------
- Only streets some bus shape uses exist; turns and one-way rules are only those buses
  make, so the network is for congestion/probe work on bus corridors, not general routing.
- Road class, lanes and speed limits are unknown: every edge is ``bus_route`` with the
  class defaults of :mod:`maps.roadclass` (40 km/h, 1 lane, 1,000 veh/h).
- Sections merge only where shapes share (or nearly share, < ``snap_m``) vertices or lie
  on each other's segments. Feeds that draw the two directions of a street a few metres
  apart (e.g. on each carriageway) keep them as separate one-way edges, and where such
  lines touch, short extra edges appear (seen on the WMATA feed; Cairns shapes share
  vertices and merge cleanly).
- Crossing segments without a shared vertex are not connected (treated as grade
  separated); a shape's straight jumps over data gaps stay straight.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from maps.geometry import Projector, project_points_to_segments
from maps.network import RoadNetwork

__all__ = ["GtfsShapeError", "ShapeNetwork", "derive_network", "read_shapes"]

_COLUMNS = ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence")
_BIG = np.int64(1 << 31)


class GtfsShapeError(ValueError):
    """``shapes.txt`` is missing or malformed (the message names file, line and field)."""


@dataclass(frozen=True)
class ShapeNetwork:
    """A GTFS-derived network and the edge walk of every shape.

    Attributes
    ----------
    network : the road network.
    shape_edges : for each ``shape_id``, the edge indices the shape travels, in order.
    snap_m : vertex merge radius used (m).
    """

    network: RoadNetwork
    shape_edges: dict[str, npt.NDArray[np.int64]]
    snap_m: float

    def shapes_per_edge(self) -> npt.NDArray[np.int64]:
        """Number of distinct shapes travelling each edge."""
        counts = np.zeros(self.network.n_edges, dtype=np.int64)
        for edges in self.shape_edges.values():
            counts[np.unique(edges)] += 1
        return counts


def read_shapes(path: str | Path) -> pd.DataFrame:
    """Read ``shapes.txt`` from a GTFS zip or directory, sorted by shape and sequence.

    Raises :class:`GtfsShapeError` naming the file, line and field of the first bad value.
    """
    p = Path(path)
    label = f"{p}:shapes.txt"
    try:
        if p.is_dir():
            df = pd.read_csv(p / "shapes.txt", dtype=str, keep_default_na=False)
        else:
            with zipfile.ZipFile(p) as z:
                member = next((n for n in z.namelist() if n.rsplit("/", 1)[-1] == "shapes.txt"), None)
                if member is None:
                    raise GtfsShapeError(f"{p}: feed has no shapes.txt")
                with z.open(member) as fh:
                    df = pd.read_csv(fh, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"GTFS feed not found: {p}") from None
    except (zipfile.BadZipFile, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise GtfsShapeError(f"{label}: cannot parse: {exc}") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in _COLUMNS if c not in df.columns]
    if missing:
        raise GtfsShapeError(f"{label}: missing column(s) {', '.join(missing)}")
    out = pd.DataFrame({"shape_id": df["shape_id"].str.strip()})
    for col, lo, hi in (("shape_pt_lat", -90, 90), ("shape_pt_lon", -180, 180), ("shape_pt_sequence", 0, np.inf)):
        values = pd.to_numeric(df[col].str.strip(), errors="coerce")
        bad = values.isna() | (values < lo) | (values > hi)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise GtfsShapeError(f"{label} line {row + 2}: field {col} = {df[col].iloc[row]!r} is not a valid number")
        out[col] = values.to_numpy(dtype=np.float64)
    if (out["shape_id"] == "").any():
        row = int(np.argmax((out["shape_id"] == "").to_numpy()))
        raise GtfsShapeError(f"{label} line {row + 2}: field shape_id is empty")
    if out.empty:
        raise GtfsShapeError(f"{label}: no shape points")
    return out.sort_values(["shape_id", "shape_pt_sequence"], kind="stable").reset_index(drop=True)


def _merge_vertices(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], shape: npt.NDArray[np.int64], radius: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Merge shape vertices closer than ``radius`` (m) without chaining.

    Identical points (to 1 cm) become one vertex first. Then centres are chosen like a
    maximal independent set (Luby rounds, all vectorised): in each round an unassigned
    vertex whose priority (most shapes using it, then a fixed pseudo-random order) beats
    every unassigned neighbour within ``radius`` becomes a centre, and its unassigned
    neighbours join the nearest such centre. No vertex moves more than ``radius``.

    Returns
    -------
    vertex id of each input point, vertex x, vertex y (m).
    """
    key = np.round(x * 100).astype(np.int64) * _BIG + np.round(y * 100).astype(np.int64)
    _, point_vertex = np.unique(key, return_inverse=True)
    point_vertex = point_vertex.reshape(-1)
    n = int(point_vertex.max()) + 1
    first = np.zeros(n, dtype=np.int64)
    first[point_vertex[::-1]] = np.arange(len(x))[::-1]
    px, py = x[first], y[first]
    n_shapes = int(shape.max()) + 1
    usage = np.bincount(np.unique(point_vertex * n_shapes + shape) // n_shapes, minlength=n)
    tie = np.random.default_rng(0).permutation(n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((tie, -usage))] = np.arange(n)  # 0 = highest priority
    pairs = cKDTree(np.column_stack([px, py])).query_pairs(radius, output_type="ndarray")
    i = np.concatenate([pairs[:, 0], pairs[:, 1]]).astype(np.int64)
    j = np.concatenate([pairs[:, 1], pairs[:, 0]]).astype(np.int64)
    dist = np.hypot(px[i] - px[j], py[i] - py[j])
    target = np.full(n, -1, dtype=np.int64)
    while (target < 0).any():
        free = target < 0
        live = free[i] & free[j]
        best = rank.copy()
        np.minimum.at(best, i[live], rank[j[live]])
        centre = free & (best == rank)
        target[centre] = np.nonzero(centre)[0]
        join = free[i] & ~centre[i] & centre[j]
        o = np.lexsort((dist[join], i[join]))
        ji, jj = i[join][o], j[join][o]
        head = np.concatenate([[True], ji[1:] != ji[:-1]]) if len(ji) else np.zeros(0, bool)
        target[ji[head]] = jj[head]
    centres, merged = np.unique(target, return_inverse=True)
    return merged.reshape(-1)[point_vertex].astype(np.int64), px[centres], py[centres]


def _split_on_vertices(
    vx: npt.NDArray[np.float64], vy: npt.NDArray[np.float64], sa: npt.NDArray[np.int64], sb: npt.NDArray[np.int64], tol: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Vertices lying inside segments (within ``tol`` m, not at an end): (segment, vertex, t)."""
    lines = shapely.linestrings(np.stack([np.column_stack([vx[sa], vy[sa]]), np.column_stack([vx[sb], vy[sb]])], axis=1))
    tree = shapely.STRtree(lines)
    vert, seg = tree.query(shapely.points(vx, vy), predicate="dwithin", distance=tol)
    vert, seg = vert.astype(np.int64), seg.astype(np.int64)
    inner = (vert != sa[seg]) & (vert != sb[seg])
    vert, seg = vert[inner], seg[inner]
    dist, t = project_points_to_segments(vx[vert], vy[vert], vx[sa[seg]], vy[sa[seg]], vx[sb[seg]], vy[sb[seg]])
    ok = (dist <= tol) & (t > 0) & (t < 1)
    order = np.lexsort((t[ok], seg[ok]))
    return seg[ok][order], vert[ok][order], t[ok][order]


def _dedupe(vid: npt.NDArray[np.int64], walk: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    keep = np.ones(len(vid), dtype=bool)
    keep[1:] = (vid[1:] != vid[:-1]) | (walk[1:] != walk[:-1])
    return vid[keep], walk[keep]


def _node_walks(
    vx: npt.NDArray[np.float64], vy: npt.NDArray[np.float64], vid: npt.NDArray[np.int64], walk: npt.NDArray[np.int64], tol: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Insert into each walk the vertices of other shapes lying on its segments (noding)."""
    vid, walk = _dedupe(vid, walk)
    step = walk[1:] == walk[:-1]
    a, b = vid[:-1][step], vid[1:][step]
    k = len(vx)
    seg_keys, seg_of_link = np.unique(np.minimum(a, b) * k + np.maximum(a, b), return_inverse=True)
    sa, sb = seg_keys // k, seg_keys % k
    seg, vert, _ = _split_on_vertices(vx, vy, sa, sb, tol)
    if len(seg) == 0:
        return vid, walk
    n_inner = np.bincount(seg, minlength=len(seg_keys))
    inner_start = np.concatenate([[0], np.cumsum(n_inner)])
    # each point emits itself, then (if a link starts there) the inner vertices of the link
    link_pos = np.nonzero(step)[0]
    link_of_point = np.full(len(vid), -1, dtype=np.int64)
    link_of_point[link_pos] = seg_of_link.reshape(-1)
    counts = 1 + np.where(link_of_point >= 0, n_inner[np.maximum(link_of_point, 0)], 0)
    src = np.repeat(np.arange(len(vid)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    j = np.arange(len(src)) - first[src]
    out = vid[src].copy()
    ins = j > 0
    s_of = link_of_point[src[ins]]
    forward = vid[src[ins]] == sa[s_of]  # travelling sa→sb visits inner vertices by increasing t
    r = np.where(forward, j[ins] - 1, n_inner[s_of] - j[ins])
    out[ins] = vert[inner_start[s_of] + r]
    return _dedupe(out, walk[src])


def derive_network(path: str | Path, snap_m: float = 3.0, name: str | None = None) -> ShapeNetwork:
    """Derive a directed road network from the shapes of a GTFS feed (zip or directory).

    Parameters
    ----------
    path : GTFS feed.
    snap_m : merge radius (m): vertices closer than this merge, and a vertex within this
        distance of another shape's segment splits that segment.
    name : network name (default: the feed's file name without extension).
    """
    if snap_m <= 0:
        raise ValueError("snap_m must be positive")
    shapes = read_shapes(path)
    lon = shapes["shape_pt_lon"].to_numpy()
    lat = shapes["shape_pt_lat"].to_numpy()
    proj = Projector.for_points(lon, lat)
    x, y = proj.to_xy(lon, lat)
    shape_codes, shape_names = pd.factorize(shapes["shape_id"], sort=True)
    vid, vx, vy = _merge_vertices(x, y, shape_codes.astype(np.int64), snap_m)
    c, w = _node_walks(vx, vy, vid.reshape(-1).astype(np.int64), shape_codes.astype(np.int64), snap_m)
    step = w[1:] == w[:-1]
    a, b, link_walk = c[:-1][step], c[1:][step], w[:-1][step]
    k = len(vx)
    link_key = a * k + b
    links = np.unique(link_key)
    bounds_w = np.flatnonzero(np.diff(w)) + 1
    termini = np.unique(np.concatenate([c[[0]], c[bounds_w - 1], c[bounds_w], c[[-1]]]))
    chains = _chains(k, links // k, links % k, termini)
    link_edge = np.full(len(links), -1, dtype=np.int64)
    seq: list[npt.NDArray[np.int64]] = []
    for e, chain in enumerate(chains):
        arr = np.asarray(chain, dtype=np.int64)
        seq.append(arr)
        link_edge[np.searchsorted(links, arr[:-1] * k + arr[1:])] = e
    chain_len = np.array([len(s) for s in seq], dtype=np.int64)
    starts = np.array([s[0] for s in seq], dtype=np.int64)
    ends = np.array([s[-1] for s in seq], dtype=np.int64)
    junctions = np.unique(np.concatenate([starts, ends]))
    node_of = np.full(k, -1, dtype=np.int64)
    node_of[junctions] = np.arange(len(junctions))
    all_v = np.concatenate(seq)
    elon, elat = proj.to_lonlat(vx[all_v], vy[all_v])
    nlon, nlat = proj.to_lonlat(vx[junctions], vy[junctions])
    label = name or Path(path).name.split(".")[0].lower()
    network = RoadNetwork.from_edges(
        label, nlon, nlat, node_of[starts], node_of[ends], np.column_stack([elon, elat]),
        np.concatenate([[0], np.cumsum(chain_len)]).astype(np.int64), "bus_route",
        node_source_id=junctions, source=f"{Path(path).name} shapes, {snap_m:g} m snap",
    )
    # each shape's edge walk: its links mapped to edges, consecutive repeats collapsed
    le = link_edge[np.searchsorted(links, link_key)]
    change = np.ones(len(le), dtype=bool)
    change[1:] = (le[1:] != le[:-1]) | (link_walk[1:] != link_walk[:-1])
    le, lw = le[change], link_walk[change]
    bounds = np.searchsorted(lw, np.arange(len(shape_names) + 1))
    shape_edges = {str(shape_names[i]): le[bounds[i]:bounds[i + 1]] for i in range(len(shape_names))}
    return ShapeNetwork(network, shape_edges, float(snap_m))


def _chains(
    k: int, la: npt.NDArray[np.int64], lb: npt.NDArray[np.int64], termini: npt.NDArray[np.int64]
) -> list[list[int]]:
    """Split the directed vertex graph into node-to-node chains (lists of vertices).

    Nodes are vertices where the graph branches, where travelled directions change, and
    where a shape starts or ends (``termini``).
    """
    out_nb: list[list[int]] = [[] for _ in range(k)]
    for x, y in zip(la.tolist(), lb.tolist(), strict=True):
        out_nb[x].append(y)
    und = np.unique(np.concatenate([np.minimum(la, lb) * k + np.maximum(la, lb)]))
    degree = np.bincount(np.concatenate([und // k, und % k]), minlength=k)
    link_set = set(zip(la.tolist(), lb.tolist(), strict=True))
    nb_lists: list[list[int]] = [[] for _ in range(k)]
    for key in und.tolist():
        p, q = divmod(key, k)
        nb_lists[p].append(q)
        nb_lists[q].append(p)
    junction = degree != 2
    junction[termini] = True
    for cidx in np.nonzero(~junction)[0].tolist():
        p, q = nb_lists[cidx]
        # interior only if traffic through it is consistent: p→c iff c→q, q→c iff c→p
        if ((p, cidx) in link_set) != ((cidx, q) in link_set) or ((q, cidx) in link_set) != ((cidx, p) in link_set):
            junction[cidx] = True
    used: set[tuple[int, int]] = set()
    chains: list[list[int]] = []

    def walk_from(start: int) -> None:
        for nxt in out_nb[start]:
            if (start, nxt) in used:
                continue
            chain = [start, nxt]
            used.add((start, nxt))
            prev, cur = start, nxt
            while not junction[cur]:
                step = [n for n in out_nb[cur] if n != prev]
                if not step or (cur, step[0]) in used:
                    break
                used.add((cur, step[0]))
                prev, cur = cur, step[0]
                chain.append(cur)
            if not junction[cur]:
                junction[cur] = True  # closing a cycle: make its end a node
            chains.append(chain)

    for j in np.nonzero(junction)[0].tolist():
        walk_from(j)
    # cycles without any junction: promote one cell of each to a node
    for x, y in zip(la.tolist(), lb.tolist(), strict=True):
        if (x, y) not in used:
            junction[x] = True
            walk_from(x)
    return chains

"""Probe speeds from AVL: map-matching vehicle pings to the road graph (HMM / Viterbi).

Method (after Newson & Krumm 2009, as OpenTraffic does)
-------------------------------------------------------
1. Pings are sorted per vehicle; a trajectory breaks where the gap exceeds
   ``probe_max_gap_s`` or a ping has no edge within ``probe_radius_m``.
2. Candidates: the ``K`` nearest edges within the radius (STRtree, :mod:`maps.spatial`).
   Emission log-score ``-0.5 (d / sigma)^2`` minus a heading penalty ``0.5 (dh / 45°)^2``
   when the ping carries a bearing.
3. Transition log-score between candidates of consecutive pings:
   ``-|route - great_circle| / beta``, the route length along the graph (same-edge move, or
   rest of the first edge + shortest node path + start of the second); moves faster than
   ``probe_max_speed_mps`` are impossible. Node distances come from batched
   ``scipy.sparse.csgraph.dijkstra`` calls with a distance limit.
4. Viterbi runs over time steps, vectorised across all trajectories at once.
5. Each matched interval's travel time is spread over the traversed edges in proportion to
   the length covered on each; intervals slower than ``probe_dwell_speed_mps`` (dwell at
   stops and terminals, layovers) and intervals shorter than ``probe_min_interval_s`` are
   excluded. Traversals are binned per (edge, time bin)
   into space-mean speeds (covered length / travel time) with counts.

Limits: a dwell shorter than a ping interval is averaged into that interval's speed; with
sparse pings (> 2 min) on a dense grid the path between pings is a shortest-path guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.sparse.csgraph import dijkstra

from maps.geometry import haversine_m
from maps.network import RoadNetwork
from maps.spatial import EdgeSnapper
from traffic.config import TrafficSettings

__all__ = ["MatchedPings", "Pings", "ProbeMatcher", "ProbeObservations", "Traversals"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_NEG = -1e18
_CHUNK = 256  # dijkstra sources per call


@dataclass(frozen=True)
class Pings:
    """Vehicle positions (parallel arrays).

    Attributes
    ----------
    vehicle : vehicle id (str).
    time_s : UTC epoch time (s).
    lon, lat : position (degrees).
    heading_deg : bearing of travel (degrees from north), NaN when unknown.
    """

    vehicle: npt.NDArray[np.str_]
    time_s: FloatArray
    lon: FloatArray
    lat: FloatArray
    heading_deg: FloatArray

    def __len__(self) -> int:
        return len(self.time_s)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Pings:
        """From AVL CSV columns ``vehicle_id, timestamp, lat, lon[, bearing]``."""
        t = pd.to_datetime(df["timestamp"], format="ISO8601", utc=True)
        bearing = (pd.to_numeric(df["bearing"], errors="coerce") if "bearing" in df
                   else pd.Series(np.nan, index=df.index))
        return cls(
            vehicle=np.asarray(df["vehicle_id"].astype(str), dtype=str),
            time_s=np.asarray((t - pd.Timestamp(0, tz="UTC")).dt.total_seconds(), dtype=np.float64),
            lon=df["lon"].to_numpy(dtype=np.float64),
            lat=df["lat"].to_numpy(dtype=np.float64),
            heading_deg=np.asarray(bearing, dtype=np.float64),
        )


@dataclass(frozen=True)
class MatchedPings:
    """Matched position of every ping (input order); ``edge`` -1 where unmatched.

    ``chain`` numbers the matched runs: consecutive pings of one chain are connected by a
    graph path (``route_m`` from the previous ping, NaN at a chain start).
    """

    edge: IntArray
    offset_m: FloatArray
    distance_m: FloatArray
    chain: IntArray
    route_m: FloatArray


@dataclass(frozen=True)
class Traversals:
    """Pieces of edges travelled between two matched pings (one row per edge piece).

    Attributes
    ----------
    edge : edge index.
    time_s : time at the middle of the piece (UTC epoch s).
    covered_m : length travelled on the edge (m).
    travel_s : time spent on it (s).
    interval : index of the interval (its first ping, input order).
    """

    edge: IntArray
    time_s: FloatArray
    covered_m: FloatArray
    travel_s: FloatArray
    interval: IntArray


@dataclass(frozen=True)
class ProbeObservations:
    """Per-edge probe speeds per time bin (the rows of ``traffic_probe_speeds``).

    ``speed_mps`` = covered_m / travel time; ``samples`` = number of traversals.
    """

    edge: IntArray
    time_s: FloatArray
    bin_s: int
    speed_mps: FloatArray
    samples: IntArray
    covered_m: FloatArray

    def __len__(self) -> int:
        return len(self.edge)


class ProbeMatcher:
    """Map-match pings to a :class:`RoadNetwork` and derive per-edge probe speeds."""

    def __init__(self, network: RoadNetwork, settings: TrafficSettings | None = None,
                 snapper: EdgeSnapper | None = None, candidates: int = 5,
                 beta_m: float = 60.0) -> None:
        self.network = network
        self.settings = settings or TrafficSettings()
        self.snapper = snapper or EdgeSnapper(network)
        self.k = candidates
        self.beta_m = beta_m
        self._matrix, entry_edge = network.node_adjacency(network.length_m)
        # node pair (u, v) → shortest edge, as sorted keys for vectorised lookup
        keys = network.u[entry_edge] * network.n_nodes + network.v[entry_edge]
        order = np.argsort(keys)
        self._pair_keys, self._pair_edge = keys[order], entry_edge[order]

    # ------------------------------------------------------------------ graph distances
    def _node_distances(self, src: IntArray, dst: IntArray, limit: float) -> FloatArray:
        """Shortest length (m) from node ``src[i]`` to ``dst[i]`` (inf beyond ``limit``)."""
        out = np.full(len(src), np.inf)
        if not len(src):
            return out
        sources, inv = np.unique(src, return_inverse=True)
        for lo in range(0, len(sources), _CHUNK):
            chunk = sources[lo:lo + _CHUNK]
            d = dijkstra(self._matrix, indices=chunk, limit=limit)
            sel = (inv >= lo) & (inv < lo + len(chunk))
            out[sel] = d[inv[sel] - lo, dst[sel]]
        return out

    def _paths(self, src: IntArray, dst: IntArray) -> tuple[IntArray, IntArray]:
        """Edges of the shortest node paths ``src[i] → dst[i]``: (pair index, edge), in travel order."""
        pair_out: list[IntArray] = []
        edge_out: list[IntArray] = []
        step_out: list[IntArray] = []
        sources, inv = np.unique(src, return_inverse=True)
        for lo in range(0, len(sources), _CHUNK):
            chunk = sources[lo:lo + _CHUNK]
            _, pred = dijkstra(self._matrix, indices=chunk, return_predecessors=True)
            idx = np.nonzero((inv >= lo) & (inv < lo + len(chunk)))[0]
            rows = inv[idx] - lo
            cur = dst[idx].copy()
            step = 0
            active = cur != src[idx]
            while active.any():
                prev = pred[rows[active], cur[active]]
                ok = prev >= 0
                a_idx = np.nonzero(active)[0][ok]
                key = prev[ok].astype(np.int64) * self.network.n_nodes + cur[a_idx]
                pos = np.searchsorted(self._pair_keys, key)
                pair_out.append(idx[a_idx])
                edge_out.append(self._pair_edge[pos])
                step_out.append(np.full(len(a_idx), step))
                cur[a_idx] = prev[ok]
                dead = np.nonzero(active)[0][~ok]
                active[dead] = False
                active[a_idx] = cur[a_idx] != src[idx][a_idx]
                step += 1
        if not pair_out:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pair, edge, stp = np.concatenate(pair_out), np.concatenate(edge_out), np.concatenate(step_out)
        order = np.lexsort((-stp, pair))  # walked backwards: reverse the steps
        return pair[order], edge[order]

    # ------------------------------------------------------------------ matching
    def match(self, pings: Pings) -> MatchedPings:
        """Most likely edge position of every ping (HMM, Viterbi across all vehicles)."""
        s, k = self.settings, self.k
        n = len(pings)
        order = np.lexsort((pings.time_s, pings.vehicle))
        t, veh = pings.time_s[order], pings.vehicle[order]
        cand = self.snapper.candidates(pings.lon[order], pings.lat[order], s.probe_radius_m, pings.heading_deg[order])
        first = np.searchsorted(cand.point, cand.point, side="left")
        rank = np.arange(len(cand)) - first
        keep = rank < k
        p, r = cand.point[keep], rank[keep]
        ce = np.full((n, k), -1, dtype=np.int64)
        co = np.zeros((n, k))
        cd = np.full((n, k), np.inf)
        emis = np.full((n, k), _NEG)
        ce[p, r], co[p, r], cd[p, r] = cand.edge[keep], cand.offset_m[keep], cand.distance_m[keep]
        hd = np.nan_to_num(cand.heading_diff_deg[keep], nan=0.0)
        emis[p, r] = -0.5 * (cand.distance_m[keep] / s.probe_sigma_m) ** 2 - 0.5 * (hd / 45.0) ** 2
        has = ce[:, 0] >= 0
        # transitions between consecutive sorted pings of one vehicle within the gap limit
        dt = np.diff(t)
        link = (veh[1:] == veh[:-1]) & (dt > 0) & (dt <= s.probe_max_gap_s) & has[1:] & has[:-1]
        trans, route = self._transitions(ce, co, t, pings.lon[order], pings.lat[order], link)
        best, chain_start = _viterbi(emis, trans, link, has)
        rows = np.arange(n)
        edge = np.where(has, ce[rows, np.maximum(best, 0)], -1)
        off = np.where(has, co[rows, np.maximum(best, 0)], np.nan)
        dist = np.where(has, cd[rows, np.maximum(best, 0)], np.nan)
        prev_best = np.concatenate([[0], best[:-1]])
        rm = np.full(n, np.nan)
        inner = np.nonzero(~chain_start & has)[0]
        rm[inner] = route[inner - 1, prev_best[inner], best[inner]]
        chain = np.where(has, np.cumsum(chain_start & has) - 1, -1)
        out_edge, out_off, out_dist = np.empty(n, np.int64), np.empty(n), np.empty(n)
        out_chain, out_route = np.empty(n, np.int64), np.empty(n)
        out_edge[order], out_off[order], out_dist[order] = edge, off, dist
        out_chain[order], out_route[order] = chain, rm
        return MatchedPings(out_edge, out_off, out_dist, out_chain, out_route)

    def _transitions(self, ce: IntArray, co: FloatArray, t: FloatArray, lon: FloatArray,
                     lat: FloatArray, link: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
        """Transition log-scores and route lengths ``(n-1, k, k)`` between consecutive pings."""
        s, net, k = self.settings, self.network, self.k
        n = len(t)
        trans = np.full((max(n - 1, 0), k, k), _NEG)
        route = np.full((max(n - 1, 0), k, k), np.inf)
        i = np.nonzero(link)[0]
        if not len(i):
            return trans, route
        ea, eb = ce[i][:, :, None], ce[i + 1][:, None, :]
        oa, ob = co[i][:, :, None], co[i + 1][:, None, :]
        valid = (ea >= 0) & (eb >= 0)
        ea_s, eb_s = np.where(valid, ea, 0), np.where(valid, eb, 0)
        same = valid & (ea == eb) & (ob >= oa - 2 * s.probe_sigma_m)
        src = np.broadcast_to(net.v[ea_s], valid.shape)
        dst = np.broadcast_to(net.u[eb_s], valid.shape)
        need = valid & ~same
        limit = s.probe_max_speed_mps * s.probe_max_gap_s + 2 * s.probe_radius_m
        mid = np.full(valid.shape, np.inf)
        mid[need] = self._node_distances(src[need], dst[need], limit)
        r = np.where(same, np.maximum(ob - oa, 0.0), net.length_m[ea_s] - oa + mid + ob)
        r = np.where(valid, r, np.inf)
        gc = haversine_m(lon[i], lat[i], lon[i + 1], lat[i + 1])[:, None, None]
        ok = np.isfinite(r) & (r <= s.probe_max_speed_mps * (t[i + 1] - t[i])[:, None, None] + 2 * s.probe_radius_m)
        trans[i] = np.where(ok, -np.abs(r - gc) / self.beta_m, _NEG)
        route[i] = np.where(ok, r, np.inf)
        return trans, route

    # ------------------------------------------------------------------ speeds
    def traversals(self, pings: Pings, matched: MatchedPings) -> Traversals:
        """Edge pieces travelled in each moving interval (dwell and implausible ones excluded)."""
        s, net = self.settings, self.network
        order = np.lexsort((pings.time_s, pings.vehicle))
        ch, e, o, t, rm = (matched.chain[order], matched.edge[order], matched.offset_m[order],
                           pings.time_s[order], matched.route_m[order])
        i = np.nonzero((ch[1:] == ch[:-1]) & (ch[1:] >= 0))[0]
        dt = t[i + 1] - t[i]
        speed = rm[i + 1] / dt
        moving = (np.isfinite(speed) & (speed >= s.probe_dwell_speed_mps) & (speed <= s.probe_max_speed_mps)
                  & (dt >= s.probe_min_interval_s))
        i, dt, speed = i[moving], dt[moving], speed[moving]
        ea, eb, oa, ob = e[i], e[i + 1], o[i], o[i + 1]
        same = (ea == eb) & (ob >= oa - 2 * s.probe_sigma_m) & (rm[i + 1] <= np.maximum(ob - oa, 0) + 1e-6)
        # pieces: first edge, middle path edges, last edge
        piece_int = [np.nonzero(same)[0]]
        piece_edge = [ea[same]]
        piece_len = [np.maximum(ob[same] - oa[same], 0.0)]
        piece_seq = [np.zeros(int(same.sum()), np.int64)]
        d = np.nonzero(~same)[0]
        piece_int.append(d)
        piece_edge.append(ea[d])
        piece_len.append(np.maximum(net.length_m[ea[d]] - oa[d], 0.0))
        piece_seq.append(np.zeros(len(d), np.int64))
        pair, path_edge = self._paths(net.v[ea[d]], net.u[eb[d]])
        if len(pair):
            starts = np.concatenate([[True], pair[1:] != pair[:-1]])
            first = np.maximum.accumulate(np.where(starts, np.arange(len(pair)), 0))
            piece_int.append(d[pair])
            piece_edge.append(path_edge)
            piece_len.append(net.length_m[path_edge])
            piece_seq.append(1 + np.arange(len(pair)) - first)
        piece_int.append(d)
        piece_edge.append(eb[d])
        piece_len.append(np.maximum(ob[d], 0.0))
        piece_seq.append(np.full(len(d), 1_000_000))
        pi, pe = np.concatenate(piece_int), np.concatenate(piece_edge)
        pl, ps = np.concatenate(piece_len), np.concatenate(piece_seq)
        srt = np.lexsort((ps, pi))
        pi, pe, pl = pi[srt], pe[srt], pl[srt]
        cum = np.cumsum(pl)
        start_of = np.searchsorted(pi, pi, side="left")
        before = cum - pl - np.where(start_of > 0, cum[start_of - 1], 0.0)
        v = speed[pi]
        mid_t = t[i][pi] + (before + pl / 2) / v
        keep = pl > 0
        return Traversals(pe[keep], mid_t[keep], pl[keep], (pl / v)[keep], order[i][pi][keep])

    def observations(self, pings: Pings, bin_s: int = 300, min_covered_m: float = 20.0) -> ProbeObservations:
        """Match pings and aggregate traversals per (edge, time bin) into probe speeds."""
        trav = self.traversals(pings, self.match(pings))
        return aggregate_traversals(trav, bin_s, min_covered_m)


def aggregate_traversals(trav: Traversals, bin_s: int = 300, min_covered_m: float = 20.0) -> ProbeObservations:
    """Space-mean speed per (edge, bin): total covered length / total travel time."""
    ok = trav.covered_m >= min_covered_m
    e, t, cov, tt = trav.edge[ok], trav.time_s[ok], trav.covered_m[ok], trav.travel_s[ok]
    b = np.floor(t / bin_s).astype(np.int64)
    keys, inv = np.unique(np.column_stack([e, b]), axis=0, return_inverse=True)
    inv = inv.ravel()
    covered = np.bincount(inv, weights=cov, minlength=len(keys))
    travel = np.bincount(inv, weights=tt, minlength=len(keys))
    samples = np.bincount(inv, minlength=len(keys)).astype(np.int64)
    return ProbeObservations(
        edge=keys[:, 0].astype(np.int64), time_s=(keys[:, 1] * bin_s).astype(np.float64), bin_s=bin_s,
        speed_mps=covered / np.maximum(travel, 1e-9), samples=samples, covered_m=covered.astype(np.float64),
    )


def _viterbi(emis: FloatArray, trans: FloatArray, link: npt.NDArray[np.bool_],
             has: npt.NDArray[np.bool_]) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Best candidate per ping; chains restart where no transition is possible.

    Vectorised across trajectories: one loop iteration per position within a run.
    Returns (best candidate index, chain-start flag) per ping (sorted order).
    """
    n, k = emis.shape
    best = np.zeros(n, dtype=np.int64)
    chain_start = np.ones(n, dtype=bool)
    if n == 0:
        return best, chain_start
    run_start = np.concatenate([[True], ~link])
    starts = np.nonzero(run_start)[0]
    lengths = np.diff(np.concatenate([starts, [n]]))
    score = emis.copy()
    back = np.full((n, k), -1, dtype=np.int64)
    for step in range(1, int(lengths.max())):
        idx = starts[lengths > step] + step
        cand = score[idx - 1][:, :, None] + trans[idx - 1]
        arg = cand.argmax(axis=1)
        val = np.take_along_axis(cand, arg[:, None, :], axis=1)[:, 0, :]
        broken = val.max(axis=1) <= _NEG / 2
        score[idx] = np.where(broken[:, None], emis[idx], val + emis[idx])
        back[idx] = np.where(broken[:, None], -1, arg)
        chain_start[idx] = broken
    # backtrack from each run end, vectorised over runs
    ends = starts + lengths - 1
    cur = ends.copy()
    choice = score[cur].argmax(axis=1)
    active = np.ones(len(starts), dtype=bool)
    while active.any():
        a = np.nonzero(active)[0]
        best[cur[a]] = choice[a]
        prev_choice = back[cur[a], choice[a]]
        at_start = cur[a] == starts[a]
        restart = (prev_choice < 0) & ~at_start
        nxt = cur[a] - 1
        # a broken chain inside a run: restart from the best score of the earlier ping
        new_choice = np.where(restart, score[np.maximum(nxt, 0)].argmax(axis=1), prev_choice)
        cur[a] = nxt
        choice[a] = new_choice
        active[a[at_start]] = False
    best = np.where(has, best, -1)
    return best, chain_start

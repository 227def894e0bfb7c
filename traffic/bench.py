"""``its bench congestion``: full-network update time and routing latency on >= 100k edges.

The network is a synthetic grid (:func:`maps.synthetic.grid_network`) plus, when the file
exists, the Helsinki OSM extract, joined as one :class:`RoadNetwork` (two components).
Evidence: probe observations on 5% of the edges (speeds drawn from 30-100% of free
flow, seeded). ``update_ms`` is the median wall time of :meth:`CongestionEstimator.update`
after a fresh batch of observations; ``route_p99_ms`` the 99th percentile of
:meth:`maps.routing.Router.route` between random node pairs of one component (drawn in proportion to its size), with the
weights of the last estimate (set once, no per-request graph rebuild).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from maps.network import RoadNetwork
from maps.routing import NoRouteError, Router
from maps.synthetic import grid_network
from traffic.congestion import CongestionEstimator
from traffic.edge_graph import line_graph_similarity

__all__ = ["default_osm_path", "join_networks", "run_congestion_bench"]


def default_osm_path() -> Path:
    """The shared Helsinki extract (``ITS_SHARED_DATA``, default ``../shared/data``)."""
    root = Path(os.environ.get("ITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return root / "osm" / "Helsinki.osm.pbf"


def join_networks(name: str, parts: list[RoadNetwork]) -> RoadNetwork:
    """One network holding disjoint copies of ``parts`` (node and edge indices shifted)."""
    node_shift = np.cumsum([0] + [p.n_nodes for p in parts[:-1]])
    coord_shift = np.cumsum([0] + [len(p.coords) for p in parts[:-1]])

    def cat(attr: str) -> Any:
        return np.concatenate([getattr(p, attr) for p in parts])

    net = RoadNetwork(
        name=name, node_lon=cat("node_lon"), node_lat=cat("node_lat"), node_source_id=cat("node_source_id"),
        u=np.concatenate([p.u + s for p, s in zip(parts, node_shift, strict=True)]),
        v=np.concatenate([p.v + s for p, s in zip(parts, node_shift, strict=True)]),
        length_m=cat("length_m"), road_class=cat("road_class"), lanes=cat("lanes"), oneway=cat("oneway"),
        freeflow_mps=cat("freeflow_mps"), capacity_vph=cat("capacity_vph"), way_id=cat("way_id"),
        street_name=cat("street_name"), coords=cat("coords"),
        geom_offsets=np.concatenate([[0]] + [p.geom_offsets[1:] + s for p, s in zip(parts, coord_shift, strict=True)]),
        source=" + ".join(p.source for p in parts),
    )
    net.validate()
    return net


def run_congestion_bench(grid_side: int = 159, osm_path: Path | None = None, n_routes: int = 200,
                         n_updates: int = 5, seed: int = 0) -> dict[str, Any]:
    """Build the network, time estimate updates and routing queries; return the figures."""
    rng = np.random.default_rng(seed)
    parts = [grid_network(grid_side, grid_side, spacing_m=100.0)]
    osm = osm_path if osm_path is not None else default_osm_path()
    if osm.is_file():
        from maps.osm import import_osm

        parts.append(import_osm(osm))
    net = join_networks("bench", parts) if len(parts) > 1 else parts[0]
    estimator = CongestionEstimator(line_graph_similarity(net), net.freeflow_mps, length_m=net.length_m)
    times = []
    now = 1_700_000_000.0
    for _ in range(n_updates):
        now += 60.0
        e = rng.choice(net.n_edges, size=net.n_edges // 20, replace=False)
        estimator.observe(e, now, net.freeflow_mps[e] * rng.uniform(0.3, 1.0, len(e)))
        t0 = time.perf_counter()
        state = estimator.update(now)
        times.append(time.perf_counter() - t0)
    router = Router(net, weights=state.travel_time_s)
    router.snapper  # noqa: B018 - build the spatial index outside the timed loop
    lat_ms = []
    part_of_node = np.repeat(np.arange(len(parts)), [p.n_nodes for p in parts])
    done = 0
    while done < n_routes:
        a = int(rng.integers(net.n_nodes))  # parts drawn in proportion to their size
        b = int(rng.choice(np.nonzero(part_of_node == part_of_node[a])[0]))
        t0 = time.perf_counter()
        with contextlib.suppress(NoRouteError):
            router.route((net.node_lon[a], net.node_lat[a]), (net.node_lon[b], net.node_lat[b]))
        lat_ms.append(1000 * (time.perf_counter() - t0))
        done += 1
    return {
        "edges": int(net.n_edges), "update_ms": round(1000 * float(np.median(times)), 2),
        "updates": n_updates, "solver_iterations": estimator.last_iterations,
        "route_p99_ms": round(float(np.percentile(lat_ms, 99)), 2),
        "route_p50_ms": round(float(np.percentile(lat_ms, 50)), 2), "routes": len(lat_ms),
    }

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from maps.network import RoadNetwork
from maps.routing import NoRouteError, Router
from maps.synthetic import grid_network


@pytest.fixture(scope="module")
def congested(helsinki: RoadNetwork) -> np.ndarray:
    rng = np.random.default_rng(0)
    return helsinki.freeflow_time_s * rng.uniform(1.0, 4.0, helsinki.n_edges)


def test_node_routes_equal_networkx(helsinki: RoadNetwork, congested: np.ndarray) -> None:
    router = Router(helsinki)
    g = helsinki.to_networkx({"w": congested})
    rng = np.random.default_rng(3)
    checked = 0
    for s, t in rng.integers(0, helsinki.n_nodes, (150, 2)).tolist():
        if not nx.has_path(g, s, t):
            with pytest.raises(NoRouteError):
                router.route_nodes(s, t, weights=congested)
            continue
        route = router.route_nodes(s, t, weights=congested)
        assert route.time_s == pytest.approx(nx.shortest_path_length(g, s, t, weight="w"), abs=1e-6)
        e = route.edges
        if s != t:
            assert helsinki.u[e[0]] == s and helsinki.v[e[-1]] == t
            assert (helsinki.v[e[:-1]] == helsinki.u[e[1:]]).all()
        assert route.length_m == pytest.approx(helsinki.length_m[e].sum())
        assert route.freeflow_time_s <= route.time_s + 1e-9
        checked += 1
    assert checked > 100


def test_set_weights_changes_routes_without_rebuild() -> None:
    g = grid_network(5, 5)
    router = Router(g)
    structure = router._indices
    base = router.route_nodes(0, 24)
    slow = g.freeflow_time_s.copy()
    slow[base.edges] *= 50
    router.set_weights(slow)
    assert router._indices is structure
    detour = router.route_nodes(0, 24)
    assert not np.array_equal(detour.edges, base.edges)
    assert detour.time_s < base.time_s * 50
    closed = g.freeflow_time_s.copy()
    closed[g.u == 0] = np.inf  # every edge out of the corner is closed
    with pytest.raises(NoRouteError):
        router.route_nodes(0, 24, weights=closed)


def test_point_routes_match_networkx(helsinki: RoadNetwork, congested: np.ndarray) -> None:
    router = Router(helsinki, weights=congested)
    g = helsinki.to_networkx({"w": congested})
    rng = np.random.default_rng(4)
    w, s, e, n = helsinki.bbox
    found = 0
    for _ in range(40):
        o = (float(rng.uniform(w, e)), float(rng.uniform(s, n)))
        d = (float(rng.uniform(w, e)), float(rng.uniform(s, n)))
        snap = router.snapper.nearest([o[0], d[0]], [o[1], d[1]])
        try:
            route = router.route(o, d)
        except NoRouteError:
            continue
        found += 1
        # reference: networkx between the snapped edges, both directions of two-way streets
        best = np.inf
        starts = [(int(snap.edge[0]), float(snap.fraction[0]))]
        stops = [(int(snap.edge[1]), float(snap.fraction[1]))]
        for lst in (starts, stops):
            r = int(helsinki.reverse_edge[lst[0][0]])
            if r >= 0:
                lst.append((r, 1 - lst[0][1]))
        for e0, f0 in starts:
            for e1, f1 in stops:
                if e0 == e1 and f1 >= f0:
                    best = min(best, (f1 - f0) * congested[e0])
                    continue
                try:
                    mid = nx.shortest_path_length(g, int(helsinki.v[e0]), int(helsinki.u[e1]), weight="w")
                except nx.NetworkXNoPath:
                    continue
                best = min(best, (1 - f0) * congested[e0] + mid + f1 * congested[e1])
        assert route.time_s == pytest.approx(best, rel=1e-9, abs=1e-6)
        assert route.edges[0] in [x for x, _ in starts] and route.edges[-1] in [x for x, _ in stops]
        assert (helsinki.v[route.edges[:-1]] == helsinki.u[route.edges[1:]]).all()
        assert 0 < route.length_m < helsinki.length_m[route.edges].sum() + 1e-6
    assert found >= 30


def test_point_too_far(helsinki: RoadNetwork) -> None:
    with pytest.raises(NoRouteError, match="origin"):
        Router(helsinki).route((26.0, 61.0), (24.945, 60.17), max_snap_m=200)


def test_same_edge_route() -> None:
    g = grid_network(2, 3, spacing_m=100)
    router = Router(g)
    e = int(np.nonzero((g.u == 0) & (g.v == 1))[0][0])
    a = g.coords[g.geom_offsets[e]]
    b = g.coords[g.geom_offsets[e] + 1]
    o = tuple(a + 0.2 * (b - a))
    d = tuple(a + 0.7 * (b - a))
    route = router.route((float(o[0]), float(o[1])), (float(d[0]), float(d[1])))
    assert route.edges.tolist() == [e]
    assert route.length_m == pytest.approx(0.5 * g.length_m[e], rel=1e-3)


def test_limit_bounds_the_search(helsinki: RoadNetwork) -> None:
    router = Router(helsinki)
    scc = np.nonzero(helsinki.strongly_connected_edges())[0]
    a, b = helsinki.u[scc[0]], helsinki.u[scc[len(scc) // 2]]
    o = (float(helsinki.node_lon[a]), float(helsinki.node_lat[a]))
    d = (float(helsinki.node_lon[b]), float(helsinki.node_lat[b]))
    full = router.route(o, d)
    assert full.time_s > 30
    assert router.route(o, d, limit_s=full.time_s * 1.01).time_s == pytest.approx(full.time_s)
    with pytest.raises(NoRouteError):
        router.route(o, d, limit_s=full.time_s * 0.5)
    last = full.edges[-1]
    first_node = int(helsinki.v[full.edges[0]])
    exact = router.route_nodes(first_node, int(helsinki.u[last]))
    with pytest.raises(NoRouteError, match="within"):
        router.route_nodes(first_node, int(helsinki.u[last]), limit_s=exact.time_s * 0.5)

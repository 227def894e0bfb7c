from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maps.network import RoadNetwork
from maps.synthetic import grid_network

ARRAYS = ("node_lon", "node_lat", "node_source_id", "u", "v", "length_m", "road_class", "lanes",
          "oneway", "freeflow_mps", "capacity_vph", "way_id", "street_name", "coords", "geom_offsets")


def test_save_load_round_trip(helsinki: RoadNetwork, tmp_path: Path) -> None:
    path = helsinki.save(tmp_path / "cache" / "helsinki.npz")
    back = RoadNetwork.load(path)
    assert back.name == helsinki.name and back.source == helsinki.source
    for attr in ARRAYS:
        np.testing.assert_array_equal(getattr(back, attr), getattr(helsinki, attr), err_msg=attr)


def test_load_rejects_other_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", meta=np.array('{"format": 99}'))
    with pytest.raises(ValueError, match="format"):
        RoadNetwork.load(tmp_path / "x.npz")


def test_validate_names_the_problem(helsinki: RoadNetwork) -> None:
    with pytest.raises(ValueError, match="length_m"):
        RoadNetwork(**{**{a: getattr(helsinki, a) for a in ARRAYS}, "length_m": helsinki.length_m[:-1],
                       "name": "x"}).validate()


def test_node_adjacency_keeps_cheapest_parallel_edge() -> None:
    # two parallel edges 0→1 (different geometry), one edge 1→0
    net = RoadNetwork.from_edges(
        "t", [0.0, 0.001], [0.0, 0.0], [0, 0, 1], [1, 1, 0],
        np.array([[0, 0], [0.001, 0], [0, 0], [0.0005, 0.0005], [0.001, 0], [0.001, 0], [0, 0]], dtype=float),
        [0, 2, 5, 7], "residential",
    )
    assert net.length_m[1] > net.length_m[0]
    m, entry = net.node_adjacency(np.array([5.0, 3.0, 1.0]))
    assert m[0, 1] == 3.0 and m[1, 0] == 1.0
    assert sorted(entry.tolist()) == [1, 2]
    assert net.edge_index[(0, 1)] == 0  # shortest by length
    assert net.reverse_edge.tolist() == [2, 2, 0]
    assert net.oneway.tolist() == [False, False, False]
    m2, _ = net.node_adjacency(np.array([5.0, np.inf, 1.0]))
    assert m2[0, 1] == 5.0
    with pytest.raises(ValueError, match="shape"):
        net.node_adjacency(np.ones(2))


def test_line_graph_excludes_u_turns() -> None:
    g = grid_network(2, 3)
    lg = g.line_graph
    for i in range(g.n_edges):
        succ = set(lg[i].indices.tolist())
        expected = {j for j in range(g.n_edges) if g.u[j] == g.v[i] and g.v[j] != g.u[i]}
        assert succ == expected


def test_networkx_view_and_subset(helsinki: RoadNetwork) -> None:
    g = helsinki.to_networkx({"tt": helsinki.freeflow_time_s})
    assert g.number_of_nodes() == helsinki.n_nodes and g.number_of_edges() == helsinki.n_edges
    e = 17
    data = g.edges[int(helsinki.u[e]), int(helsinki.v[e]), e]
    assert data["tt"] == pytest.approx(helsinki.freeflow_time_s[e])
    mask = helsinki.strongly_connected_edges()
    sub = helsinki.subset(mask)
    assert sub.n_edges == int(mask.sum())
    assert sub.strongly_connected_edges().all()
    np.testing.assert_allclose(sub.length_m, helsinki.length_m[mask])
    np.testing.assert_allclose(sub.geometries[0].length, helsinki.geometries[np.nonzero(mask)[0][0]].length)


def test_edge_bounds_and_projection(helsinki: RoadNetwork) -> None:
    b = helsinki.edge_bounds
    assert b.shape == (helsinki.n_edges, 4)
    assert (b[:, 0] <= b[:, 2]).all() and (b[:, 1] <= b[:, 3]).all()
    lengths = np.array([geom.length for geom in helsinki.geometries_xy])
    np.testing.assert_allclose(lengths, helsinki.length_m, rtol=1e-3)


def test_concat_is_disjoint_union(helsinki: RoadNetwork) -> None:
    grid = grid_network(3, 3)
    both = RoadNetwork.concat([grid, helsinki], "both")
    assert both.n_edges == grid.n_edges + helsinki.n_edges
    assert both.n_nodes == grid.n_nodes + helsinki.n_nodes
    e = grid.n_edges + 5
    np.testing.assert_array_equal(both.coords[both.geom_offsets[e]:both.geom_offsets[e + 1]],
                                  helsinki.coords[helsinki.geom_offsets[5]:helsinki.geom_offsets[6]])
    assert both.u[e] == helsinki.u[5] + grid.n_nodes
    np.testing.assert_allclose(both.length_m[grid.n_edges:], helsinki.length_m)

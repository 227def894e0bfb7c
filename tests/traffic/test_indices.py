"""Travel time index and incident candidates on the real Helsinki graph."""

from __future__ import annotations

import numpy as np

from maps.network import RoadNetwork
from traffic.congestion import CongestionEstimator, SpeedProfile
from traffic.edge_graph import line_graph_similarity
from traffic.indices import area_ids, corridor_ids, incident_candidates, travel_time_index


def test_tti_is_one_at_free_flow_and_tracks_slow_areas(helsinki: RoadNetwork) -> None:
    net = helsinki
    est = CongestionEstimator(line_graph_similarity(net), net.freeflow_mps, length_m=net.length_m)
    state = est.update(0.0)
    areas = area_ids(net, 500.0)
    free = travel_time_index(state, net.length_m, areas)
    np.testing.assert_allclose(free.tti, 1.0)
    assert free.edges.sum() == net.n_edges and len(free.group) > 4
    slow_area = free.group[np.argmax(free.edges)]
    state.speed_mps = np.where(areas == slow_area, state.speed_mps / 2, state.speed_mps)
    idx = travel_time_index(state, net.length_m, areas)
    np.testing.assert_allclose(idx.tti[idx.group == slow_area], 2.0)
    np.testing.assert_allclose(idx.tti[idx.group != slow_area], 1.0)


def test_a_street_far_below_its_usual_speed_is_an_incident(helsinki: RoadNetwork) -> None:
    net = helsinki
    cid, names = corridor_ids(net)
    length = np.bincount(cid[cid >= 0], weights=net.length_m[cid >= 0], minlength=len(names))
    street = int(np.argmax(length))
    edges = np.nonzero(cid == street)[0]
    usual = np.tile(0.8 * net.freeflow_mps, (96, 1))
    est = CongestionEstimator(line_graph_similarity(net), net.freeflow_mps, SpeedProfile(usual, 900),
                              length_m=net.length_m)
    t = 1_700_000_000.0
    est.observe(edges, t, 0.15 * usual[0, edges], weight=3.0)
    other = np.setdiff1d(np.arange(net.n_edges), edges)[:200]
    est.observe(other, t, usual[0, other], weight=3.0)  # observed at their usual speed
    state = est.update(t)
    found = incident_candidates(net, state, corridors=(cid, names))
    corridor = [i for i in found if i.kind == "corridor"]
    assert [i.subject for i in corridor] == [f"{net.name}:{names[street]}"]
    assert corridor[0].ratio < 0.3
    edge_hits = {i.edges[0] for i in found if i.kind == "edge"}
    assert edge_hits <= set(edges.tolist()) and len(edge_hits) >= 0.9 * min(len(edges), 200)
    assert not edge_hits & set(other.tolist())

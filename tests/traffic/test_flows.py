"""Camera flows: line attachment on the real Helsinki graph, counts → flow → v/c → BPR."""

from __future__ import annotations

import numpy as np
import pytest

from maps.network import RoadNetwork
from maps.spatial import EdgeSnapper
from traffic.config import TrafficSettings
from traffic.congestion import CongestionEstimator
from traffic.edge_graph import line_graph_similarity
from traffic.flows import attach_lines, bpr_speed, flow_observations


def test_bpr_speed_is_the_volume_delay_function() -> None:
    v = bpr_speed([20.0, 20.0, 20.0, 20.0], [0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(v, 20.0 / (1 + 0.15 * np.array([0.0, 0.5, 1.0, 2.0]) ** 4))
    assert (np.diff(v) < 0).all() or v[0] == v[1]
    assert bpr_speed([10.0], [-1.0])[0] == 10.0  # negative ratios clip to 0


def _two_way_edge(net: RoadNetwork) -> int:
    cand = np.nonzero((net.reverse_edge >= 0) & (net.length_m > 60))[0]
    return int(cand[np.argmax(net.length_m[cand])])


def test_lines_attach_to_the_edge_of_their_heading(helsinki: RoadNetwork) -> None:
    net = helsinki
    e = _two_way_edge(net)
    snapper = EdgeSnapper(net)
    mid = net.geometries_xy[e].interpolate(0.5, normalized=True)
    lon, lat = net.projector.to_lonlat(np.array([mid.x]), np.array([mid.y]))
    c = snapper.candidates(lon, lat, 1.0)
    bearing = float(c.bearing_deg[c.edge == e][0])
    links = attach_lines(net, snapper, ["cam", "cam"], ["a", "b"], np.r_[lon, lon], np.r_[lat, lat],
                         [bearing, (bearing + 180) % 360])
    got = dict(zip(zip(links.line_id, links.direction, strict=True), links.edge.tolist(), strict=True))
    assert got[("a", "in")] == e and got[("a", "out")] == net.reverse_edge[e]
    assert got[("b", "in")] == net.reverse_edge[e] and got[("b", "out")] == e
    assert links.lookup(["cam", "cam", "zzz"], ["a", "b", "a"], ["in", "out", "in"]).tolist() == [e, e, -1]
    far = attach_lines(net, snapper, ["x"], ["l"], [0.0], [0.0], [0.0])
    assert (far.edge == -1).all()


def test_counts_become_flow_vc_and_bpr_speed_evidence(helsinki: RoadNetwork) -> None:
    net = helsinki
    e = _two_way_edge(net)
    cap = net.capacity_vph[e]
    count = cap / 12  # one 5-minute interval at exactly capacity
    flows = flow_observations(net, [e, e, -1], [0.0, 300.0, 0.0], [300, 300, 300], [count, count / 2, 5],
                              [np.nan, 3.0, np.nan])
    assert len(flows.edge) == 2  # the unattached line is dropped
    np.testing.assert_allclose(flows.flow_vph, [cap, cap / 2])
    np.testing.assert_allclose(flows.vc_ratio, [1.0, 0.5])
    assert flows.speed_mps[0] == pytest.approx(net.freeflow_mps[e] / 1.15)
    assert flows.speed_mps[1] == 3.0  # the camera's own mean speed wins over BPR
    np.testing.assert_allclose(flows.time_s, [150.0, 450.0])
    # through the estimator: the jammed camera edge and its neighbours slow down, tagged `flow`
    est = CongestionEstimator(line_graph_similarity(net), net.freeflow_mps, length_m=net.length_m)
    est.observe(flows.edge[1:], flows.time_s[1:], flows.speed_mps[1:], weight=2.0, source="flow")
    state = est.update(450.0)
    assert abs(state.speed_mps[e] - 3.0) < 0.5
    assert state.source_mix[e, 1] > 0.9
    nbrs = net.line_graph[e].indices
    assert (state.speed_mps[nbrs] < net.freeflow_mps[nbrs]).all()
    assert TrafficSettings().bpr_beta == 4.0

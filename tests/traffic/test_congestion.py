"""The estimator core on synthetic graphs (exact properties) and on real Los-loop speeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from traffic.config import TrafficSettings
from traffic.congestion import (
    LEVELS,
    CongestionEstimator,
    SpeedProfile,
    classify_levels,
    symmetric_adjacency,
)
from traffic.evaluate import evaluate_congestion, split_by_days
from traffic.segment_graph import read_segment_graph, read_speeds


def chain(n: int) -> sp.csr_matrix:
    i = np.arange(n - 1)
    return symmetric_adjacency(i, i + 1, np.ones(n - 1), n)


def test_levels_follow_configured_thresholds() -> None:
    codes = classify_levels([1.0, 0.75, 0.74, 0.5, 0.3, 0.1])
    assert [LEVELS[c] for c in codes] == ["free", "free", "moderate", "moderate", "heavy", "jammed"]
    strict = TrafficSettings(level_free_ratio=0.9, level_moderate_ratio=0.6, level_heavy_ratio=0.3)
    assert LEVELS[classify_levels([0.8], strict)[0]] == "moderate"
    with pytest.raises(ValueError, match="decrease"):
        classify_levels([0.5], TrafficSettings(level_free_ratio=0.4))


def test_symmetric_adjacency_keeps_max_and_drops_loops() -> None:
    m = symmetric_adjacency([0, 1, 2], [1, 0, 2], [0.2, 0.6, 1.0], 3).toarray()
    assert m[0, 1] == m[1, 0] == 0.6
    assert m[2, 2] == 0


def test_no_evidence_gives_profile_and_zero_confidence() -> None:
    ff = np.full(5, 20.0)
    prof = SpeedProfile(np.tile(np.array([18.0, 17, 16, 15, 14]), (96, 1)), 900)
    state = CongestionEstimator(chain(5), ff, prof, length_m=np.full(5, 100.0)).update(1_000.0)
    np.testing.assert_allclose(state.speed_mps, [18, 17, 16, 15, 14])
    np.testing.assert_allclose(state.confidence, 0, atol=1e-9)
    np.testing.assert_allclose(state.source_mix[:, 3], 1, atol=1e-6)
    np.testing.assert_allclose(state.travel_time_s, 100 / np.array([18, 17, 16, 15, 14]))


def test_observation_propagates_and_decays_with_graph_distance() -> None:
    n = 30
    est = CongestionEstimator(chain(n), np.full(n, 20.0))
    est.observe([0], 0.0, [4.0], weight=1.0)
    state = est.update(0.0)
    assert state.speed_mps[0] < 4.5  # own evidence dominates
    assert state.level[0] == LEVELS.index("jammed")
    drop = 20.0 - state.speed_mps
    assert (np.diff(drop) <= 1e-9).all() and drop[1] > 1.0 and drop[-1] < drop[1]
    # source mix: edge 0 is mostly its own probe, edge 1 mostly propagated
    assert state.source_mix[0, 0] > 0.9
    assert state.source_mix[1, 2] > state.source_mix[1, 0]
    np.testing.assert_allclose(state.source_mix.sum(axis=1), 1, atol=1e-5)
    assert (np.diff(state.confidence) <= 1e-9).all()


def test_median_memory_rejects_a_single_outlier_and_old_evidence_fades() -> None:
    est = CongestionEstimator(chain(3), np.full(3, 30.0), settings=TrafficSettings(memory=3, max_age_s=600))
    est.observe([1, 1, 1], [0.0, 60.0, 120.0], [20.0, 2.0, 21.0])
    assert abs(est.update(120.0).speed_mps[1] - 20.0) < 1.0
    later = est.update(10_000.0)  # all observations older than max_age_s
    np.testing.assert_allclose(later.speed_mps, 30.0, atol=1e-6)


def test_batch_with_more_observations_than_memory_keeps_the_newest() -> None:
    est = CongestionEstimator(chain(2), np.full(2, 30.0), settings=TrafficSettings(memory=2))
    est.observe([0] * 5 + [1], [0, 1, 2, 3, 4, 4], [1, 2, 3, 10, 12, 25.0])
    level, c, _ = est.own_evidence(4.0)
    assert level[0] == pytest.approx(11.0) and level[1] == pytest.approx(25.0)
    assert c[0] > 0.99


def test_flows_share_reported_as_flow_source() -> None:
    est = CongestionEstimator(chain(3), np.full(3, 30.0))
    est.observe([2], 0.0, [10.0], source="flow")
    state = est.update(0.0)
    assert state.source_mix[2, 1] > 0.9 and state.source_mix[2, 0] == 0
    with pytest.raises(ValueError):
        est.observe([0], 0.0, [1.0], source="radar")


@pytest.mark.eval
@pytest.mark.parametrize("model", [
    "linear",  # the CI's representative run (seconds)
    pytest.param("boosted", marks=pytest.mark.slow),  # the default model: minutes of LightGBM fits
])
def test_estimator_beats_baselines_on_a_real_losloop_subset(real_losloop: Path, model: str) -> None:
    """Half of the first 100 Los-loop sensors hidden per 5-min step over the whole of day 4."""
    losloop = real_losloop
    graph = read_segment_graph(losloop / "segments.csv", losloop / "adjacency.csv")
    table = read_speeds(losloop / "speeds.csv", graph.segment_id)
    keep = np.arange(100)
    sub = type(graph)(graph.segment_id[keep], graph.lat[keep], graph.lon[keep],
                      graph.adjacency[keep][:, keep].tocsr())
    table = type(table)(table.time_s, table.utc_offset_s, table.speed_kmh[:, keep])
    train, test = split_by_days(table, 3)
    result = evaluate_congestion(sub, train, test, observed_frac=0.5, seed=3, model=model)
    assert result.timestamps == 288 and result.hidden == 288 * 50
    assert result.mae_kmh < 0.75 * result.historical_mae_kmh
    assert result.mae_kmh < 0.75 * result.free_flow_mae_kmh

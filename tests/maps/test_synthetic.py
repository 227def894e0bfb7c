from __future__ import annotations

import numpy as np
import pytest

from maps.synthetic import grid_network


def test_grid_counts_and_attributes() -> None:
    g = grid_network(4, 5, spacing_m=200)
    assert g.n_nodes == 20
    assert g.n_edges == 2 * (4 * 4 + 3 * 5)
    np.testing.assert_allclose(g.length_m, 200, rtol=5e-3)
    assert (g.reverse_edge >= 0).all() and not g.oneway.any()
    assert set(np.unique(g.road_class)) == {"primary", "residential"}
    assert g.strongly_connected_edges().all()


def test_grid_benchmark_size() -> None:
    g = grid_network(159, 159)
    assert g.n_edges >= 100_000


def test_grid_rejects_degenerate() -> None:
    with pytest.raises(ValueError):
        grid_network(1, 1)

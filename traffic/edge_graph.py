"""Similarity of road edges for propagating speed deviations (the weighted line graph).

Two edges are neighbours when one can follow the other (U-turns excluded, see
:attr:`maps.network.RoadNetwork.line_graph`). The weight is
``class_factor * exp(-(len_i + len_j) / (2 * neighbour_scale_m))`` with ``class_factor``
1 for the same road class and ``class_similarity`` otherwise: traffic on a primary road
says little about the residential street turning off it, and long edges are less alike
at their far ends.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from maps.network import RoadNetwork
from traffic.config import TrafficSettings
from traffic.congestion import symmetric_adjacency

__all__ = ["line_graph_similarity"]


def line_graph_similarity(network: RoadNetwork, settings: TrafficSettings | None = None) -> sp.csr_matrix:
    """Symmetric ``(n_edges, n_edges)`` similarity matrix of consecutive edges (0..1)."""
    s = settings or TrafficSettings()
    succ = network.line_graph.tocoo()
    i, j = succ.row.astype(np.int64), succ.col.astype(np.int64)
    _, cls_code = np.unique(network.road_class, return_inverse=True)
    same = cls_code[i] == cls_code[j]
    factor = np.where(same, 1.0, s.class_similarity)
    dist = 0.5 * (network.length_m[i] + network.length_m[j])
    w = factor * np.exp(-dist / s.neighbour_scale_m)
    return symmetric_adjacency(i, j, np.maximum(w, 1e-6), network.n_edges)

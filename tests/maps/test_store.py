from __future__ import annotations

import numpy as np
import pytest

from its.db import Database
from maps.network import RoadNetwork
from maps.store import NetworkNotFoundError, list_networks, load_network, save_network

ARRAYS = ("node_lon", "node_lat", "node_source_id", "u", "v", "length_m", "road_class", "lanes",
          "oneway", "freeflow_mps", "capacity_vph", "way_id", "street_name", "coords", "geom_offsets")


def test_round_trip_in_database(db: Database, helsinki: RoadNetwork) -> None:
    assert save_network(db, helsinki) == helsinki.n_edges
    assert list_networks(db) == [(helsinki.name, helsinki.source, helsinki.n_nodes, helsinki.n_edges)]
    back = load_network(db, helsinki.name)
    for attr in ARRAYS:
        np.testing.assert_array_equal(getattr(back, attr), getattr(helsinki, attr), err_msg=attr)
    # replacing a network rewrites it whole
    sub = helsinki.subset(helsinki.road_class == "primary")
    assert save_network(db, sub) == sub.n_edges
    assert db.fetchall("SELECT count(*) FROM road_edges WHERE network = %s", (helsinki.name,)) == [(sub.n_edges,)]
    assert db.fetchall("SELECT count(*) FROM road_nodes") == [(sub.n_nodes,)]
    assert load_network(db, helsinki.name).n_edges == sub.n_edges


def test_missing_network(db: Database) -> None:
    with pytest.raises(NetworkNotFoundError, match="nowhere"):
        load_network(db, "nowhere")


def test_round_trip_without_way_ids(db: Database) -> None:
    from maps.synthetic import grid_network

    grid = grid_network(3, 4, name="grid")
    save_network(db, grid)
    assert db.fetchall("SELECT count(*) FROM road_edges WHERE way_id IS NULL") == [(grid.n_edges,)]
    back = load_network(db, "grid")
    for attr in ARRAYS:
        np.testing.assert_array_equal(getattr(back, attr), getattr(grid, attr), err_msg=attr)

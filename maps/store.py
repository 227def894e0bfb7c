"""Road networks in PostgreSQL (``road_networks``, ``road_nodes``, ``road_edges``).

Writes go through :func:`its.db.copy_rows` (COPY); a network is replaced as a whole
inside one transaction, so readers never see half a network.
"""

from __future__ import annotations

import numpy as np
import shapely

from its.db import Database, copy_rows
from maps.network import RoadNetwork

__all__ = ["NetworkNotFoundError", "list_networks", "load_network", "load_stored_network", "save_network"]

_EDGE_COLUMNS = (
    "network", "edge", "u", "v", "way_id", "road_class", "name", "lanes", "oneway",
    "length_m", "freeflow_mps", "capacity_vph", "geometry_wkt",
)


class NetworkNotFoundError(LookupError):
    """No network of that name is stored."""


def save_network(db: Database, network: RoadNetwork) -> int:
    """Store (or replace) a network; return the number of edges written."""
    name = network.name
    wkt = shapely.to_wkt(network.geometries, rounding_precision=-1, trim=True)
    way = np.where(network.way_id >= 0, network.way_id, -1).tolist()
    edge_rows = zip(
        [name] * network.n_edges, range(network.n_edges), network.u.tolist(), network.v.tolist(),
        [w if w >= 0 else None for w in way], network.road_class.tolist(), network.street_name.tolist(),
        network.lanes.tolist(), network.oneway.tolist(), network.length_m.tolist(),
        network.freeflow_mps.tolist(), network.capacity_vph.tolist(), wkt.tolist(), strict=True,
    )
    node_rows = zip(
        [name] * network.n_nodes, range(network.n_nodes), network.node_source_id.tolist(),
        network.node_lon.tolist(), network.node_lat.tolist(), strict=True,
    )
    with db.connection() as conn:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM road_networks WHERE name = %s", (name,))
            cur.execute(
                "INSERT INTO road_networks (name, source, n_nodes, n_edges) VALUES (%s, %s, %s, %s)",
                (name, network.source, network.n_nodes, network.n_edges),
            )
        copy_rows(conn, "road_nodes", ("network", "node", "source_id", "lon", "lat"), node_rows)
        return copy_rows(conn, "road_edges", _EDGE_COLUMNS, edge_rows)


def list_networks(db: Database) -> list[tuple[str, str, int, int]]:
    """Stored networks as (name, source, n_nodes, n_edges)."""
    rows = db.fetchall("SELECT name, source, n_nodes, n_edges FROM road_networks ORDER BY name")
    return [(str(a), str(b), int(c), int(d)) for a, b, c, d in rows]


def load_network(db: Database, name: str) -> RoadNetwork:
    """Read a stored network back into a :class:`RoadNetwork` (same indices and arrays)."""
    meta = db.fetchall("SELECT source, n_nodes, n_edges FROM road_networks WHERE name = %s", (name,))
    if not meta:
        raise NetworkNotFoundError(f"no road network named {name!r} is stored")
    source, n_nodes, n_edges = meta[0]
    nodes = db.fetchall("SELECT source_id, lon, lat FROM road_nodes WHERE network = %s ORDER BY node", (name,))
    edges = db.fetchall(
        "SELECT u, v, coalesce(way_id, -1), road_class, name, lanes, oneway, length_m, freeflow_mps,"
        " capacity_vph, geometry_wkt FROM road_edges WHERE network = %s ORDER BY edge",
        (name,),
    )
    if len(nodes) != n_nodes or len(edges) != n_edges:
        raise ValueError(f"road network {name!r} is incomplete: {len(nodes)}/{n_nodes} nodes, {len(edges)}/{n_edges} edges")
    cols = list(zip(*edges, strict=True)) if edges else [()] * 11
    geoms = shapely.from_wkt(np.asarray(cols[10], dtype=object))
    coords, line = shapely.get_coordinates(geoms, return_index=True)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(line, minlength=n_edges))]).astype(np.int64)
    node_cols = list(zip(*nodes, strict=True)) if nodes else [()] * 3
    net = RoadNetwork(
        name=name, source=str(source),
        node_lon=np.asarray(node_cols[1], dtype=np.float64), node_lat=np.asarray(node_cols[2], dtype=np.float64),
        node_source_id=np.asarray(node_cols[0], dtype=np.int64),
        u=np.asarray(cols[0], dtype=np.int64), v=np.asarray(cols[1], dtype=np.int64),
        way_id=np.asarray(cols[2], dtype=np.int64), road_class=np.asarray(cols[3], dtype=str),
        street_name=np.asarray(cols[4], dtype=str), lanes=np.asarray(cols[5], dtype=np.int16),
        oneway=np.asarray(cols[6], dtype=bool), length_m=np.asarray(cols[7], dtype=np.float64),
        freeflow_mps=np.asarray(cols[8], dtype=np.float64), capacity_vph=np.asarray(cols[9], dtype=np.float64),
        coords=coords.astype(np.float64), geom_offsets=offsets,
    )
    net.validate()
    return net


def load_stored_network(db: Database, name: str = "") -> RoadNetwork | None:
    """The stored network ``name`` (empty: the first stored, by name); None when none is stored.

    Raises
    ------
    NetworkNotFoundError
        ``name`` is given and no network of that name is stored.
    """
    if not name:
        names = [n for n, *_ in list_networks(db)]
        if not names:
            return None
        name = names[0]
    return load_network(db, name)

"""Placing camera counting lines on a stored road network (I/O: loads the network, writes links).

A line placed at ``lat, lon`` with the travel bearing of its ``in`` direction is attached
to the nearest edge with the closest bearing (``out`` to the reverse edge) by
:func:`traffic.flows.attach_lines` and stored in ``traffic_camera_links``. The live traffic
service then turns the camera's counts into speed evidence on those edges, and
``/v1/cameras`` shows the camera at the mean position of its lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from its.db import Database
from maps.spatial import EdgeSnapper
from maps.store import list_networks, load_network
from traffic.flows import attach_lines
from traffic.store import save_camera_links

__all__ = ["Placement", "place_camera_line"]


@dataclass(frozen=True)
class Placement:
    """Where a line went: network, ``in`` edge and ``out`` edge (-1 on a one-way street), distance (m)."""

    network: str
    edge_in: int
    edge_out: int


def place_camera_line(db: Database, camera_id: str, line_id: str, lat: float, lon: float, heading_deg: float,
                      network: str = "", max_distance_m: float = 50.0) -> Placement:
    """Attach one counting line to the nearest matching edge of ``network`` (default: the first stored).

    Raises ``ValueError`` when no network is stored or no edge lies within ``max_distance_m`` (m).
    """
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("lat must be in [-90, 90] and lon in [-180, 180]")
    names = [n for n, *_ in list_networks(db)]
    name = network or (names[0] if names else "")
    if name not in names:
        raise ValueError(f"road network {name!r} is not stored (stored: {', '.join(names) or 'none'})")
    net = load_network(db, name)
    links = attach_lines(net, EdgeSnapper(net), [camera_id], [line_id], [lon], [lat], [heading_deg % 360.0],
                         max_distance_m=max_distance_m)
    if links.edge[0] < 0:
        raise ValueError(f"no road of {name!r} within {max_distance_m:g} m of {lat:.6f},{lon:.6f}")
    save_camera_links(db, name, links, np.array([lon]), np.array([lat]), np.array([heading_deg % 360.0]))
    return Placement(name, int(links.edge[0]), int(links.edge[1]))

"""Camera flows: counting lines attached to edges, counts → flow → v/c → BPR speed.

A camera's counting line (placed by an operator at ``lon, lat`` with the travel heading of
its ``in`` direction) is attached to the nearest edge whose bearing matches that heading;
the ``out`` direction goes to the reverse edge. Counts per interval become a flow
(veh/h), the flow over the edge's capacity a volume/capacity ratio, and the BPR
volume-delay function ``t = t0 (1 + alpha (v/c)^beta)`` a speed ``v_ff / (1 + alpha x^beta)``.

Limit: BPR describes the uncongested branch (demand up to capacity); a low count under a
queue reads as free flow. Where the camera reports its own mean speed, that speed is the
evidence instead and BPR is only the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from maps.network import RoadNetwork
from maps.spatial import EdgeSnapper
from traffic.config import TrafficSettings

__all__ = ["CameraLinks", "FlowObservations", "attach_lines", "bpr_speed", "flow_observations"]

FloatArray = npt.NDArray[np.float64]


def bpr_speed(freeflow_mps: npt.ArrayLike, vc_ratio: npt.ArrayLike, alpha: float = 0.15,
              beta: float = 4.0) -> FloatArray:
    """BPR speed (m/s): free-flow speed / (1 + alpha (v/c)^beta); v/c clipped at 0."""
    x = np.maximum(np.asarray(vc_ratio, dtype=np.float64), 0.0)
    return np.asarray(np.asarray(freeflow_mps, dtype=np.float64) / (1.0 + alpha * x ** beta))


@dataclass(frozen=True)
class CameraLinks:
    """Attachment of (camera, line, direction) keys to edges (``edge`` -1: not attached)."""

    camera_id: npt.NDArray[np.str_]
    line_id: npt.NDArray[np.str_]
    direction: npt.NDArray[np.str_]
    edge: npt.NDArray[np.int64]

    def lookup(self, camera_id: npt.ArrayLike, line_id: npt.ArrayLike, direction: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Edge of each (camera, line, direction) triple, -1 when unknown."""
        known = {k: int(e) for k, e in zip(zip(self.camera_id, self.line_id, self.direction, strict=True),
                                           self.edge, strict=True)}
        keys = zip(np.asarray(camera_id).astype(str), np.asarray(line_id).astype(str),
                   np.asarray(direction).astype(str), strict=True)
        return np.fromiter((known.get(k, -1) for k in keys), dtype=np.int64)


def attach_lines(
    network: RoadNetwork,
    snapper: EdgeSnapper,
    camera_id: npt.ArrayLike,
    line_id: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    heading_deg: npt.ArrayLike,
    max_distance_m: float = 50.0,
) -> CameraLinks:
    """Attach each counting line to the edge it watches, both directions.

    Parameters
    ----------
    lon, lat : line position (degrees).
    heading_deg : travel bearing (degrees from north) of vehicles counted as ``in``.
    max_distance_m : lines farther than this (m) from any edge stay unattached.

    Returns two links per line: ``in`` → the nearest edge with the closest bearing, ``out``
    → its reverse edge (-1 on a one-way street).
    """
    cam = np.atleast_1d(np.asarray(camera_id).astype(str))
    line = np.atleast_1d(np.asarray(line_id).astype(str))
    snap = snapper.nearest(lon, lat, max_distance_m=max_distance_m, heading_deg=heading_deg)
    e_in = snap.edge
    e_out = np.where(e_in >= 0, network.reverse_edge[np.maximum(e_in, 0)], -1)
    n = len(cam)
    return CameraLinks(
        camera_id=np.concatenate([cam, cam]), line_id=np.concatenate([line, line]),
        direction=np.array(["in"] * n + ["out"] * n), edge=np.concatenate([e_in, e_out]).astype(np.int64),
    )


@dataclass(frozen=True)
class FlowObservations:
    """Speed evidence from camera counts (one row per attached count interval).

    Attributes
    ----------
    edge : edge index.
    time_s : interval middle (UTC epoch s).
    flow_vph : flow (vehicles/hour).
    vc_ratio : flow / edge capacity.
    speed_mps : camera mean speed when given, else the BPR speed (m/s).
    """

    edge: npt.NDArray[np.int64]
    time_s: FloatArray
    flow_vph: FloatArray
    vc_ratio: FloatArray
    speed_mps: FloatArray


def flow_observations(
    network: RoadNetwork,
    edge: npt.ArrayLike,
    interval_start_s: npt.ArrayLike,
    interval_s: npt.ArrayLike,
    count: npt.ArrayLike,
    mean_speed_mps: npt.ArrayLike | None = None,
    settings: TrafficSettings | None = None,
) -> FlowObservations:
    """Counts of one (edge, interval) each — sum vehicle classes first — to flow evidence.

    Rows with ``edge`` < 0 (unattached lines) or a non-positive interval are dropped.
    """
    s = settings or TrafficSettings()
    e = np.asarray(edge, dtype=np.int64)
    start = np.asarray(interval_start_s, dtype=np.float64)
    dur = np.asarray(interval_s, dtype=np.float64)
    cnt = np.asarray(count, dtype=np.float64)
    cam_speed = np.full(len(e), np.nan) if mean_speed_mps is None else np.asarray(mean_speed_mps, dtype=np.float64)
    ok = (e >= 0) & (e < network.n_edges) & (dur > 0) & (cnt >= 0)
    e, start, dur, cnt, cam_speed = e[ok], start[ok], dur[ok], cnt[ok], cam_speed[ok]
    flow = cnt * 3600.0 / dur
    vc = flow / network.capacity_vph[e]
    bpr = bpr_speed(network.freeflow_mps[e], vc, s.bpr_alpha, s.bpr_beta)
    speed = np.where(np.isfinite(cam_speed) & (cam_speed > 0), cam_speed, bpr)
    return FlowObservations(e, start + dur / 2, flow, vc, speed)

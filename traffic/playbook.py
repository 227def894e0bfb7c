"""The traffic domain's part of the operating-mode playbook (:mod:`its.playbook`).

* `live_situation`: the network's operating mode now, by the rule of the report's
  `traffic.kpi.operating_mode` (`traffic.kpi.classify_mode`, the same ``peak_tti``
  setting): ``incident`` while a ``traffic_incident`` alert is active, else ``peak`` when
  the live network travel time index is at or above ``peak_tti``, else ``normal``.
* `detours`: for each active incident on one edge, the congestion-aware router's fastest
  way from the edge's start node to its end node with that edge closed, under the current
  estimated travel times, against the time through the incident edge now; recommended
  when it is faster. Corridor incidents (a whole street) get no detour.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from its.playbook import Action, Effect, IncidentSite, Situation
from maps.routing import NoRouteError
from traffic.kpi import INCIDENT_KIND, classify_mode

if TYPE_CHECKING:
    from traffic.service import TrafficService

__all__ = ["detours", "incident_edge", "live_situation"]

#: Detours longer than this (s of travel time) are not searched.
DETOUR_LIMIT_S = 1800.0


def live_situation(service: TrafficService, now_s: float, peak_tti: float) -> Situation | None:
    """The situation now: active incident alerts and the last update's network TTI (None before any evidence)."""
    if service.ctx is None:
        return None
    incidents = tuple(IncidentSite(a.subject, a.severity, a.message, a.lat, a.lon)
                      for a in service.ctx.alerts.active() if a.kind == INCIDENT_KIND)
    snap = service.snapshot
    tti = snap.network_tti if snap is not None and math.isfinite(snap.network_tti) else None
    mode = classify_mode(np.array([np.nan if tti is None else tti]), np.array([len(incidents)]), peak_tti)[0]
    return Situation(mode, tti, peak_tti, incidents, now_s)


def incident_edge(subject: str, network: str, n_edges: int) -> int | None:
    """The edge index of an edge incident's subject (``network:edge``) on ``network``; None for others."""
    name, _, edge = subject.rpartition(":")
    if name != network or not edge.isdigit() or int(edge) >= n_edges:
        return None
    return int(edge)


def detours(service: TrafficService, situation: Situation) -> list[Action]:
    """The detour of every active edge incident whose closure the router can route around faster."""
    net, router = service.network, service.router_
    if not situation.active or net is None or router is None:
        return []
    with service._route_lock:
        weights = router.weights.copy()
    out: list[Action] = []
    for inc in situation.incidents:
        e = incident_edge(inc.subject, net.name, net.n_edges)
        if e is None:
            continue
        blocked = float(weights[e])
        closed = weights.copy()
        closed[e] = np.inf
        try:
            alt = router.route_nodes(int(net.u[e]), int(net.v[e]), weights=closed,
                                     limit_s=min(DETOUR_LIMIT_S, blocked))
        except NoRouteError:
            continue
        if alt.time_s >= blocked:
            continue
        street = str(net.street_name[e])
        where = f"{street} (edge {e})" if street else f"edge {e}"
        text = (f"detour {alt.length_m:.0f} m takes {alt.time_s:.0f} s instead of {blocked:.0f} s through the "
                f"incident ({float(net.length_m[e]):.0f} m): saves {blocked - alt.time_s:.0f} s per vehicle")
        out.append(Action(
            "traffic", "detour", inc.subject, f"Divert traffic around the incident on {where}", inc.message,
            Effect("travel time", "s", round(blocked, 1), round(alt.time_s, 1), text), inc.lat, inc.lon,
            {"edge": e, "detour_edges": [int(x) for x in alt.edges], "detour_length_m": round(alt.length_m, 1),
             "incident_length_m": round(float(net.length_m[e]), 1),
             "freeflow_time_s": round(float(net.freeflow_time_s[e]), 1)}))
    return out

"""The telematics domain's part of the operating-mode playbook (:mod:`its.playbook`).

`headway_actions`: on every route with current holding advice (not dismissed) at a control
stop the situation affects (everywhere at peak, near an incident otherwise), one action:
apply the route's holds. Its expected effect is the excess wait of the passengers at the
advised stops without and with the holds (`telematics.holding.excess_wait_change` over the
holding kernel's forward and backward headways of each advice; its change is the change of
the TfL excess wait time there; the route's figure is the mean over its advised stops, s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from its.playbook import Action, Effect, Situation
from telematics.holding import excess_wait_change

if TYPE_CHECKING:
    from telematics.holding_live import HoldAdvice
    from telematics.service import ArrivalsService

__all__ = ["headway_actions"]


def _nan(x: float | None) -> float:
    return np.nan if x is None else float(x)


def headway_actions(service: ArrivalsService, situation: Situation) -> list[Action]:
    """One action per affected route with current advice, the route's holds in ``details``."""
    if not situation.active:
        return []
    by_route: dict[tuple[str, str], list[tuple[HoldAdvice, str]]] = {}
    for given, status in service.advice.current():
        stop = service.stops.get(given.stop_id)
        if status == "dismissed" or stop is None or not situation.affects(float(stop["lat"]), float(stop["lon"])):
            continue
        by_route.setdefault((given.agency, given.route_id), []).append((given, status))
    out: list[Action] = []
    for (agency, route_id), items in sorted(by_route.items()):
        items.sort(key=lambda item: item[0].vehicle_id)
        advice = [a for a, _s in items]
        before, after = excess_wait_change(np.array([_nan(a.forward_headway_s) for a in advice]),
                                           np.array([_nan(a.backward_headway_s) for a in advice]),
                                           np.array([a.hold_s for a in advice]),
                                           np.array([a.scheduled_headway_s for a in advice]))
        ewt0, ewt1 = float(np.mean(before)), float(np.mean(after))
        name = service.routes.get(route_id, {}).get("short_name") or route_id
        holds = ", ".join(f"bus {a.vehicle_id} {a.hold_s:.0f} s at {a.stop_name or a.stop_id}" for a in advice)
        text = (f"excess wait at the {len(advice)} advised stop(s) {ewt0:.0f} s -> {ewt1:.0f} s "
                f"({ewt1 - ewt0:+.0f} s per passenger)")
        first = service.stops.get(advice[0].stop_id, {})
        details: dict[str, Any] = {"agency": agency, "route_id": route_id, "holds": [
            {"advice_id": a.advice_id, "vehicle_id": a.vehicle_id, "stop_id": a.stop_id, "stop_name": a.stop_name,
             "hold_s": round(a.hold_s), "status": s, "ewt_without_s": round(float(b), 1),
             "ewt_with_s": round(float(w), 1)}
            for (a, s), b, w in zip(items, before, after, strict=True)]}
        out.append(Action("telematics", "headway", f"{agency}:{route_id}", f"Hold buses on route {name} for even headways",
                          f"{len(advice)} hold(s): {holds}",
                          Effect("excess wait time", "s", round(ewt0, 1), round(ewt1, 1), text),
                          first.get("lat"), first.get("lon"), details))
    return out

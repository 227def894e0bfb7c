"""The parking domain's part of the operating-mode playbook (:mod:`its.playbook`).

`guidance_actions`: for every full or nearly full car park the situation affects
(everywhere at peak, near an incident otherwise) and that has somewhere to send drivers,
one action: show its diversion on the signs. The sites are those of its variable message
sign (`parking.advice.sign_alternatives`); the expected effect is the chance of finding a
free space for a driver arriving ``guidance_sign_arrive_min`` later, at the car park itself
(without the action) and at the guided sites (with it: their mean, each in ``details``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from its.playbook import Action, Effect, Situation
from parking.advice import DIVERTING, recommend, sign_alternatives
from parking.guidance import sign_message

if TYPE_CHECKING:
    from parking.service import ParkingService

__all__ = ["guidance_actions"]


def guidance_actions(service: ParkingService, situation: Situation) -> list[Action]:
    """One action per affected full or nearly full site with alternatives (its sign text in ``details``)."""
    if not situation.active:
        return []
    now = datetime.fromtimestamp(situation.at_s, UTC)
    arrive = service.settings.guidance_sign_arrive_min
    out: list[Action] = []
    for site_id in list(service.state.order):
        site = service.state.sites.get(site_id)
        avail = service.state.current(site_id)
        if site is None or avail is None or avail.status.value not in DIVERTING \
                or not situation.affects(site.lat, site.lon):
            continue
        alternatives = sign_alternatives(service, site, now)
        if not alternatives:
            continue
        own = next((r.probability for r in recommend(service, site.lat, site.lon, None, arrive, 1.0, 1, now)
                    if r.site_id == site_id), None)
        mean = sum(a.probability for a in alternatives) / len(alternatives)
        sign = sign_message(site_id, site.name, avail.status.value, alternatives, now.isoformat(), arrive)
        here = "unknown" if own is None else f"{own:.0%}"
        text = (f"chance of a free space on arrival in {arrive:g} min: {here} at {site.name}, "
                f"{mean:.0%} at the guided site(s)")
        out.append(Action(
            "parking", "guidance", site_id, f"Guide drivers away from {site.name} ({avail.status.value})",
            str(sign["text"]), Effect("probability of a free space", "probability", own, round(mean, 3), text),
            site.lat, site.lon,
            {"site_id": site_id, "status": avail.status.value, "free_now": avail.free, "sign_lines": sign["lines"],
             "guided_sites": sign["alternatives"], "arrive_in_min": arrive}))
    return out

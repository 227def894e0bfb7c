"""The operating-mode playbook contract: a domain-neutral situation and recommended actions.

The kernel defines only the shapes; domains implement them on their live services and the
application layer (:mod:`its.app.control.playbook`) composes them, so no layer imports
upward and no domain imports another for the playbook:

* a :class:`ModeSource` (the traffic service) tells the network's current
  :class:`Situation`: its operating mode (``incident``, ``peak``, ``normal`` or None, by
  the definitions of the report's operating mode), the network travel time index and the
  active incidents with their positions;
* a :class:`Recommender` (any domain's service) turns a situation whose mode is
  ``incident`` or ``peak`` into :class:`Action` s, each with its expected
  :class:`Effect`.

An action's id is stable for its domain, kind and subject, so the action a dispatcher
applied is found again when the playbook is recomputed (and logged with who and when).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["ACTIVE_MODES", "AFFECTED_RADIUS_M", "Action", "ActionApplier", "Effect", "IncidentSite", "ModeSource",
           "Recommender", "Situation", "action_id", "distance_m"]

#: Operating modes in which the playbook recommends actions.
ACTIVE_MODES = ("incident", "peak")
#: In ``incident`` mode, what lies within this distance (m) of an active incident is affected.
AFFECTED_RADIUS_M = 2000.0
_EARTH_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (m) between two WGS84 points (degrees)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(a)))


def action_id(domain: str, kind: str, subject: str) -> str:
    """The stable id of an action (16 hex digits) from its domain, kind and subject."""
    text = "\x1f".join((domain, kind, subject))
    return hashlib.blake2s(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class IncidentSite:
    """An active traffic incident: the alert's subject, severity, message and position (degrees)."""

    subject: str
    severity: str
    message: str
    lat: float | None
    lon: float | None


@dataclass(frozen=True)
class Situation:
    """The network's operating mode now and what it rests on.

    Attributes
    ----------
    mode : str or None
        ``incident``, ``peak``, ``normal``, or None (neither a travel time index nor an incident known).
    network_tti : float or None
        Network travel time index now (ratio; 1.0 = free flow).
    peak_tti : float
        Index at or above which the network is in ``peak`` (ratio, ``ITS_REPORTS_PEAK_TTI``).
    incidents : tuple of IncidentSite
        Active traffic incidents.
    at_s : float
        When the situation was evaluated (epoch s).
    """

    mode: str | None
    network_tti: float | None
    peak_tti: float
    incidents: tuple[IncidentSite, ...]
    at_s: float

    @property
    def active(self) -> bool:
        """The mode calls for the playbook (``incident`` or ``peak``)."""
        return self.mode in ACTIVE_MODES

    @property
    def network_wide(self) -> bool:
        """The whole network is affected: its travel time index is at or above ``peak_tti``."""
        return self.network_tti is not None and self.network_tti >= self.peak_tti

    def affects(self, lat: float, lon: float, radius_m: float = AFFECTED_RADIUS_M) -> bool:
        """Whether a place (degrees) is affected: everywhere at peak, else within ``radius_m`` (m) of an incident."""
        if not self.active:
            return False
        if self.network_wide:
            return True
        return any(i.lat is not None and i.lon is not None and distance_m(lat, lon, i.lat, i.lon) <= radius_m
                   for i in self.incidents)


@dataclass(frozen=True)
class Effect:
    """The expected effect of an action on one indicator: its value without and with the action.

    ``unit`` is the indicator's unit (``s``, ``probability``); ``text`` says it in words.
    """

    metric: str
    unit: str
    without: float | None
    with_action: float | None
    text: str

    @property
    def change(self) -> float | None:
        """``with_action - without`` (in ``unit``; None when either is unknown)."""
        if self.without is None or self.with_action is None:
            return None
        return self.with_action - self.without


@dataclass(frozen=True)
class Action:
    """A recommended action of a domain on one subject (a route, a car park, a road edge).

    ``lat``/``lon`` locate it (degrees) when it has a place; ``details`` are JSON-ready
    specifics (the holds of a route, the sites a sign sends drivers to, the detour's edges).
    """

    domain: str
    kind: str
    subject: str
    title: str
    detail: str
    effect: Effect
    lat: float | None = None
    lon: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def action_id(self) -> str:
        """Stable id of the action (see :func:`action_id`)."""
        return action_id(self.domain, self.kind, self.subject)

    def to_json(self) -> dict[str, Any]:
        """The action as JSON (its effect with its change)."""
        effect = {**asdict(self.effect), "change": self.effect.change}
        return {"action_id": self.action_id, "domain": self.domain, "kind": self.kind, "subject": self.subject,
                "title": self.title, "detail": self.detail, "effect": effect, "lat": self.lat, "lon": self.lon,
                "details": self.details}


@runtime_checkable
class ModeSource(Protocol):
    """A live service that knows the network's operating mode (the traffic service)."""

    def situation(self, now_s: float, peak_tti: float) -> Situation | None:
        """The situation at ``now_s`` (epoch s) with ``peak_tti`` (ratio); None while it knows nothing."""


@runtime_checkable
class Recommender(Protocol):
    """A live service that recommends actions for a situation."""

    def recommend(self, situation: Situation) -> list[Action]:
        """Its actions (:class:`Action`) for ``situation`` (none when the mode is not active)."""


@runtime_checkable
class ActionApplier(Protocol):
    """A live service that carries out its own actions when a dispatcher applies them (the arrivals
    service accepts the holds of a headway action); the playbook calls the service whose ``name``
    is the action's ``domain``."""

    name: str

    def carry_out(self, action: Action, actor: str) -> list[str]:
        """Carry out ``action`` for the dispatcher ``actor``; what was done, one line each (empty:
        nothing to do, e.g. every hold already superseded)."""

"""Holding advice as dispatchers and vehicles see it: current advice, decisions, MQTT messages.

`AdviceBoard` keeps the advice of the last refresh (`telematics.holding_live.HoldingAdvisor`),
the dispatchers' decisions on it (accept or dismiss, who and when) and what is retained on
each vehicle's `ADVICE_TOPIC`; it decides what to publish (pure state, thread-safe; the
service publishes and writes the audit log, `telematics.advice_store`).

A vehicle's advice is published retained on its topic and superseded by the next one: when
its advice changes (another stop, a decision) or its hold moves by ``holding_republish_s``
or more. When the vehicle has no advice any more (it left the stop, its hold fell below
``holding_min_hold_s``, it went silent, a dispatcher dismissed it), an empty retained
message clears the topic. With ``holding_publish_unaccepted`` false only accepted advice is
sent. Decisions stay with an advice id (a vehicle, trip, day and stop) while it is advised.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from its.domain import Field, Topic
from telematics.config import TelematicsSettings
from telematics.holding_live import HoldAdvice

__all__ = ["ACTIONS", "ADVICE_TOPIC", "AdviceBoard", "Decision", "Message", "advice_topic"]

#: Retained MQTT topic of a vehicle's holding advice (JSON, see `AdviceBoard.payload`).
ADVICE_TOPIC = Topic(
    filter="its/v1/vehicles/+/+/advice",
    summary="Holding advice for a bus at its next control stop: levels agency, vehicle id (retained; an empty "
            "message clears it).",
    publisher="the platform (`its serve`: the arrivals service); each vehicle device may read its own",
    fields=(Field("advice_id", "string", "id of the advice (one per vehicle, trip, service day and stop)"),
            Field("agency", "string", "platform agency id (the topic's level)"),
            Field("vehicle_id", "string", "the bus (the topic's level)"),
            Field("status", "string", "`advised`, or `accepted` by a dispatcher"),
            Field("route_id", "string", "GTFS route"),
            Field("trip_id", "string", "GTFS trip the vehicle runs"),
            Field("service_date", "YYYY-MM-DD", "service day of the trip"),
            Field("stop_id", "string", "the control stop where to hold"),
            Field("stop_sequence", "int", "GTFS stop_sequence of that stop in the trip"),
            Field("stop_name", "string", "its name"),
            Field("hold_s", "int, s", "how long to hold after arriving there"),
            Field("arrive_at", "ISO 8601", "predicted arrival at the stop"),
            Field("depart_at", "ISO 8601", "when to leave it (arrival + hold)"),
            Field("scheduled_departure", "ISO 8601", "the trip's scheduled departure there"),
            Field("forward_headway_s", "int, s", "gap to the bus ahead (null: none known)", required=False),
            Field("backward_headway_s", "int, s", "gap to the bus behind (null: none known)", required=False),
            Field("scheduled_headway_s", "int, s", "scheduled headway there"),
            Field("reason", "string", "why, in words"),
            Field("generated_at", "ISO 8601", "when this message was computed")),
    retained=True, from_platform=True)

ACTIONS = {"accept": "accepted", "dismiss": "dismissed"}
Status = Literal["advised", "accepted", "dismissed"]
#: A message to publish retained: (topic, payload); an empty payload clears the topic.
Message = tuple[str, bytes]
#: Decisions on advice no longer given are forgotten after this long (s).
DECISION_TTL_S = 3 * 3600.0


def advice_topic(agency: str, vehicle_id: str) -> str:
    """The advice topic of a vehicle."""
    return ADVICE_TOPIC.concrete(agency, vehicle_id)


@dataclass(frozen=True)
class Decision:
    """A dispatcher's decision on an advice."""

    status: Literal["accepted", "dismissed"]
    by: str
    at: datetime


def _iso(t: datetime | float) -> str:
    when = t if isinstance(t, datetime) else datetime.fromtimestamp(round(t), UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AdviceBoard:
    """The current holding advice, the decisions on it and what each vehicle's topic retains.

    Parameters
    ----------
    config : TelematicsSettings
        ``holding_republish_s`` and ``holding_publish_unaccepted``.
    """

    def __init__(self, config: TelematicsSettings) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._advice: dict[str, HoldAdvice] = {}  # advice_id -> advice
        self._issued: dict[str, float] = {}  # advice_id -> first given (epoch s)
        self._decisions: dict[str, tuple[Decision, float]] = {}  # advice_id -> decision, last seen (epoch s)
        self._retained: dict[tuple[str, str], tuple[str, float, str]] = {}  # vehicle -> advice_id, hold_s, status
        self.version = 0

    # ------------------------------------------------------------------ state

    def update(self, advice: list[HoldAdvice], now_s: float) -> list[Message]:
        """Replace the current advice (every agency's) with ``advice``; the messages to publish."""
        with self._lock:
            self._advice = {a.advice_id: a for a in advice}
            for a in advice:
                self._issued.setdefault(a.advice_id, now_s)
                if a.advice_id in self._decisions:
                    self._decisions[a.advice_id] = (self._decisions[a.advice_id][0], now_s)
            cutoff = now_s - DECISION_TTL_S
            self._issued = {i: t for i, t in self._issued.items() if i in self._advice or t >= cutoff}
            self._decisions = {i: d for i, d in self._decisions.items() if i in self._advice or d[1] >= cutoff}
            self.version += 1
            return self._messages(now_s)

    def decide(self, advice_id: str, action: str, user: str, now: datetime) -> tuple[dict[str, Any], list[Message]]:
        """Record ``user``'s ``action`` (``accept`` or ``dismiss``) on a current advice.

        Returns the advice as the API lists it, and the messages to publish.

        Raises
        ------
        KeyError
            No current advice has this id.
        ValueError
            Unknown action.
        """
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {sorted(ACTIONS)}, got {action[:40]!r}")
        with self._lock:
            found = self._advice.get(advice_id)
            if found is None:
                raise KeyError(advice_id)
            status: Literal["accepted", "dismissed"] = "accepted" if action == "accept" else "dismissed"
            self._decisions[advice_id] = (Decision(status, user, now), now.timestamp())
            self.version += 1
            messages = self._messages(now.timestamp())
            return self._entry(found, now.timestamp()), messages

    def get(self, advice_id: str) -> HoldAdvice | None:
        """The current advice of that id."""
        with self._lock:
            return self._advice.get(advice_id)

    def issued_at(self, advice_id: str) -> float | None:
        """When the advice was first given (epoch s)."""
        with self._lock:
            return self._issued.get(advice_id)

    def entries(self, now_s: float) -> list[dict[str, Any]]:
        """The current advice as the API lists it, by agency, route and vehicle."""
        with self._lock:
            items = sorted(self._advice.values(), key=lambda a: (a.agency, a.route_id, a.vehicle_id))
            return [self._entry(a, now_s) for a in items]

    def current(self) -> list[tuple[HoldAdvice, Status]]:
        """The current advice with each one's status (``advised``, ``accepted``, ``dismissed``)."""
        with self._lock:
            return [(a, self._status(a.advice_id)) for a in self._advice.values()]

    def retained(self, topic: str) -> None:
        """A retained message found on a vehicle's advice topic (left by an earlier process):
        cleared at the next update unless that vehicle is advised."""
        levels = topic.split("/")
        if ADVICE_TOPIC.matches(topic):
            with self._lock:
                self._retained.setdefault((levels[3], levels[4]), ("", -1.0, "unknown"))

    # ------------------------------------------------------------------ views

    def _status(self, advice_id: str) -> Status:
        decision = self._decisions.get(advice_id)
        return "advised" if decision is None else decision[0].status

    def _entry(self, a: HoldAdvice, now_s: float) -> dict[str, Any]:
        decision = self._decisions.get(a.advice_id)
        kept = self._retained.get((a.agency, a.vehicle_id))
        return {**a.to_json(), "status": self._status(a.advice_id), "issued_at": _iso(self._issued.get(a.advice_id, now_s)),
                "computed_at": _iso(a.computed_s), "decided_by": decision[0].by if decision else None,
                "decided_at": _iso(decision[0].at) if decision else None,
                "published": kept is not None and kept[0] == a.advice_id}

    def payload(self, a: HoldAdvice, now_s: float) -> bytes:
        """The retained message of an advice on its vehicle's topic."""
        body = {k: v for k, v in a.to_json().items() if k not in ("frequent", "cap_s", "at_origin", "control")}
        return orjson.dumps({**body, "status": self._status(a.advice_id), "generated_at": _iso(now_s)})

    def _messages(self, now_s: float) -> list[Message]:
        """What to publish so that each vehicle's topic retains its advice (or nothing)."""
        want: dict[tuple[str, str], HoldAdvice] = {}
        for a in self._advice.values():
            status = self._status(a.advice_id)
            if status == "dismissed" or (status == "advised" and not self.config.holding_publish_unaccepted):
                continue
            want[(a.agency, a.vehicle_id)] = a
        out: list[Message] = []
        for vehicle in [v for v in self._retained if v not in want]:
            out.append((advice_topic(*vehicle), b""))
            del self._retained[vehicle]
        for vehicle, a in want.items():
            status = self._status(a.advice_id)
            kept = self._retained.get(vehicle)
            if (kept is None or kept[0] != a.advice_id or kept[2] != status
                    or abs(kept[1] - a.hold_s) >= max(self.config.holding_republish_s - 1e-6, 1e-9)):  # float sums
                out.append((advice_topic(*vehicle), self.payload(a, now_s)))
                self._retained[vehicle] = (a.advice_id, a.hold_s, status)
        return out

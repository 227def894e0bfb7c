"""Response models of ``/v1/control/playbook`` (`its.app.control.playbook`): the OpenAPI
contract of the operating mode, its recommended actions and the log of applied ones."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["Applied", "ApplyRequest", "LogEntry", "PlaybookLog", "PlaybookView", "RecommendedAction"]

Mode = Literal["incident", "peak", "normal"]


class EffectModel(BaseModel):
    """The expected effect of an action on one indicator, without and with it."""

    metric: str = Field(description="The indicator (`excess wait time`, `probability of a free space`, `travel time`).")
    unit: str = Field(description="Its unit (`s`, `probability` 0-1).")
    without: float | None = Field(description="Its value without the action (null: unknown).")
    with_action: float | None = Field(description="Its expected value with the action.")
    change: float | None = Field(description="`with_action - without`, in `unit`.")
    text: str = Field(description="The effect in words.")


class Applied(BaseModel):
    """Who applied an action and when."""

    by: str = Field(description="Dispatcher's user name.")
    at: dt.datetime = Field(description="When, ISO 8601 UTC.")


class RecommendedAction(BaseModel):
    """One recommended action of a domain on one subject."""

    action_id: str = Field(description="Stable per domain, kind and subject (16 hex digits).")
    domain: str = Field(description="The domain recommending it (`telematics`, `parking`, `traffic`).")
    kind: str = Field(description="`headway` (hold buses on a route), `guidance` (divert drivers from a car park), "
                                  "`detour` (route traffic around an incident edge).")
    subject: str = Field(description="What it acts on: `agency:route_id`, a site id, `network:edge`.")
    title: str = Field(description="The action in words.")
    detail: str = Field(description="Its specifics in words (the holds, the sign text, the incident).")
    effect: EffectModel
    lat: float | None = Field(description="Where, latitude in degrees (null: no single place).")
    lon: float | None = Field(description="Where, longitude in degrees.")
    details: dict[str, Any] = Field(description="JSON specifics: `holds`, `guided_sites`, `detour_edges`...")
    applied: Applied | None = Field(description="The latest application in the last hour (null: not applied).")


class PlaybookView(BaseModel):
    """The network's operating mode now and, in `incident` or `peak`, the recommended actions."""

    generated_at: dt.datetime = Field(description="When it was computed, ISO 8601 UTC.")
    mode: Mode | None = Field(description="`incident`, `peak`, `normal`; null when no mode source knows anything.")
    network_tti: float | None = Field(description="Network travel time index now (ratio, 1 = free flow).")
    peak_tti: float = Field(description="Index at or above which the mode is `peak` (`ITS_REPORTS_PEAK_TTI`).")
    incidents: list[dict[str, Any]] = Field(description="Active traffic incidents: `subject, severity, message, lat, lon`.")
    sources: list[str] = Field(description="Services that recommended actions (their names).")
    actions: list[RecommendedAction] = Field(description="Empty unless the mode is `incident` or `peak`.")


class ApplyRequest(BaseModel):
    """A dispatcher applies a recommended action (the log records who and when)."""

    note: str | None = Field(None, max_length=500, description="Optional free text kept with the log entry.")


class LogEntry(BaseModel):
    """One applied action, as it stood when applied."""

    log_id: int = Field(description="Entry number (increasing).")
    applied_at: dt.datetime = Field(description="When it was applied, ISO 8601 UTC.")
    actor: str = Field(description="Dispatcher's user name.")
    action_id: str = Field(description="The action's stable id.")
    mode: Literal["incident", "peak"] = Field(description="Operating mode when it was applied.")
    network_tti: float | None = Field(description="Network travel time index then (ratio; null: unknown).")
    domain: str = Field(description="Domain that recommended it.")
    kind: str = Field(description="`headway`, `guidance` or `detour`.")
    subject: str = Field(description="What it acted on.")
    title: str = Field(description="The action in words.")
    effect: EffectModel
    note: str | None = Field(description="The dispatcher's note (null: none).")


class AppliedEntry(LogEntry):
    """The log entry of an action just applied, with what the recommending domain carried out."""

    carried_out: list[str] = Field(description="What the domain did, one line each (e.g. the holds it "
                                               "accepted on the dispatcher's behalf); empty: it only logs.")


class PlaybookLog(BaseModel):
    """Applied actions, newest first."""

    entries: list[LogEntry] = Field(description="Newest first.")

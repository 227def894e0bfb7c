"""Parsing of the live MQTT messages the traffic service consumes (pure functions).

The traffic domain stores nothing from MQTT itself: positions are persisted by telematics
(``vehicle_positions``) and counts by video (``traffic_counts``); the service only
subscribes live. Hence ``ROUTES`` is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from its.ingest import PayloadError, Route, json_object, optional_float, require_float
from its.timeutil import TimeError, parse_time

__all__ = ["ROUTES", "CountMessage", "PositionMessage", "parse_count_message", "parse_position_message"]

ROUTES: list[Route] = []
_ID_MAX = 64


@dataclass(frozen=True)
class PositionMessage:
    """One vehicle position: ``vehicle`` = ``agency/vehicle_id``, time in UTC epoch s."""

    vehicle: str
    time_s: float
    lon: float
    lat: float
    heading_deg: float


@dataclass(frozen=True)
class CountMessage:
    """One camera count interval (one vehicle class)."""

    camera_id: str
    line_id: str
    direction: str
    interval_start_s: float
    interval_s: float
    count: float
    mean_speed_mps: float


def _topic_ids(topic: str, n_levels: int, positions: tuple[int, ...]) -> list[str]:
    levels = topic.split("/")
    if len(levels) != n_levels:
        raise PayloadError(f"unexpected topic {topic[:120]!r}")
    out = [levels[i] for i in positions]
    if any(not x or len(x) > _ID_MAX for x in out):
        raise PayloadError("bad id in topic")
    return out


def _time(value: object, field: str) -> float:
    try:
        return parse_time(value).timestamp()
    except TimeError as exc:
        raise PayloadError(f"field {field!r}: {exc}") from None


def parse_position_message(topic: str, payload: bytes) -> PositionMessage:
    """``its/v1/vehicles/{agency}/{vehicle_id}/position`` JSON → :class:`PositionMessage`."""
    agency, vehicle = _topic_ids(topic, 6, (3, 4))
    obj = json_object(payload)
    if "ts" not in obj:
        raise PayloadError("missing field 'ts'")
    bearing = optional_float(obj, "bearing", 0, 360)
    return PositionMessage(
        vehicle=f"{agency}/{vehicle}", time_s=_time(obj["ts"], "ts"),
        lon=require_float(obj, "lon", -180, 180), lat=require_float(obj, "lat", -90, 90),
        heading_deg=float("nan") if bearing is None else bearing,
    )


def parse_count_message(topic: str, payload: bytes) -> CountMessage:
    """``its/v1/cameras/{camera_id}/counts`` JSON → :class:`CountMessage`."""
    (camera_id,) = _topic_ids(topic, 5, (3,))
    obj = json_object(payload)
    if "interval_start" not in obj:
        raise PayloadError("missing field 'interval_start'")
    line_id, direction = obj.get("line_id"), obj.get("direction")
    if not isinstance(line_id, str) or not line_id or len(line_id) > _ID_MAX:
        raise PayloadError("field 'line_id' must be a non-empty string")
    if direction not in ("in", "out"):
        raise PayloadError("field 'direction' must be 'in' or 'out'")
    speed_kmh = optional_float(obj, "mean_speed_kmh", 0, 400)
    return CountMessage(
        camera_id=camera_id, line_id=line_id, direction=str(direction),
        interval_start_s=_time(obj["interval_start"], "interval_start"),
        interval_s=require_float(obj, "interval_s", 1, 3600), count=require_float(obj, "count", 0, 1_000_000),
        mean_speed_mps=float("nan") if speed_kmh is None else speed_kmh / 3.6,
    )

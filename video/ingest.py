"""MQTT ingestion of camera counts: ``its/v1/cameras/{camera_id}/counts`` → ``traffic_counts``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from its.ingest import PayloadError, Route, json_object, optional_float, require_float
from its.timeutil import TimeError, parse_time
from video.aggregate import DIRECTIONS
from video.classify import CLASS_NAMES

__all__ = ["COUNT_COLUMNS", "ROUTES", "parse_counts"]

COUNT_COLUMNS = (
    "camera_id", "line_id", "direction", "vehicle_class", "interval_start",
    "interval_s", "count", "mean_speed_mps", "occupancy",
)
_ID_MAX = 64


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > _ID_MAX:
        raise PayloadError(f"field {key!r} must be a non-empty string of at most {_ID_MAX} characters")
    return value


def parse_counts(topic: str, payload: bytes) -> Sequence[tuple[Any, ...]]:
    """One ``traffic_counts`` row from a counts message (see DESIGN.md).

    Required: ``interval_start`` (ISO 8601 or epoch), ``interval_s`` (s, 1..3600),
    ``line_id``, ``direction`` (``in``/``out``), ``vehicle_class``
    (``car``/``truck_bus``/``motorcycle``), ``count`` (>= 0). Optional: ``mean_speed_kmh``
    (stored as m/s) and ``occupancy`` (0..1).
    """
    levels = topic.split("/")
    camera_id = levels[3] if len(levels) == 5 else ""
    if not camera_id or len(camera_id) > _ID_MAX:
        raise PayloadError("bad camera id in topic")
    obj = json_object(payload)
    if "interval_start" not in obj:
        raise PayloadError("missing field 'interval_start'")
    try:
        start = parse_time(obj["interval_start"])
    except TimeError as exc:
        raise PayloadError(f"field 'interval_start': {exc}") from None
    interval_s = require_float(obj, "interval_s", 1, 3600)
    count = require_float(obj, "count", 0, 1_000_000)
    if interval_s != int(interval_s) or count != int(count):
        raise PayloadError("fields 'interval_s' and 'count' must be integers")
    direction = _text(obj, "direction")
    if direction not in DIRECTIONS:
        raise PayloadError(f"field 'direction' must be one of {list(DIRECTIONS)}")
    vehicle_class = _text(obj, "vehicle_class")
    if vehicle_class not in CLASS_NAMES:
        raise PayloadError(f"field 'vehicle_class' must be one of {list(CLASS_NAMES)}")
    speed = optional_float(obj, "mean_speed_kmh", 0, 400)
    occupancy = optional_float(obj, "occupancy", 0, 1)
    return [(
        camera_id, _text(obj, "line_id"), direction, vehicle_class, start, int(interval_s),
        int(count), None if speed is None else speed / 3.6, occupancy,
    )]


ROUTES: list[Route] = [
    Route(
        feed="camera_counts",
        topic_filter="its/v1/cameras/+/counts",
        table="traffic_counts",
        columns=COUNT_COLUMNS,
        parse=parse_counts,
    )
]

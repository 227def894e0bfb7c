"""MQTT ingestion of parking sensors and counters (pure parse functions and their routes).

- ``its/v1/parking/{site_id}/spaces/{space_id}``: ``ts``, ``occupied`` (bool) -> ``battery_v``
  (V), ``rssi`` (dBm); one row of ``parking_space_events``.
- ``its/v1/parking/{site_id}/counts``: ``ts`` and ``occupied`` (absolute, spaces) and/or
  ``entries``/``exits`` (vehicles since the previous message); one row of ``parking_counts``.

Rows are keyed by (site, [space,] time), so a redelivered message is stored once. Sensor
heartbeats and Last Will (``its/v1/devices/parking-sensor/{device_id}/status``) are stored by
the platform's shared device-status route; the parking service reads them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from its.ingest import PayloadError, Route, json_object, optional_float
from its.timeutil import TimeError, parse_time

__all__ = [
    "COUNT_COLUMNS",
    "ROUTES",
    "SENSOR_KIND",
    "SPACE_COLUMNS",
    "count_topic",
    "parse_count",
    "parse_space",
    "space_topic",
]

SENSOR_KIND = "parking-sensor"
SPACE_COLUMNS = ("site_id", "space_id", "time", "occupied", "battery_v", "rssi")
COUNT_COLUMNS = ("site_id", "time", "occupied", "entries", "exits")
_ID = re.compile(r"^[^/+#\x00-\x1f\x7f]{1,64}$")  # as site ids: spaces allowed ("NIA North"), no control chars
MAX_COUNT = 100_000


def space_topic(site_id: str, space_id: str) -> str:
    """Topic of a space sensor's messages."""
    return f"its/v1/parking/{site_id}/spaces/{space_id}"


def count_topic(site_id: str) -> str:
    """Topic of a site counter's messages."""
    return f"its/v1/parking/{site_id}/counts"


def _topic_id(levels: list[str], index: int, what: str) -> str:
    value = levels[index] if len(levels) > index else ""
    if not _ID.match(value):
        raise PayloadError(f"bad {what} in topic")
    return value


def _time(obj: dict[str, Any]) -> datetime:
    if obj.get("ts") is None:
        raise PayloadError("missing field 'ts'")
    try:
        return parse_time(obj["ts"])
    except TimeError as exc:
        raise PayloadError(f"field 'ts': {exc}") from None


def _count(obj: dict[str, Any], key: str, lo: int) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise PayloadError(f"field {key!r} must be an integer")
    if not lo <= value <= MAX_COUNT:
        raise PayloadError(f"field {key!r}={value} outside [{lo}, {MAX_COUNT}]")
    return int(value)


def parse_space(topic: str, payload: bytes) -> Sequence[tuple[Any, ...]]:
    """Parse a space sensor message into ``SPACE_COLUMNS`` order.

    Raises
    ------
    PayloadError
        Bad ids in the topic, missing/invalid ``ts`` or ``occupied``, out-of-range extras.
    """
    levels = topic.split("/")
    site_id = _topic_id(levels, 3, "site id")
    space_id = _topic_id(levels, 5, "space id")
    obj = json_object(payload)
    occupied = obj.get("occupied")
    if not isinstance(occupied, bool):
        raise PayloadError("field 'occupied' must be a boolean")
    time = _time(obj)
    battery_v = optional_float(obj, "battery_v", 0.0, 60.0)
    rssi = optional_float(obj, "rssi", -200.0, 50.0)
    return [(site_id, space_id, time, occupied, battery_v, rssi)]


def parse_count(topic: str, payload: bytes) -> Sequence[tuple[Any, ...]]:
    """Parse a counter message into ``COUNT_COLUMNS`` order.

    ``occupied`` is kept as sent (a faulty counter may report below zero or above capacity;
    availability clamps and flags it); ``entries``/``exits`` must be >= 0.

    Raises
    ------
    PayloadError
        Bad site id, missing/invalid ``ts``, or neither ``occupied`` nor ``entries``/``exits``.
    """
    levels = topic.split("/")
    site_id = _topic_id(levels, 3, "site id")
    obj = json_object(payload)
    time = _time(obj)
    occupied = _count(obj, "occupied", -MAX_COUNT)
    entries = _count(obj, "entries", 0)
    exits = _count(obj, "exits", 0)
    if occupied is None and entries is None and exits is None:
        raise PayloadError("need field 'occupied' or 'entries'/'exits'")
    return [(site_id, time, occupied, entries, exits)]


ROUTES = [
    Route(
        feed="parking_spaces",
        topic_filter="its/v1/parking/+/spaces/+",
        table="parking_space_events",
        columns=SPACE_COLUMNS,
        parse=parse_space,
    ),
    Route(
        feed="parking_counts",
        topic_filter="its/v1/parking/+/counts",
        table="parking_counts",
        columns=COUNT_COLUMNS,
        parse=parse_count,
    ),
]

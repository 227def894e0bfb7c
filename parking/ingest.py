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

from datetime import datetime
from typing import Any, NamedTuple

from its.domain import Field, Topic
from its.ingest import PayloadError, Route, check_id, json_object, optional_float
from its.timeutil import TimeError, parse_time

__all__ = [
    "COUNT_COLUMNS",
    "COUNT_TOPIC",
    "ROUTES",
    "SENSOR_KIND",
    "SPACE_COLUMNS",
    "SPACE_TOPIC",
    "STATE_TOPIC",
    "CountRow",
    "SpaceRow",
    "count_topic",
    "parse_count",
    "parse_space",
    "space_topic",
]

SENSOR_KIND = "parking-sensor"


class SpaceRow(NamedTuple):
    """One ``parking_space_events`` row: a space sensor's state at a time (UTC).

    ``battery_v`` V, ``rssi`` dBm (None when not sent).
    """

    site_id: str
    space_id: str
    time: datetime
    occupied: bool
    battery_v: float | None
    rssi: float | None


class CountRow(NamedTuple):
    """One ``parking_counts`` row: ``occupied`` spaces (absolute) and/or ``entries``/``exits``
    (vehicles since the counter's previous message), at a time (UTC)."""

    site_id: str
    time: datetime
    occupied: int | None
    entries: int | None
    exits: int | None


SPACE_COLUMNS = SpaceRow._fields
COUNT_COLUMNS = CountRow._fields
MAX_ID_LEN = 64  # site and space ids: topic levels (characters; spaces allowed, "NIA North")
MAX_COUNT = 100_000


def space_topic(site_id: str, space_id: str) -> str:
    """Topic of a space sensor's messages."""
    return SPACE_TOPIC.concrete(site_id, space_id)


def count_topic(site_id: str) -> str:
    """Topic of a site counter's messages."""
    return COUNT_TOPIC.concrete(site_id)


def _topic_id(levels: list[str], index: int, what: str) -> str:
    return check_id(levels[index] if len(levels) > index else "", f"{what} in topic", MAX_ID_LEN, topic_level=True)


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


def parse_space(topic: str, payload: bytes) -> list[SpaceRow]:
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
    return [SpaceRow(site_id, space_id, time, occupied, battery_v, rssi)]


def parse_count(topic: str, payload: bytes) -> list[CountRow]:
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
    return [CountRow(site_id, time, occupied, entries, exits)]


SPACE_TOPIC = Topic(
    filter="its/v1/parking/+/spaces/+", summary="A space sensor's state: levels site id, space id.",
    publisher="parking space sensors, `its simulate parking`",
    fields=(Field("ts", "ISO 8601 or epoch s/ms", "time of the reading (UTC)"),
            Field("occupied", "bool", "whether a vehicle is in the space"),
            Field("battery_v", "float, V", "sensor battery, 0-60", required=False),
            Field("rssi", "float, dBm", "radio signal strength, -200-50", required=False)),
    parse=parse_space, stored_in="parking_space_events")
COUNT_TOPIC = Topic(
    filter="its/v1/parking/+/counts", summary="A site counter's reading: level site id.",
    publisher="entry/exit counters, `its simulate parking`",
    fields=(Field("ts", "ISO 8601 or epoch s/ms", "time of the reading (UTC)"),
            Field("occupied", "int, spaces", "occupied spaces (absolute)", required=False),
            Field("entries", "int, vehicles", "entries since the previous message", required=False),
            Field("exits", "int, vehicles", "exits since the previous message", required=False)),
    parse=parse_count, stored_in="parking_counts")
STATE_TOPIC = Topic(
    filter="its/v1/state/parking/+", summary="A site's availability as the platform computes it (retained).",
    publisher="the platform (`its serve`)",
    fields=(Field("site_id", "string", "site"), Field("free", "int, spaces", "free spaces"),
            Field("status", "string", "open | full | almost_full | closed | unknown"),),
    retained=True)

ROUTES = [
    Route(
        feed="parking_spaces",
        topic_filter=SPACE_TOPIC.filter,
        table="parking_space_events",
        columns=SPACE_COLUMNS,
        parse=parse_space,
    ),
    Route(
        feed="parking_counts",
        topic_filter=COUNT_TOPIC.filter,
        table="parking_counts",
        columns=COUNT_COLUMNS,
        parse=parse_count,
    ),
]

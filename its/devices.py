"""Device status telemetry (``its/v1/devices/{kind}/{device_id}/status``), shared by all domains.

Devices set a retained Last Will ``{"online": false}`` and publish ``{"online": true, "ts": ...}``
when they connect and as a heartbeat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from its.ingest import PayloadError, Route, check_id, json_object
from its.timeutil import TimeError, parse_time

__all__ = ["DEVICE_STATUS_FILTER", "DEVICE_STATUS_ROUTE", "DeviceStatusRow", "device_status_filter",
           "device_status_topic", "parse_device_status"]

#: Every device's status topic: levels kind, device id.
DEVICE_STATUS_FILTER = "its/v1/devices/+/+/status"


class DeviceStatusRow(NamedTuple):
    """One ``device_status`` row: device kind and id, time (UTC), online."""

    kind: str
    device_id: str
    time: datetime
    online: bool


def device_status_filter(kind: str) -> str:
    """The status filter of one kind of device (``its/v1/devices/{kind}/+/status``)."""
    levels = DEVICE_STATUS_FILTER.split("/")
    levels[3] = kind
    return "/".join(levels)


def device_status_topic(kind: str, device_id: str) -> str:
    """The status topic of one device."""
    levels = DEVICE_STATUS_FILTER.split("/")
    levels[3], levels[4] = kind, device_id
    return "/".join(levels)

_ID_MAX = 128


def parse_device_status(topic: str, payload: bytes) -> list[DeviceStatusRow]:
    """``(kind, device_id, time, online)``; ``ts`` defaults to the time of receipt (Last Will)."""
    levels = topic.split("/")
    if len(levels) != 6:
        raise PayloadError("topic is not its/v1/devices/{kind}/{device_id}/status")
    kind = check_id(levels[3], "device kind in topic", 32, topic_level=True)
    device_id = check_id(levels[4], "device id in topic", _ID_MAX, topic_level=True)
    obj = json_object(payload)
    online = obj.get("online")
    if not isinstance(online, bool):
        raise PayloadError("field 'online' must be a boolean")
    try:
        ts = parse_time(obj["ts"]) if obj.get("ts") is not None else datetime.now(UTC)
    except TimeError as exc:
        raise PayloadError(f"field 'ts': {exc}") from None
    return [DeviceStatusRow(kind, device_id, ts, online)]


DEVICE_STATUS_ROUTE = Route(
    feed="device_status",
    topic_filter=DEVICE_STATUS_FILTER,
    table="device_status",
    columns=DeviceStatusRow._fields,
    parse=parse_device_status,
)

"""Device status telemetry (``its/v1/devices/{kind}/{device_id}/status``), shared by all domains.

Devices set a retained Last Will ``{"online": false}`` and publish ``{"online": true, "ts": ...}``
when they connect and as a heartbeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from its.ingest import PayloadError, Route, json_object
from its.timeutil import TimeError, parse_time

__all__ = ["DEVICE_STATUS_ROUTE", "parse_device_status"]

_ID_MAX = 128


def parse_device_status(topic: str, payload: bytes) -> Sequence[tuple[Any, ...]]:
    """``(kind, device_id, time, online)``; ``ts`` defaults to the time of receipt (Last Will)."""
    levels = topic.split("/")
    kind, device_id = levels[3], levels[4]
    if not kind or not device_id or len(device_id) > _ID_MAX or len(kind) > 32:
        raise PayloadError("bad device kind or id in topic")
    obj = json_object(payload)
    online = obj.get("online")
    if not isinstance(online, bool):
        raise PayloadError("field 'online' must be a boolean")
    try:
        ts = parse_time(obj["ts"]) if obj.get("ts") is not None else datetime.now(UTC)
    except TimeError as exc:
        raise PayloadError(f"field 'ts': {exc}") from None
    return [(kind, device_id, ts, online)]


DEVICE_STATUS_ROUTE = Route(
    feed="device_status",
    topic_filter="its/v1/devices/+/+/status",
    table="device_status",
    columns=("kind", "device_id", "time", "online"),
    parse=parse_device_status,
)

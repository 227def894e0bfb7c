"""MQTT parse functions for vehicle positions (JSON and GTFS-realtime protobuf).

Topics (see DESIGN.md):

* ``its/v1/vehicles/{agency}/{vehicle_id}/position``: a UTF-8 JSON object with ``ts, lat,
  lon`` and optionally ``speed_mps, bearing, trip_id, route_id, start_date, start_time,
  odometer_m, occupancy``.
* ``its/v1/vehicles/{agency}/{vehicle_id}/position/gtfsrt``: a binary GTFS-realtime
  ``VehiclePosition`` (keyed by the topic's vehicle id) or a whole ``FeedMessage`` (an
  agency gateway relaying its feed: each entity's vehicle id, else label, else entity id).

Both give rows of ``vehicle_positions`` in `POSITION_COLUMNS` order; anything invalid
raises `its.ingest.PayloadError` naming the field. ``start_time`` is the GTFS-realtime
``TripDescriptor.start_time`` (``HH:MM:SS`` of the service day, may pass 24:00:00), which
names the run of a frequency-based trip; it is stored normalised to two-digit hours.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from its.ingest import PayloadError, Route, json_object, optional_float, require_float
from its.timeutil import TimeError, parse_time
from telematics.frequencies import format_start_time, parse_start_time

__all__ = [
    "OCCUPANCY_STATUSES",
    "POSITION_COLUMNS",
    "ROUTES",
    "parse_gtfsrt_position",
    "parse_json_position",
    "topic_ids",
]

POSITION_COLUMNS = ("agency", "vehicle_id", "time", "lat", "lon", "speed_mps", "bearing",
                    "trip_id", "route_id", "start_date", "odometer_m", "occupancy", "start_time")
#: GTFS-realtime ``OccupancyStatus`` names accepted in ``occupancy`` (case-insensitive).
OCCUPANCY_STATUSES = tuple(gtfs_realtime_pb2.VehiclePosition.OccupancyStatus.keys())
MAX_SPEED_MPS = 70.0  # 252 km/h: anything faster is a broken unit, not a bus
MAX_ID_LEN = 128
_ID = re.compile(r"^[^\x00-\x1f/+#]{1,64}$")
_VERSION = re.compile(r"^\d+\.\d+$")


def topic_ids(topic: str) -> tuple[str, str]:
    """``(agency, vehicle_id)`` from ``its/v1/vehicles/{agency}/{vehicle_id}/position[/gtfsrt]``."""
    levels = topic.split("/")
    if len(levels) < 6 or levels[:3] != ["its", "v1", "vehicles"] or levels[5] != "position":
        raise PayloadError(f"topic {topic[:120]!r} is not its/v1/vehicles/{{agency}}/{{vehicle_id}}/position")
    agency, vehicle = levels[3], levels[4]
    for name, value in (("agency", agency), ("vehicle_id", vehicle)):
        if not _ID.match(value):
            raise PayloadError(f"topic level {name} must be 1-64 printable characters")
    return agency, vehicle


def _time(value: object, name: str) -> datetime:
    try:
        return parse_time(value)
    except TimeError as exc:
        raise PayloadError(f"field {name!r}: {exc}") from None


def _optional_text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"field {key!r} must be a string")
    if len(value) > MAX_ID_LEN or any(ord(c) < 32 for c in value):
        raise PayloadError(f"field {key!r} must be at most {MAX_ID_LEN} printable characters")
    return value


def _service_date(value: object, name: str = "start_date") -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{8}", value):
        raise PayloadError(f"field {name!r} must be a date YYYYMMDD")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise PayloadError(f"field {name!r}={value!r} is not a calendar date") from None


def _start_time(value: object, name: str = "start_time") -> str | None:
    """GTFS-rt ``start_time`` ``H:MM:SS`` (hours may pass 24) as ``HH:MM:SS``, or None."""
    if value is not None and not isinstance(value, str):
        raise PayloadError(f"field {name!r} must be a time HH:MM:SS")
    try:
        start_s = parse_start_time(value)
    except ValueError:
        raise PayloadError(f"field {name!r} must be a time HH:MM:SS") from None
    return None if start_s is None else format_start_time(start_s)


def _occupancy(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.upper() not in OCCUPANCY_STATUSES:
        raise PayloadError(f"field 'occupancy' must be one of {', '.join(OCCUPANCY_STATUSES)}")
    return value.upper()


def _check_fix(lat: float, lon: float, where: str = "") -> None:
    if lat == 0.0 and lon == 0.0:
        raise PayloadError(f"{where}fields 'lat'/'lon' are 0,0 (no GPS fix)")


def parse_json_position(topic: str, payload: bytes) -> list[tuple[Any, ...]]:
    """Parse a JSON position message into one ``vehicle_positions`` row.

    Units: ``lat``/``lon`` WGS84 degrees, ``speed_mps`` m/s (0-70), ``bearing`` degrees
    clockwise from north [0, 360], ``odometer_m`` metres (>= 0); ``ts`` ISO 8601 or epoch
    s/ms. Unknown fields are ignored. ``start_time`` (``HH:MM:SS``, as GTFS-rt names the run
    of a frequency-based trip) is the row's last element, ``HH:MM:SS`` or None; the live
    fleet maps a template plus start time to its run (`telematics.fleet.Fleet.instance_of`).

    Raises
    ------
    PayloadError
        Bad topic, payload or field (the message names it).
    """
    agency, vehicle = topic_ids(topic)
    obj = json_object(payload)
    if "ts" not in obj:
        raise PayloadError("missing field 'ts'")
    ts = _time(obj["ts"], "ts")
    lat = require_float(obj, "lat", -90.0, 90.0)
    lon = require_float(obj, "lon", -180.0, 180.0)
    _check_fix(lat, lon)
    speed = optional_float(obj, "speed_mps", 0.0, MAX_SPEED_MPS)
    bearing = optional_float(obj, "bearing", 0.0, 360.0)
    odometer = optional_float(obj, "odometer_m", 0.0, 1e10)
    start_time = _start_time(obj.get("start_time"))
    row = (agency, vehicle, ts, lat, lon, speed, None if bearing is None else bearing % 360.0,
           _optional_text(obj, "trip_id"), _optional_text(obj, "route_id"),
           _service_date(obj.get("start_date")), odometer, _occupancy(obj.get("occupancy")))
    return [(*row, start_time)]


def _pb_float(value: float, name: str, lo: float, hi: float, where: str) -> float:
    if not math.isfinite(value) or value < lo or value > hi:
        raise PayloadError(f"{where}field {name!r}={value} outside [{lo}, {hi}]")
    return float(value)


def _vehicle_row(agency: str, vehicle_id: str, vp: gtfs_realtime_pb2.VehiclePosition,
                 fallback_ts: int, where: str) -> tuple[Any, ...]:
    if not vp.HasField("position"):
        raise PayloadError(f"{where}field 'position' missing")
    pos = vp.position
    lat = _pb_float(pos.latitude, "latitude", -90.0, 90.0, where)
    lon = _pb_float(pos.longitude, "longitude", -180.0, 180.0, where)
    _check_fix(lat, lon, where)
    stamp = vp.timestamp if vp.HasField("timestamp") else fallback_ts
    if not stamp:
        raise PayloadError(f"{where}field 'timestamp' missing (and no header timestamp)")
    ts = _time(int(stamp), f"{where}timestamp".strip())
    speed = _pb_float(pos.speed, "speed", 0.0, MAX_SPEED_MPS, where) if pos.HasField("speed") else None
    bearing = _pb_float(pos.bearing, "bearing", 0.0, 360.0, where) % 360.0 if pos.HasField("bearing") else None
    odometer = _pb_float(pos.odometer, "odometer", 0.0, 1e10, where) if pos.HasField("odometer") else None
    trip = vp.trip
    trip_id = trip.trip_id[:MAX_ID_LEN] or None
    route_id = trip.route_id[:MAX_ID_LEN] or None
    start = _service_date(trip.start_date or None, f"{where}start_date".strip())
    start_time = _start_time(trip.start_time or None, f"{where}start_time".strip())
    occupancy = (gtfs_realtime_pb2.VehiclePosition.OccupancyStatus.Name(vp.occupancy_status)
                 if vp.HasField("occupancy_status") else None)
    return (agency, vehicle_id, ts, lat, lon, speed, bearing, trip_id, route_id, start, odometer, occupancy,
            start_time)


def _as_feed_message(payload: bytes) -> gtfs_realtime_pb2.FeedMessage | None:
    """The payload as a FeedMessage, or None when it is not one (e.g. a bare VehiclePosition)."""
    msg = gtfs_realtime_pb2.FeedMessage()
    try:
        msg.ParseFromString(payload)
    except DecodeError:
        return None
    if not msg.HasField("header") or not _VERSION.match(msg.header.gtfs_realtime_version):
        return None
    return msg


def parse_gtfsrt_position(topic: str, payload: bytes) -> list[tuple[Any, ...]]:
    """Parse a binary GTFS-realtime FeedMessage or VehiclePosition into position rows.

    Entities without a vehicle position (trip updates, alerts) are ignored. Each row ends
    with its trip's ``start_time`` (``HH:MM:SS`` or None), as `parse_json_position`.

    Raises
    ------
    PayloadError
        Not decodable as either message, or an invalid field (named with its entity index).
    """
    agency, vehicle = topic_ids(topic)
    if not payload:
        raise PayloadError("empty payload")
    feed = _as_feed_message(payload)
    if feed is not None:
        rows = []
        for i, entity in enumerate(feed.entity):
            if not entity.HasField("vehicle"):
                continue
            vp = entity.vehicle
            vid = vp.vehicle.id or vp.vehicle.label or entity.id
            if not _ID.match(vid):
                raise PayloadError(f"entity[{i}] field 'vehicle.id' must be 1-64 printable characters")
            rows.append(_vehicle_row(agency, vid, vp, feed.header.timestamp, f"entity[{i}] "))
        return rows
    vp = gtfs_realtime_pb2.VehiclePosition()
    try:
        vp.ParseFromString(payload)
    except DecodeError as exc:
        raise PayloadError(f"not a GTFS-realtime FeedMessage or VehiclePosition ({exc})") from None
    return [_vehicle_row(agency, vehicle, vp, 0, "")]


ROUTES = [
    Route(feed="vehicle_positions", topic_filter="its/v1/vehicles/+/+/position",
          table="vehicle_positions", columns=POSITION_COLUMNS, parse=parse_json_position),
    Route(feed="vehicle_positions_gtfsrt", topic_filter="its/v1/vehicles/+/+/position/gtfsrt",
          table="vehicle_positions", columns=POSITION_COLUMNS, parse=parse_gtfsrt_position),
]

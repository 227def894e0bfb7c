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
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from its.domain import Field, Topic
from its.ingest import PayloadError, Route, check_id, json_object, optional_float, require_float
from its.timeutil import TimeError, parse_time
from telematics.frequencies import format_start_time, parse_start_time

__all__ = [
    "GTFSRT_POSITION_TOPIC",
    "OCCUPANCY_STATUSES",
    "POSITION_COLUMNS",
    "POSITION_TOPIC",
    "ROUTES",
    "PositionRow",
    "as_position_row",
    "parse_gtfsrt_position",
    "parse_json_position",
    "topic_ids",
]



class PositionRow(NamedTuple):
    """One ``vehicle_positions`` row, as both the collector stores and live services use it.

    Units: ``lat``/``lon`` WGS84 degrees, ``speed_mps`` m/s, ``bearing`` degrees clockwise
    from north, ``odometer_m`` m; ``time`` UTC; ``start_date`` the service date;
    ``start_time`` the GTFS-rt run start ``HH:MM:SS`` (may pass 24:00:00) or None.
    """

    agency: str
    vehicle_id: str
    time: datetime
    lat: float
    lon: float
    speed_mps: float | None
    bearing: float | None
    trip_id: str | None
    route_id: str | None
    start_date: date | None
    odometer_m: float | None
    occupancy: str | None
    start_time: str | None


POSITION_COLUMNS = PositionRow._fields


def as_position_row(row: PositionRow | tuple[Any, ...]) -> PositionRow:
    """A row in `POSITION_COLUMNS` order as a `PositionRow` (``start_time`` may be left out)."""
    if isinstance(row, PositionRow):
        return row
    return PositionRow._make((*row, None) if len(row) == len(POSITION_COLUMNS) - 1 else row)
#: GTFS-realtime ``OccupancyStatus`` names accepted in ``occupancy`` (case-insensitive).
OCCUPANCY_STATUSES = tuple(gtfs_realtime_pb2.VehiclePosition.OccupancyStatus.keys())
MAX_SPEED_MPS = 70.0  # 252 km/h: anything faster is a broken unit, not a bus
MAX_ID_LEN = 128  # trip and route ids (characters)
MAX_TOPIC_ID_LEN = 64  # agency and vehicle ids: topic levels (characters)
_VERSION = re.compile(r"^\d+\.\d+$")


def topic_ids(topic: str) -> tuple[str, str]:
    """``(agency, vehicle_id)`` from ``its/v1/vehicles/{agency}/{vehicle_id}/position[/gtfsrt]``."""
    levels = topic.split("/")
    if len(levels) < 6 or levels[:3] != ["its", "v1", "vehicles"] or levels[5] != "position":
        raise PayloadError(f"topic {topic[:120]!r} is not its/v1/vehicles/{{agency}}/{{vehicle_id}}/position")
    agency = check_id(levels[3], "topic level agency", MAX_TOPIC_ID_LEN, topic_level=True)
    vehicle = check_id(levels[4], "topic level vehicle_id", MAX_TOPIC_ID_LEN, topic_level=True)
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
    return check_id(value, f"field {key!r}", MAX_ID_LEN)


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


def parse_json_position(topic: str, payload: bytes) -> list[PositionRow]:
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
    return [PositionRow(agency, vehicle, ts, lat, lon, speed, None if bearing is None else bearing % 360.0,
                        _optional_text(obj, "trip_id"), _optional_text(obj, "route_id"),
                        _service_date(obj.get("start_date")), odometer, _occupancy(obj.get("occupancy")),
                        start_time)]


def _pb_float(value: float, name: str, lo: float, hi: float, where: str) -> float:
    if not math.isfinite(value) or value < lo or value > hi:
        raise PayloadError(f"{where}field {name!r}={value} outside [{lo}, {hi}]")
    return float(value)


def _vehicle_row(agency: str, vehicle_id: str, vp: gtfs_realtime_pb2.VehiclePosition,
                 fallback_ts: int, where: str) -> PositionRow:
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
    trip_id = check_id(trip.trip_id, f"{where}field 'trip.trip_id'", MAX_ID_LEN) if trip.trip_id else None
    route_id = check_id(trip.route_id, f"{where}field 'trip.route_id'", MAX_ID_LEN) if trip.route_id else None
    start = _service_date(trip.start_date or None, f"{where}start_date".strip())
    start_time = _start_time(trip.start_time or None, f"{where}start_time".strip())
    occupancy = (gtfs_realtime_pb2.VehiclePosition.OccupancyStatus.Name(vp.occupancy_status)
                 if vp.HasField("occupancy_status") else None)
    return PositionRow(agency, vehicle_id, ts, lat, lon, speed, bearing, trip_id, route_id, start, odometer,
                       occupancy, start_time)


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


def parse_gtfsrt_position(topic: str, payload: bytes) -> list[PositionRow]:
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
            vid = check_id(vp.vehicle.id or vp.vehicle.label or entity.id, f"entity[{i}] field 'vehicle.id'",
                           MAX_TOPIC_ID_LEN, topic_level=True)
            rows.append(_vehicle_row(agency, vid, vp, feed.header.timestamp, f"entity[{i}] "))
        return rows
    vp = gtfs_realtime_pb2.VehiclePosition()
    try:
        vp.ParseFromString(payload)
    except DecodeError as exc:
        raise PayloadError(f"not a GTFS-realtime FeedMessage or VehiclePosition ({exc})") from None
    return [_vehicle_row(agency, vehicle, vp, 0, "")]


_POSITION_FIELDS = (
    Field("ts", "ISO 8601 or epoch s/ms", "time of the fix (UTC)"),
    Field("lat", "float, deg", "WGS84 latitude (0,0 is refused: no fix)"),
    Field("lon", "float, deg", "WGS84 longitude"),
    Field("speed_mps", "float, m/s", "ground speed, 0-70", required=False),
    Field("bearing", "float, deg", "heading clockwise from north, 0-360", required=False),
    Field("trip_id", "string", "GTFS trip the vehicle reports (empty: the platform assigns one)", required=False),
    Field("route_id", "string", "GTFS route", required=False),
    Field("start_date", "YYYYMMDD", "service date of the trip", required=False),
    Field("start_time", "HH:MM:SS", "run start of a frequency-based trip (may pass 24:00:00)", required=False),
    Field("odometer_m", "float, m", "odometer", required=False),
    Field("occupancy", "string", "GTFS-rt OccupancyStatus name", required=False),
)
POSITION_TOPIC = Topic(
    filter="its/v1/vehicles/+/+/position", summary="A bus position (AVL unit): levels agency, vehicle id.",
    publisher="vehicle devices, `its simulate fleet`", fields=_POSITION_FIELDS,
    parse=parse_json_position, stored_in="vehicle_positions")
GTFSRT_POSITION_TOPIC = Topic(
    filter="its/v1/vehicles/+/+/position/gtfsrt",
    summary="A GTFS-realtime VehiclePosition, or a whole FeedMessage relayed by an agency gateway.",
    publisher="vehicle devices, agency gateways", payload="protobuf",
    fields=(Field("FeedMessage | VehiclePosition", "GTFS-realtime 2.0",
                  "position, timestamp, trip descriptor, speed (m/s), bearing (deg), occupancy_status"),),
    parse=parse_gtfsrt_position, stored_in="vehicle_positions")

ROUTES = [
    Route(feed="vehicle_positions", topic_filter=POSITION_TOPIC.filter,
          table="vehicle_positions", columns=POSITION_COLUMNS, parse=parse_json_position),
    Route(feed="vehicle_positions_gtfsrt", topic_filter=GTFSRT_POSITION_TOPIC.filter,
          table="vehicle_positions", columns=POSITION_COLUMNS, parse=parse_gtfsrt_position),
]

"""MQTT ingestion of camera counts: ``its/v1/cameras/{camera_id}/counts`` → ``traffic_counts``
(vehicles), ``its/v1/cameras/{camera_id}/people`` → ``people_counts`` (pedestrians); the
camera fields of the device status message (health, position).

A camera's status message (``its/v1/devices/camera/{camera_id}/status``, the platform's
device status, stored by :func:`its.devices.parse_device_status`) may carry, besides
``online`` and ``ts``: ``lat``, ``lon`` (degrees: the centre of the camera's calibrated view)
and ``health``: ``conditions`` (list of ``view_blocked``, ``moved``, ``out_of_focus``,
``too_dark``), ``brightness`` (mean grey level, 0-255), ``sharpness_ratio`` (share of the
camera's usual sharpness), ``changed_share`` (share of the reference scene changed, 0-1),
``shift_px`` (global shift from the reference, frame pixels); ``synthetic`` (true: the camera
shows a rendered scene, :mod:`video.synthetic`, not real footage) and ``description`` (text
from its configuration). :func:`parse_camera_status` reads them for the video service; a
message without them is a plain status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from its.devices import DeviceStatusRow, parse_device_status
from its.domain import Field, Topic
from its.ingest import PayloadError, Route, check_id, json_object, optional_float, require_float
from its.timeutil import TimeError, parse_time
from video.aggregate import DIRECTIONS
from video.classify import CLASS_NAMES
from video.health import CONDITIONS

__all__ = ["CAMERA_KIND", "COUNTS_TOPIC", "COUNT_COLUMNS", "PEOPLE_COLUMNS", "PEOPLE_MEASURES", "PEOPLE_TOPIC", "ROUTES",
           "SNAPSHOT_TOPIC", "CameraStatus", "CountRow", "PeopleRow", "parse_camera_status", "parse_counts", "parse_people"]

#: The device kind of camera workers (their status topic and ACL).
CAMERA_KIND = "camera"


class CountRow(NamedTuple):
    """One ``traffic_counts`` row: vehicles of one class crossing one line in one interval.

    ``interval_start`` UTC, ``interval_s`` s, ``count`` vehicles, ``mean_speed_mps`` m/s or
    None, ``occupancy`` share of the interval the line was occupied (0-1) or None.
    """

    camera_id: str
    line_id: str
    direction: str
    vehicle_class: str
    interval_start: datetime
    interval_s: int
    count: int  # type: ignore[assignment]  # the column name; shadows tuple.count, unused
    mean_speed_mps: float | None
    occupancy: float | None


COUNT_COLUMNS = CountRow._fields
_ID_MAX = 64


def _text(obj: dict[str, Any], key: str) -> str:
    return check_id(obj.get(key), f"field {key!r}", _ID_MAX)


class PeopleRow(NamedTuple):
    """One ``people_counts`` row: pedestrians in one zone, or crossing one line one way, in one interval.

    ``measure`` is ``present`` for a zone (``place_id`` = zone id, ``all`` = the camera's
    whole region of interest: ``people_mean``/``people_max`` people present, ``samples``
    estimates) or ``in``/``out`` for a line (``place_id`` = line id, ``crossings`` people,
    estimated and fractional). ``interval_start`` UTC, ``interval_s`` s.
    """

    camera_id: str
    place_id: str
    measure: str
    interval_start: datetime
    interval_s: int
    people_mean: float | None
    people_max: float | None
    samples: int | None
    crossings: float | None


PEOPLE_COLUMNS = PeopleRow._fields
#: What a people row measures: people present in a zone, or crossing a line in or out.
PEOPLE_MEASURES = ("present", *DIRECTIONS)
_PEOPLE_MAX = 100_000.0
_ZONE_FIELDS = ("people_mean", "people_max", "samples")
_LINE_FIELDS = ("direction", "crossings")


def _camera_of(topic: str) -> str:
    levels = topic.split("/")
    return check_id(levels[3] if len(levels) == 5 else "", "camera id in topic", _ID_MAX, topic_level=True)


def _interval(obj: dict[str, Any]) -> tuple[datetime, int]:
    if "interval_start" not in obj:
        raise PayloadError("missing field 'interval_start'")
    try:
        start = parse_time(obj["interval_start"])
    except TimeError as exc:
        raise PayloadError(f"field 'interval_start': {exc}") from None
    interval_s = require_float(obj, "interval_s", 1, 3600)
    if interval_s != int(interval_s):
        raise PayloadError("field 'interval_s' must be an integer")
    return start, int(interval_s)


def parse_people(topic: str, payload: bytes) -> list[PeopleRow]:
    """One ``people_counts`` row from a people message (see :data:`PEOPLE_TOPIC`).

    Required: ``interval_start`` (ISO 8601 or epoch), ``interval_s`` (s, 1..3600) and either
    ``zone_id`` with ``people_mean``, ``people_max`` (people, 0..100000, max >= mean) and
    ``samples`` (estimates, >= 1), or ``line_id`` with ``direction`` (``in``/``out``) and
    ``crossings`` (people, >= 0); never both.
    """
    camera_id = _camera_of(topic)
    obj = json_object(payload)
    start, interval_s = _interval(obj)
    zone, line = obj.get("zone_id"), obj.get("line_id")
    if (zone is None) == (line is None):
        raise PayloadError("exactly one of fields 'zone_id' (people present) and 'line_id' (crossings) is needed")
    if zone is not None:
        stray = [k for k in _LINE_FIELDS if k in obj]
        if stray:
            raise PayloadError(f"a zone message has no field {stray[0]!r} (crossings go with 'line_id')")
        mean = require_float(obj, "people_mean", 0, _PEOPLE_MAX)
        peak = require_float(obj, "people_max", 0, _PEOPLE_MAX)
        if peak + 0.01 < mean:
            raise PayloadError(f"field 'people_max'={peak} is below 'people_mean'={mean}")
        samples = require_float(obj, "samples", 1, 1_000_000)
        if samples != int(samples):
            raise PayloadError("field 'samples' must be an integer")
        return [PeopleRow(camera_id, check_id(zone, "field 'zone_id'", _ID_MAX), "present", start, interval_s,
                          mean, max(peak, mean), int(samples), None)]
    stray = [k for k in _ZONE_FIELDS if k in obj]
    if stray:
        raise PayloadError(f"a line message has no field {stray[0]!r} (people present go with 'zone_id')")
    direction = obj.get("direction")
    if direction not in DIRECTIONS:
        raise PayloadError(f"field 'direction' must be one of {list(DIRECTIONS)}")
    crossings = require_float(obj, "crossings", 0, _PEOPLE_MAX)
    return [PeopleRow(camera_id, check_id(line, "field 'line_id'", _ID_MAX), str(direction), start, interval_s,
                      None, None, None, crossings)]


def parse_counts(topic: str, payload: bytes) -> list[CountRow]:
    """One ``traffic_counts`` row from a counts message (see DESIGN.md).

    Required: ``interval_start`` (ISO 8601 or epoch), ``interval_s`` (s, 1..3600),
    ``line_id``, ``direction`` (``in``/``out``), ``vehicle_class``
    (``car``/``truck_bus``/``motorcycle``), ``count`` (>= 0). Optional: ``mean_speed_kmh``
    (stored as m/s) and ``occupancy`` (0..1).
    """
    camera_id = _camera_of(topic)
    obj = json_object(payload)
    start, interval_s = _interval(obj)
    count = require_float(obj, "count", 0, 1_000_000)
    if count != int(count):
        raise PayloadError("field 'count' must be an integer")
    direction = _text(obj, "direction")
    if direction not in DIRECTIONS:
        raise PayloadError(f"field 'direction' must be one of {list(DIRECTIONS)}")
    vehicle_class = _text(obj, "vehicle_class")
    if vehicle_class not in CLASS_NAMES:
        raise PayloadError(f"field 'vehicle_class' must be one of {list(CLASS_NAMES)}")
    speed = optional_float(obj, "mean_speed_kmh", 0, 400)
    occupancy = optional_float(obj, "occupancy", 0, 1)
    return [CountRow(
        camera_id, _text(obj, "line_id"), direction, vehicle_class, start, interval_s,
        int(count), None if speed is None else speed / 3.6, occupancy,
    )]


class CameraStatus(NamedTuple):
    """A camera's status message: the device status row plus the camera's own optional fields.

    ``conditions`` is None when the message has no ``health`` (e.g. a Last Will); ``lat``,
    ``lon`` degrees or None; ``health`` the ``health`` object as sent (or None).
    """

    status: DeviceStatusRow
    conditions: frozenset[str] | None
    lat: float | None
    lon: float | None
    health: dict[str, Any] | None
    synthetic: bool | None = None
    description: str | None = None


def parse_camera_status(topic: str, payload: bytes) -> CameraStatus:
    """Parse a camera's status message (see the module docstring); raises :class:`PayloadError`."""
    (row,) = parse_device_status(topic, payload)
    obj = json_object(payload)
    health = obj.get("health")
    conditions = None
    if health is not None:
        if not isinstance(health, dict):
            raise PayloadError("field 'health' must be an object")
        conds = health.get("conditions")
        if not isinstance(conds, list) or not all(isinstance(c, str) and c in CONDITIONS for c in conds):
            raise PayloadError(f"field 'health.conditions' must be a list of {list(CONDITIONS)}")
        conditions = frozenset(conds)
    lat, lon = optional_float(obj, "lat", -90, 90), optional_float(obj, "lon", -180, 180)
    synthetic = obj.get("synthetic")
    if synthetic is not None and not isinstance(synthetic, bool):
        raise PayloadError("field 'synthetic' must be true or false")
    description = obj.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 200):
        raise PayloadError("field 'description' must be a string of at most 200 characters")
    return CameraStatus(row, conditions, lat, lon, health, synthetic, description)


COUNTS_TOPIC = Topic(
    filter="its/v1/cameras/+/counts", summary="Vehicles of one class counted on one line in one interval.",
    publisher="camera workers (`its video run`)",
    fields=(Field("interval_start", "ISO 8601 or epoch s", "start of the interval (UTC)"),
            Field("interval_s", "int, s", "interval length, 1-3600"),
            Field("line_id", "string", "counting line"),
            Field("direction", "in | out", "crossing direction"),
            Field("vehicle_class", "car | truck_bus | motorcycle", "vehicle class"),
            Field("count", "int, vehicles", "vehicles counted (>= 0)"),
            Field("mean_speed_kmh", "float, km/h", "mean speed of the counted vehicles", required=False),
            Field("occupancy", "float, share", "share of the interval the line was occupied", required=False)),
    parse=parse_counts, stored_in="traffic_counts")
PEOPLE_TOPIC = Topic(
    filter="its/v1/cameras/+/people",
    summary="Pedestrians in one interval: people present in a zone (mean, max), or crossing a line one way.",
    publisher="camera workers with a people model (`its video run`)",
    fields=(Field("interval_start", "ISO 8601 or epoch s", "start of the interval (UTC)"),
            Field("interval_s", "int, s", "interval length, 1-3600"),
            Field("zone_id", "string", "zone (`all`: the camera's whole region of interest); or `line_id`",
                  required=False),
            Field("people_mean", "float, people", "zone: mean people present over the interval", required=False),
            Field("people_max", "float, people", "zone: most people present in one estimate", required=False),
            Field("samples", "int", "zone: people estimates in the interval", required=False),
            Field("line_id", "string", "people-counting line; or `zone_id`", required=False),
            Field("direction", "in | out", "line: crossing direction (`in`: from the line's left to its right "
                  "on screen)", required=False),
            Field("crossings", "float, people", "line: people who crossed (estimated from density and optical "
                  "flow, fractional); only when the camera's frames are <= 0.25 s apart", required=False)),
    parse=parse_people, stored_in="people_counts")
SNAPSHOT_TOPIC = Topic(
    filter="its/v1/cameras/+/snapshot", summary="The camera's latest annotated frame (retained).",
    publisher="camera workers", payload="jpeg", retained=True)

ROUTES: list[Route] = [
    Route(
        feed="camera_counts",
        topic_filter=COUNTS_TOPIC.filter,
        table="traffic_counts",
        columns=COUNT_COLUMNS,
        parse=parse_counts,
    ),
    Route(
        feed="camera_people",
        topic_filter=PEOPLE_TOPIC.filter,
        table="people_counts",
        columns=PEOPLE_COLUMNS,
        parse=parse_people,
    ),
]

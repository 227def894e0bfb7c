"""One rule for ids in every domain's parser (`its.ingest.check_id`), tried with hostile ids.

Every id a parser reads, from a topic level or a payload field, is a string of 1..max
characters without control (C0, DEL, C1) or bidi-override characters; an id that names a
topic level also holds no ``/``, ``+`` or ``#``. Each parser refuses a hostile id with a
`PayloadError` naming the id, and keeps ordinary ids with spaces, dots and non-ASCII letters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from google.transit import gtfs_realtime_pb2

from its.devices import parse_device_status
from its.ingest import PayloadError
from parking.ingest import parse_count, parse_space
from telematics.ingest import parse_gtfsrt_position, parse_json_position
from video.ingest import parse_camera_status, parse_counts

TS = 1_780_000_000  # 2026-05-28, epoch s
#: ids every parser refuses, wherever they are read
HOSTILE = {
    "empty": "",
    "bidi override": "bus\u202egnp.exe",
    "bidi isolate": "7\u20661",
    "tab": "a\tb",
    "nul": "a\x00b",
    "del": "a\x7fb",
    "c1": "a\x85b",
    "newline": "a\nb",
}
#: ids refused only where they name a topic level
TOPIC_ONLY = {"plus": "a+b", "hash": "a#b"}
#: ordinary ids every parser keeps
FINE = ["NIA North", "Zürich-Nord.3", "公交_7", "A"]


def _json(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def _position(agency: str = "wmata", vehicle: str = "7", **extra: Any) -> tuple[str, bytes]:
    return f"its/v1/vehicles/{agency}/{vehicle}/position", _json(ts=TS, lat=38.9, lon=-77.0, **extra)


def _feed(vehicle_id: str = "7", trip_id: str = "", route_id: str = "") -> tuple[str, bytes]:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = TS
    entity = feed.entity.add()
    entity.id = "e1"
    vp = entity.vehicle
    vp.vehicle.id = vehicle_id
    vp.position.latitude, vp.position.longitude = 38.9, -77.0
    vp.timestamp = TS
    if trip_id:
        vp.trip.trip_id = trip_id
    if route_id:
        vp.trip.route_id = route_id
    return "its/v1/vehicles/wmata/gateway/position/gtfsrt", feed.SerializeToString()


def _counts(camera: str = "cam-1", line: str = "l1") -> tuple[str, bytes]:
    return f"its/v1/cameras/{camera}/counts", _json(interval_start=TS, interval_s=60, line_id=line, direction="in",
                                                     vehicle_class="car", count=3)


Case = tuple[Callable[[str, bytes], Any], Callable[[str], tuple[str, bytes]], str, bool]
#: (parser, message with the id in one place, what the error names, whether the id is a topic level)
CASES: dict[str, Case] = {
    "position agency": (parse_json_position, lambda i: _position(agency=i), "topic level agency", True),
    "position vehicle": (parse_json_position, lambda i: _position(vehicle=i), "topic level vehicle_id", True),
    "position trip_id": (parse_json_position, lambda i: _position(trip_id=i), "field 'trip_id'", False),
    "position route_id": (parse_json_position, lambda i: _position(route_id=i), "field 'route_id'", False),
    "gtfsrt vehicle.id": (parse_gtfsrt_position, lambda i: _feed(vehicle_id=i), "field 'vehicle.id'", True),
    "gtfsrt trip_id": (parse_gtfsrt_position, lambda i: _feed(trip_id=i), "field 'trip.trip_id'", False),
    "gtfsrt route_id": (parse_gtfsrt_position, lambda i: _feed(route_id=i), "field 'trip.route_id'", False),
    "parking space site": (parse_space, lambda i: (f"its/v1/parking/{i}/spaces/s1", _json(ts=TS, occupied=True)),
                           "site id in topic", True),
    "parking space id": (parse_space, lambda i: (f"its/v1/parking/p1/spaces/{i}", _json(ts=TS, occupied=True)),
                         "space id in topic", True),
    "parking count site": (parse_count, lambda i: (f"its/v1/parking/{i}/counts", _json(ts=TS, occupied=3)),
                           "site id in topic", True),
    "camera counts camera": (parse_counts, lambda i: _counts(camera=i), "camera id in topic", True),
    "camera counts line": (parse_counts, lambda i: _counts(line=i), "field 'line_id'", False),
    "device kind": (parse_device_status, lambda i: (f"its/v1/devices/{i}/d1/status", _json(online=True, ts=TS)),
                    "device kind in topic", True),
    "device id": (parse_device_status, lambda i: (f"its/v1/devices/camera/{i}/status", _json(online=True, ts=TS)),
                  "device id in topic", True),
    "camera status id": (parse_camera_status, lambda i: (f"its/v1/devices/camera/{i}/status", _json(online=True, ts=TS)),
                         "device id in topic", True),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_every_parser_refuses_a_hostile_id_naming_it(case: str, hostile: str) -> None:
    parse, message, name, _level = CASES[case]
    value = HOSTILE[hostile]
    topic, payload = message(value)
    if value == "" and name.startswith("field") and case.startswith("position"):
        assert parse(topic, payload)[0].trip_id is None  # an empty optional id is an absent one
        return
    if value == "" and case.startswith("gtfsrt"):
        return  # protobuf has no empty-versus-absent string: an empty trip id is an absent one
    with pytest.raises(PayloadError) as err:
        parse(topic, payload)
    assert name in str(err.value)
    assert "control or bidi-override" in str(err.value) or "1-" in str(err.value)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("special", sorted(TOPIC_ONLY))
def test_topic_special_characters_are_refused_only_in_ids_that_name_a_topic_level(case: str, special: str) -> None:
    parse, message, _name, level = CASES[case]
    topic, payload = message(TOPIC_ONLY[special])
    if level:
        with pytest.raises(PayloadError, match="'/', '\\+' or '#'"):
            parse(topic, payload)
    else:  # a GTFS trip or route id may hold them
        assert parse(topic, payload)


@pytest.mark.parametrize("case", sorted(CASES))
def test_too_long_ids_are_refused_and_ordinary_ones_kept(case: str) -> None:
    parse, message, _name, _level = CASES[case]
    with pytest.raises(PayloadError, match="must be a string of 1-"):
        parse(*message("x" * 129))
    for value in FINE:
        assert parse(*message(value))


def test_an_id_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(PayloadError, match="field 'trip_id' must be a string"):
        parse_json_position(*_position(trip_id=42))
    with pytest.raises(PayloadError, match="field 'line_id' must be a string"):
        parse_counts("its/v1/cameras/c/counts", _json(interval_start=TS, interval_s=60, line_id=["l"], direction="in",
                                                     vehicle_class="car", count=1))

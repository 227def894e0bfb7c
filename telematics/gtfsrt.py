"""GTFS-realtime 2.0 output: TripUpdates and VehiclePositions feeds from in-memory state.

Pure builders: plain dataclasses in, `FeedMessage` out, serialised as protobuf bytes
(`to_bytes`) or as the JSON form of protobuf's ``json_format`` (`to_json`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from google.protobuf import json_format
from google.transit import gtfs_realtime_pb2

__all__ = [
    "StopTimeUpdate",
    "TripUpdate",
    "VehicleSnapshot",
    "to_bytes",
    "to_json",
    "trip_updates_feed",
    "vehicle_positions_feed",
]

GTFS_RT_VERSION = "2.0"


@dataclass(frozen=True)
class VehicleSnapshot:
    """A vehicle's latest known position (times epoch s, degrees, m/s, degrees from north)."""

    vehicle_id: str
    observed_s: float
    lat: float
    lon: float
    bearing: float | None = None
    speed_mps: float | None = None
    trip_id: str | None = None
    route_id: str | None = None
    start_date: date | None = None
    stop_id: str | None = None  # next stop of the trip
    current_stop_sequence: int | None = None
    label: str | None = None
    occupancy: str | None = None  # GTFS-rt OccupancyStatus name
    start_time: str | None = None  # HH:MM:SS of a frequency-based trip's run (trip_id is then the template)


@dataclass(frozen=True)
class StopTimeUpdate:
    """Predicted arrival/departure at one stop (epoch s; ``uncertainty_s`` a half spread, s)."""

    stop_sequence: int
    stop_id: str
    arrival_s: float
    departure_s: float
    delay_s: float | None = None
    uncertainty_s: float | None = None


@dataclass(frozen=True)
class TripUpdate:
    """Predictions for the remaining stops of one trip run."""

    trip_id: str
    route_id: str
    start_date: date
    vehicle_id: str | None
    observed_s: float
    stops: Sequence[StopTimeUpdate] = field(default_factory=tuple)
    direction_id: int | None = None
    start_time: str | None = None  # HH:MM:SS of a frequency-based trip's run (trip_id is then the template)


def _header(msg: gtfs_realtime_pb2.FeedMessage, timestamp_s: float) -> None:
    msg.header.gtfs_realtime_version = GTFS_RT_VERSION
    msg.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    msg.header.timestamp = int(timestamp_s)


def _trip(desc: gtfs_realtime_pb2.TripDescriptor, trip_id: str | None, route_id: str | None,
          start_date: date | None, start_time: str | None = None) -> None:
    """Fill a TripDescriptor; a frequency-based trip is its template ``trip_id`` plus
    ``start_time`` and ``start_date`` (GTFS-rt spec), never our instance id."""
    if trip_id:
        desc.trip_id = trip_id
    if start_time:
        desc.start_time = start_time
    if route_id:
        desc.route_id = route_id
    if start_date is not None:
        desc.start_date = start_date.strftime("%Y%m%d")
    desc.schedule_relationship = gtfs_realtime_pb2.TripDescriptor.SCHEDULED


def vehicle_positions_feed(vehicles: Iterable[VehicleSnapshot], timestamp_s: float) -> gtfs_realtime_pb2.FeedMessage:
    """A full-dataset VehiclePositions feed, one entity per vehicle.

    Parameters
    ----------
    vehicles : iterable of VehicleSnapshot
        Latest positions.
    timestamp_s : float
        Feed creation time (epoch s).
    """
    msg = gtfs_realtime_pb2.FeedMessage()
    _header(msg, timestamp_s)
    for v in vehicles:
        entity = msg.entity.add()
        entity.id = f"vehicle:{v.vehicle_id}"
        vp = entity.vehicle
        if v.trip_id:
            _trip(vp.trip, v.trip_id, v.route_id, v.start_date, v.start_time)
        vp.vehicle.id = v.vehicle_id
        if v.label:
            vp.vehicle.label = v.label
        vp.position.latitude = v.lat
        vp.position.longitude = v.lon
        if v.bearing is not None:
            vp.position.bearing = v.bearing
        if v.speed_mps is not None:
            vp.position.speed = v.speed_mps
        vp.timestamp = int(v.observed_s)
        if v.current_stop_sequence is not None:
            vp.current_stop_sequence = v.current_stop_sequence
            vp.current_status = gtfs_realtime_pb2.VehiclePosition.IN_TRANSIT_TO
        if v.stop_id:
            vp.stop_id = v.stop_id
        if v.occupancy:
            vp.occupancy_status = gtfs_realtime_pb2.VehiclePosition.OccupancyStatus.Value(v.occupancy)
    return msg


def trip_updates_feed(trips: Iterable[TripUpdate], timestamp_s: float) -> gtfs_realtime_pb2.FeedMessage:
    """A full-dataset TripUpdates feed, one entity per trip run, stops in sequence order.

    Arrival/departure events carry absolute ``time`` (epoch s), ``delay`` (s, late
    positive) when known and ``uncertainty`` (s) when known.
    """
    msg = gtfs_realtime_pb2.FeedMessage()
    _header(msg, timestamp_s)
    for t in trips:
        entity = msg.entity.add()
        entity.id = f"trip:{t.start_date:%Y%m%d}:{t.trip_id}" + (f"#{t.start_time}" if t.start_time else "")
        tu = entity.trip_update
        _trip(tu.trip, t.trip_id, t.route_id, t.start_date, t.start_time)
        if t.direction_id is not None:
            tu.trip.direction_id = t.direction_id
        if t.vehicle_id:
            tu.vehicle.id = t.vehicle_id
        tu.timestamp = int(t.observed_s)
        for s in sorted(t.stops, key=lambda s: s.stop_sequence):
            stu = tu.stop_time_update.add()
            stu.stop_sequence = s.stop_sequence
            stu.stop_id = s.stop_id
            for event, when in ((stu.arrival, s.arrival_s), (stu.departure, s.departure_s)):
                event.time = round(when)
                if s.delay_s is not None:
                    event.delay = round(s.delay_s)
                if s.uncertainty_s is not None:
                    event.uncertainty = max(0, round(s.uncertainty_s))
            stu.schedule_relationship = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate.SCHEDULED
    return msg


def to_bytes(msg: gtfs_realtime_pb2.FeedMessage) -> bytes:
    """The protobuf wire form (``application/x-protobuf``)."""
    return bytes(msg.SerializeToString())


def to_json(msg: gtfs_realtime_pb2.FeedMessage) -> dict[str, Any]:
    """The protobuf JSON mapping with the spec's field names (``trip_id``, not ``tripId``)."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)

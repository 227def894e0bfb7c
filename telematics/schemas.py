"""Response models of the arrivals API (``telematics.api``): the OpenAPI contract of the JSON the
routes send.

The routes answer from pre-serialised memory (orjson bytes); these models document those bytes
and are never used to validate a request's answer (the schemathesis test checks the real
answers against them). Times are ISO 8601 UTC strings, positions WGS84 degrees.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AdviceDecision",
    "AdviceList",
    "Arrival",
    "AuditEntry",
    "AuditList",
    "GtfsRtFeed",
    "HoldingAdvice",
    "RouteInfo",
    "RouteList",
    "RouteVehicles",
    "Stop",
    "StopArrivals",
    "StopList",
    "StopNear",
    "Vehicle",
    "VehicleList",
    "VehicleSummary",
]

Lat = Field(ge=-90, le=90, description="Latitude, WGS84 degrees.")
Lon = Field(ge=-180, le=180, description="Longitude, WGS84 degrees.")


class Stop(BaseModel):
    """A stop of an imported GTFS feed."""

    stop_id: str = Field(description="GTFS `stop_id`.")
    agency: str = Field(description="Platform agency id the feed was imported under.")
    code: str = Field(description="GTFS `stop_code` (empty when the feed has none).")
    name: str = Field(description="GTFS `stop_name`.")
    lat: float = Lat
    lon: float = Lon
    routes: list[str] = Field(description="`route_id`s of the routes serving the stop, sorted.")


class StopNear(Stop):
    """A stop found near a point."""

    distance_m: float = Field(ge=0, description="Straight-line distance from the query point, metres (0.1 m).")


class StopList(BaseModel):
    """Stops near a point, nearest first."""

    stops: list[StopNear]


class Arrival(BaseModel):
    """One upcoming arrival of a trip at the stop: predicted when a fresh vehicle runs (or will
    next run, in its block) the trip, otherwise scheduled with a ``fallback`` reason."""

    route_id: str = Field(description="GTFS `route_id`.")
    route_name: str = Field(description="Route short name (or long name).")
    trip_id: str = Field(description="GTFS `trip_id`.")
    service_date: dt.date = Field(description="Service day of the trip (local to the agency).")
    headsign: str = Field(description="GTFS `trip_headsign` (may be empty).")
    stop_sequence: int = Field(description="GTFS `stop_sequence` of this stop in the trip.")
    scheduled_arrival: dt.datetime = Field(description="Timetable arrival, ISO 8601 UTC.")
    scheduled_departure: dt.datetime = Field(description="Timetable departure, ISO 8601 UTC.")
    predicted: bool = Field(description="True when the times below come from a live vehicle.")
    vehicle_id: str | None = Field(description="Vehicle running (or due to run) the trip, if known.")
    predicted_arrival: dt.datetime | None = Field(description="Predicted arrival, ISO 8601 UTC (null: scheduled only).")
    predicted_departure: dt.datetime | None = Field(description="Predicted departure, ISO 8601 UTC.")
    delay_s: int | None = Field(description="Predicted minus scheduled arrival, seconds (positive: late).")
    p10_arrival: dt.datetime | None = Field(description="10th percentile of the predicted arrival, ISO 8601 UTC.")
    p90_arrival: dt.datetime | None = Field(description="90th percentile of the predicted arrival, ISO 8601 UTC.")
    distance_m: float | None = Field(description="Distance the vehicle still travels to the stop along the route, metres.")
    stops_away: int | None = Field(description="Stops between the vehicle and this stop.")
    observed_at: dt.datetime | None = Field(description="The vehicle's last position report, ISO 8601 UTC.")
    fallback: Literal["stale_vehicle", "no_vehicle"] | None = Field(
        description="Why the arrival is scheduled only: the trip's vehicle is silent longer than "
                    "`ITS_TELEMATICS_STALE_AFTER_S` (`stale_vehicle`) or none runs it (`no_vehicle`); null when predicted.")
    age_s: float | None = Field(description="Seconds since `observed_at` at the time of the answer.")


class StopArrivals(BaseModel):
    """The arrivals board of a stop."""

    stop: Stop
    generated_at: dt.datetime = Field(description="When the board was computed, ISO 8601 UTC.")
    arrivals: list[Arrival] = Field(description="Arrivals within the window, soonest first.")


class RouteInfo(BaseModel):
    """A route of an imported GTFS feed."""

    route_id: str = Field(description="GTFS `route_id`.")
    agency: str = Field(description="Platform agency id.")
    short_name: str = Field(description="GTFS `route_short_name` (may be empty).")
    long_name: str = Field(description="GTFS `route_long_name` (may be empty).")
    type: int = Field(description="GTFS `route_type` (3 = bus).")
    color: str = Field(description="GTFS `route_color`, hex without `#` (may be empty).")
    text_color: str = Field(description="GTFS `route_text_color`, hex without `#` (may be empty).")


class RouteList(BaseModel):
    """Every route, by agency and id."""

    routes: list[RouteInfo]


class Vehicle(BaseModel):
    """A vehicle's latest position, trip, progress and delay."""

    vehicle_id: str = Field(description="Vehicle id from the position topic.")
    agency: str = Field(description="Platform agency id.")
    lat: float = Lat
    lon: float = Lon
    bearing: float | None = Field(description="Heading, degrees clockwise from north.")
    speed_mps: float | None = Field(description="Reported speed, m/s.")
    occupancy: str | None = Field(description="GTFS-realtime `OccupancyStatus` name, if reported.")
    trip_id: str | None = Field(description="Trip the vehicle runs (reported or matched).")
    route_id: str | None = Field(description="Route of that trip.")
    service_date: dt.date | None = Field(description="Service day of the trip.")
    next_stop_id: str | None = Field(description="Next stop of the trip.")
    next_stop_sequence: int | None = Field(description="`stop_sequence` of the next stop.")
    distance_along_m: float | None = Field(description="Distance travelled along the trip's shape, metres.")
    offset_m: float | None = Field(description="Distance of the position from the shape, metres.")
    delay_s: int | None = Field(description="Current delay, seconds (positive: late).")
    observed_at: dt.datetime | None = Field(description="Time of the position report, ISO 8601 UTC.")
    stale: bool = Field(description="Silent longer than `ITS_TELEMATICS_STALE_AFTER_S`.")
    age_s: float | None = Field(description="Seconds since `observed_at`.")


class RouteVehicles(BaseModel):
    """A route and the fresh vehicles running its trips."""

    route: RouteInfo
    vehicles: list[Vehicle]


class VehicleSummary(BaseModel):
    """A vehicle in the fleet list."""

    vehicle_id: str = Field(description="Vehicle id.")
    agency: str = Field(description="Platform agency id.")
    route_id: str | None = Field(description="Route of its trip.")
    trip_id: str | None = Field(description="Trip it runs.")
    lat: float = Lat
    lon: float = Lon
    bearing: float | None = Field(description="Heading, degrees clockwise from north.")
    delay_s: int | None = Field(description="Current delay, seconds (positive: late).")
    updated_at: dt.datetime | None = Field(description="Its last position report, ISO 8601 UTC.")
    age_s: float = Field(ge=0, description="Seconds since `updated_at`.")
    stale: bool = Field(description="Silent longer than `ITS_TELEMATICS_STALE_AFTER_S`.")


class VehicleList(BaseModel):
    """Every vehicle in memory (silent up to 2 h), by agency and id."""

    vehicles: list[VehicleSummary]


class GtfsRtHeader(BaseModel):
    """GTFS-realtime `FeedHeader`."""

    gtfs_realtime_version: str = Field(description="`2.0`.")
    incrementality: Literal["FULL_DATASET", "DIFFERENTIAL"] | None = Field(None, description="Always `FULL_DATASET`.")
    timestamp: str | None = Field(None, description="Feed time, POSIX seconds (a string: uint64 in the protobuf JSON mapping).")


class GtfsRtEntity(BaseModel):
    """GTFS-realtime `FeedEntity` in the protobuf JSON mapping (spec field names)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="Entity id.")
    trip_update: dict[str, Any] | None = Field(None, description="`TripUpdate` (trip-updates feed).")
    vehicle: dict[str, Any] | None = Field(None, description="`VehiclePosition` (vehicle-positions feed).")


class GtfsRtFeed(BaseModel):
    """A GTFS-realtime 2.0 `FeedMessage` as JSON (``?format=json``); the default answer is the
    protobuf wire form (``application/x-protobuf``)."""

    header: GtfsRtHeader
    entity: list[GtfsRtEntity] = Field(default_factory=list, description="Absent when the feed is empty.")


class HoldingAdvice(BaseModel):
    """A recommended hold of one bus at its next control stop (`telematics.holding_live`),
    with the dispatchers' decision on it."""

    advice_id: str = Field(description="Id of the advice: one per vehicle, trip, service day and stop.")
    agency: str = Field(description="Platform agency id.")
    vehicle_id: str = Field(description="The bus.")
    route_id: str = Field(description="GTFS `route_id` of its trip.")
    trip_id: str = Field(description="GTFS `trip_id` it runs.")
    service_date: dt.date = Field(description="Service day of the trip.")
    stop_id: str = Field(description="The control stop where to hold.")
    stop_sequence: int = Field(description="GTFS `stop_sequence` of that stop in the trip.")
    stop_name: str = Field(description="Its name (may be empty).")
    hold_s: int = Field(ge=0, description="How long to hold after arriving there, seconds.")
    arrive_at: dt.datetime = Field(description="Predicted arrival at the stop, ISO 8601 UTC.")
    depart_at: dt.datetime = Field(description="When to leave it (arrival + hold), ISO 8601 UTC.")
    scheduled_departure: dt.datetime = Field(description="The trip's scheduled departure there, ISO 8601 UTC.")
    forward_headway_s: int | None = Field(description="Seconds from the bus ahead's departure to this bus's arrival "
                                                      "(null: no bus ahead known, one scheduled headway assumed).")
    backward_headway_s: int | None = Field(description="Seconds from this bus's arrival to the bus behind's "
                                                       "(null: none known, one scheduled headway assumed).")
    scheduled_headway_s: int = Field(description="Scheduled headway at the stop around that time, seconds.")
    frequent: bool = Field(description="Headway-managed there (scheduled headway at most "
                                       "`ITS_TELEMATICS_HOLDING_FREQUENT_HEADWAY_S`); false: never past the "
                                       "scheduled departure, so a late bus is never held.")
    cap_s: int = Field(ge=0, description="Longest hold allowed there, seconds.")
    at_origin: bool = Field(description="The stop is the trip's first (a terminal departure).")
    control: str = Field(description="How the route's control stops are chosen: `timepoints` (GTFS "
                                     "`stop_times.timepoint`), `route list` (`ITS_TELEMATICS_HOLDING_ROUTES`) or "
                                     "`first stop and every 480 s of schedule` (a feed without timepoints).")
    reason: str = Field(description="Why, in words.")
    status: Literal["advised", "accepted", "dismissed"] = Field(description="The dispatchers' decision so far.")
    issued_at: dt.datetime = Field(description="When this advice was first given, ISO 8601 UTC.")
    computed_at: dt.datetime = Field(description="When its hold was last computed, ISO 8601 UTC.")
    decided_by: str | None = Field(description="Who accepted or dismissed it (null: nobody yet).")
    decided_at: dt.datetime | None = Field(description="When, ISO 8601 UTC.")
    published: bool = Field(description="Retained on the vehicle's `its/v1/vehicles/{agency}/{vehicle_id}/advice` topic.")


class AdviceList(BaseModel):
    """The current holding advice, by agency, route and vehicle."""

    generated_at: dt.datetime = Field(description="When the advice was computed (the arrivals refresh), ISO 8601 UTC.")
    version: int = Field(ge=0, description="Changes with every refresh and decision.")
    advice: list[HoldingAdvice]


class AdviceDecision(BaseModel):
    """A dispatcher's decision on an advice."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "dismiss"] = Field(description="`accept` (the bus holds) or `dismiss` (it does not: "
                                                             "the vehicle's advice topic is cleared).")


class AuditEntry(BaseModel):
    """A decision on a holding advice, as the audit log keeps it."""

    log_id: int = Field(description="Row id.")
    decided_at: dt.datetime = Field(description="When, ISO 8601 UTC.")
    action: Literal["accepted", "dismissed"] = Field(description="What was decided.")
    actor: str = Field(description="The dispatcher's user name.")
    advice_id: str = Field(description="The advice.")
    agency: str = Field(description="Platform agency id.")
    vehicle_id: str = Field(description="The bus.")
    route_id: str = Field(description="GTFS `route_id`.")
    trip_id: str = Field(description="GTFS `trip_id`.")
    service_date: dt.date = Field(description="Service day of the trip.")
    stop_id: str = Field(description="The control stop.")
    stop_sequence: int = Field(description="Its GTFS `stop_sequence`.")
    hold_s: float = Field(ge=0, description="The advised hold then, seconds.")
    forward_headway_s: float | None = Field(description="Gap to the bus ahead then, seconds.")
    backward_headway_s: float | None = Field(description="Gap to the bus behind then, seconds.")
    scheduled_headway_s: float | None = Field(description="Scheduled headway there, seconds.")
    issued_at: dt.datetime = Field(description="When the advice was first given, ISO 8601 UTC.")
    reason: str = Field(description="The advice's reason then.")


class AuditList(BaseModel):
    """Decisions on holding advice, newest first."""

    entries: list[AuditEntry]

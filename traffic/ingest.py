"""The live messages the traffic service consumes, read through their owners' parsers.

The traffic domain stores nothing from MQTT itself: positions are persisted by telematics
(``vehicle_positions``) and counts by video (``traffic_counts``); the service subscribes
live and reads each message with the one parser of the domain that defines its topic
(`telematics.ingest.parse_json_position`, `telematics.ingest.parse_gtfsrt_position`,
`video.ingest.parse_counts`), so a message the collector dead-letters is ignored here too.
Hence ``ROUTES`` is empty. The traffic domain defines one topic of its own: the incidents
it publishes (`INCIDENTS_TOPIC`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from its.domain import Field, Topic
from its.ingest import Route
from telematics.ingest import PositionRow
from video.ingest import CountRow

__all__ = ["INCIDENTS_TOPIC", "ROUTES", "CountMessage", "PositionMessage", "count_message", "position_message"]

ROUTES: list[Route] = []

INCIDENTS_TOPIC = Topic(
    filter="its/v1/state/traffic/incidents",
    summary="The active traffic incidents the platform detects (retained).",
    publisher="the platform (`its serve`)",
    fields=(Field("incidents", "list", "edge, start time, speed ratio of each active incident"),),
    retained=True)


@dataclass(frozen=True, slots=True)
class PositionMessage:
    """One vehicle position: ``vehicle`` = ``agency/vehicle_id``, time in UTC epoch s."""

    vehicle: str
    time_s: float
    lon: float
    lat: float
    heading_deg: float


@dataclass(frozen=True, slots=True)
class CountMessage:
    """One camera count interval (one vehicle class); times in epoch s, speed in m/s."""

    camera_id: str
    line_id: str
    direction: str
    interval_start_s: float
    interval_s: float
    count: float
    mean_speed_mps: float


def position_message(row: PositionRow) -> PositionMessage:
    """A parsed position row as the traffic service keeps it (bearing NaN when unknown)."""
    return PositionMessage(
        vehicle=f"{row.agency}/{row.vehicle_id}", time_s=row.time.timestamp(), lon=row.lon, lat=row.lat,
        heading_deg=math.nan if row.bearing is None else float(row.bearing))


def count_message(row: CountRow) -> CountMessage:
    """A parsed camera count row as the traffic service keeps it (speed NaN when unknown)."""
    return CountMessage(
        camera_id=row.camera_id, line_id=row.line_id, direction=row.direction,
        interval_start_s=row.interval_start.timestamp(), interval_s=float(row.interval_s), count=float(row.count),
        mean_speed_mps=math.nan if row.mean_speed_mps is None else float(row.mean_speed_mps))

"""Response models of ``/v1/traffic`` (``traffic.api``): the OpenAPI contract of the JSON the
routes send (documentation only; answers are not validated per request). Speeds m/s, times s,
lengths m, positions WGS84 degrees; every answer carries the estimate's freshness."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CongestionCollection",
    "EdgeCongestion",
    "Incident",
    "IncidentList",
    "Indices",
    "TravelTime",
    "TtiHistory",
]


class Freshness(BaseModel):
    """When the congestion estimate the answer comes from was computed."""

    observed_at: dt.datetime = Field(description="Time of the estimate, ISO 8601 UTC (whole seconds).")
    age_s: float = Field(ge=0, description="Seconds since `observed_at` (0.1 s).")


class LineString(BaseModel):
    """GeoJSON LineString, ``[lon, lat]`` pairs in WGS84 degrees (6 decimals)."""

    type: Literal["LineString"]
    coordinates: list[list[float]]


class EdgeCongestion(BaseModel):
    """Properties of one road edge: its attributes and current estimate (null where unknown)."""

    model_config = ConfigDict(extra="allow")

    edge: int = Field(ge=0, description="Edge index in the road network.")
    road_class: str | None = Field(description="Road class (OSM highway class or `bus_route`).")
    name: str | None = Field(description="Street name (may be empty).")
    length_m: float | None = Field(description="Length, metres (0.1 m).")
    freeflow_mps: float | None = Field(description="Free-flow speed, m/s.")
    lanes: int | None = Field(description="Lanes.")
    oneway: bool | None = Field(description="One-way edge.")
    speed_mps: float | None = Field(description="Estimated current speed, m/s.")
    usual_mps: float | None = Field(description="Usual speed for this time of the week, m/s.")
    confidence: float | None = Field(description="Confidence of the estimate, 0-1.")
    travel_time_s: float | None = Field(description="Current travel time of the edge, seconds.")
    level: Literal["free", "moderate", "heavy", "jammed"] | None = Field(description="Congestion level.")
    share_probe: float | None = Field(description="Share of the estimate from vehicle probes, 0-1.")
    share_flow: float | None = Field(description="Share from camera/detector flows, 0-1.")
    share_propagated: float | None = Field(description="Share propagated from neighbouring edges, 0-1.")
    share_historical: float | None = Field(description="Share from the historical profile, 0-1.")


class EdgeFeature(BaseModel):
    """GeoJSON Feature of one edge; ``id`` is the edge index."""

    type: Literal["Feature"]
    id: int = Field(ge=0, description="Edge index.")
    geometry: LineString
    properties: EdgeCongestion


class CongestionCollection(Freshness):
    """GeoJSON FeatureCollection of the road edges (within ``bbox`` when given) with their current
    speed, level, confidence and source mix (``application/geo+json``)."""

    type: Literal["FeatureCollection"]
    features: list[EdgeFeature]


class Incident(BaseModel):
    """An edge or corridor far below its usual speed for this time of day."""

    kind: Literal["edge", "corridor"] = Field(description="What is slow.")
    subject: str = Field(description="Edge index or corridor (street) name.")
    speed_mps: float = Field(description="Current speed, m/s (0.01).")
    usual_mps: float = Field(description="Usual speed, m/s (0.01).")
    ratio: float = Field(description="`speed_mps / usual_mps` (0.001).")
    confidence: float = Field(description="Confidence of the current speed, 0-1.")
    lat: float = Field(description="Where, latitude in degrees.")
    lon: float = Field(description="Where, longitude in degrees.")
    edges: list[int] = Field(description="Edge indices involved (at most 50).")


class IncidentList(Freshness):
    """Current incidents."""

    incidents: list[Incident]


class CorridorIndex(BaseModel):
    """Travel time index of one corridor (a named street)."""

    name: str = Field(description="Street name.")
    tti: float = Field(description="Current / free-flow travel time (0.0001); 1 = free flow.")
    length_m: float = Field(description="Corridor length, metres.")


class AreaIndex(BaseModel):
    """Travel time index of one area (a grid cell of the network)."""

    area: int = Field(description="Area id.")
    tti: float = Field(description="Current / free-flow travel time; 1 = free flow.")
    edges: int = Field(ge=0, description="Edges in the area.")


class Indices(Freshness):
    """Travel time index of the network, worst corridors and areas first."""

    network_tti: float = Field(description="Length-weighted travel time index of the whole network.")
    corridors: list[CorridorIndex]
    areas: list[AreaIndex]


class TtiPoint(BaseModel):
    """One bucket of the travel time index series."""

    time: dt.datetime = Field(description="Bucket start, ISO 8601 UTC.")
    tti: float = Field(description="Mean travel time index in the bucket (0.0001).")


class TtiHistory(Freshness):
    """Travel time index over time, oldest first."""

    network: str = Field(description="Road network name.")
    scope: Literal["network", "corridor", "area"] = Field(description="What the series is of.")
    subject: str | int | None = Field(description="Corridor name or area id (null for the network).")
    hours: float = Field(description="Window ending now, hours.")
    step_s: int = Field(description="Bucket width, seconds.")
    points: list[TtiPoint]


class LatLon(BaseModel):
    """A point in WGS84 degrees."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class TravelTime(Freshness):
    """The fastest route under current congestion between two points."""

    model_config = ConfigDict(populate_by_name=True)

    from_: LatLon = Field(alias="from", description="Origin as asked.")
    to: LatLon = Field(description="Destination as asked.")
    length_m: float = Field(ge=0, description="Route length, metres (0.1 m).")
    travel_time_s: float = Field(ge=0, description="Travel time at current speeds, seconds (0.1 s).")
    freeflow_time_s: float = Field(ge=0, description="Travel time at free-flow speeds, seconds (0.1 s).")
    edges: list[int] = Field(description="Edge indices of the route, in order.")
    geometry: LineString

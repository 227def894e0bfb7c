"""Response models of ``/v1/cameras`` (``video.api``): the OpenAPI contract of the JSON the routes
send (documentation only; answers are not validated per request). Times ISO 8601 UTC,
positions WGS84 degrees, speeds km/h."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Camera", "CameraDetail", "CameraList", "LineCount", "PeopleCounts", "PeopleCrossing", "PeoplePresent"]


class Camera(BaseModel):
    """A camera, its status and the freshness of its counts."""

    camera_id: str = Field(description="Camera id from cameras.yaml.")
    online: bool | None = Field(description="Last status message of the camera worker (null: none seen).")
    status_at: dt.datetime | None = Field(description="When that status was received.")
    observed_at: dt.datetime | None = Field(description="End of the newest counting interval (vehicles or people).")
    age_s: float | None = Field(description="Seconds since `observed_at` (0.1 s).")
    stale: bool = Field(description="No counts, or older than `ITS_VIDEO_STALE_AFTER_S`.")
    lines: list[str] = Field(description="Counting line ids with counts.")
    lat: float | None = Field(ge=-90, le=90, description="Mean latitude of its counting lines as placed on the road "
                                                        "network, degrees (null: not placed).")
    lon: float | None = Field(ge=-180, le=180, description="Mean longitude, degrees (null: not placed).")
    synthetic: bool = Field(default=False, description="True: the camera shows a scene rendered by the platform "
                                                        "(video.synthetic), not real footage.")
    description: str | None = Field(default=None, description="Text from the camera's configuration.")


class CameraList(BaseModel):
    """Every known camera, by id."""

    cameras: list[Camera]


class LineCount(BaseModel):
    """Vehicles of one class crossing one line in one direction during the latest interval."""

    line_id: str = Field(description="Counting line id.")
    direction: Literal["in", "out"] = Field(description="`in`: crossing from the line's left to its right on screen.")
    vehicle_class: Literal["car", "truck_bus", "motorcycle"] = Field(description="Vehicle class.")
    count: int = Field(ge=0, description="Vehicles counted in the interval.")
    mean_speed_kmh: float | None = Field(description="Mean speed, km/h (null: not measured).")
    occupancy: float | None = Field(ge=0, le=1, description="Share of the interval the line was occupied (0-1).")


class PeoplePresent(BaseModel):
    """People present in one zone during the latest people interval."""

    zone_id: str = Field(description="Zone id (`all`: the camera's whole region of interest).")
    people_mean: float = Field(ge=0, description="Mean people present over the interval, people.")
    people_max: float = Field(ge=0, description="Most people present in one estimate, people.")
    samples: int = Field(ge=1, description="People estimates in the interval.")


class PeopleCrossing(BaseModel):
    """People crossing one people-counting line in one direction during the latest people interval."""

    line_id: str = Field(description="People-counting line id (`people_lines` in cameras.yaml).")
    direction: Literal["in", "out"] = Field(description="`in`: crossing from the line's left to its right on screen.")
    crossings: float = Field(ge=0, description="People who crossed, estimated from density and optical flow "
                                               "(fractional).")


class PeopleCounts(BaseModel):
    """Pedestrians seen by the camera in its latest people interval (separate from vehicles)."""

    interval_start: dt.datetime = Field(description="Start of the latest people interval.")
    interval_s: int = Field(description="Length of the interval, seconds.")
    crossings_measured: bool = Field(description="Whether line crossings were measured; false: zone-only (no people "
                                                 "lines, or frames more than 0.25 s apart).")
    zones: list[PeoplePresent] = Field(description="People present per zone.")
    lines: list[PeopleCrossing] = Field(description="People crossing per line and direction (empty when zone-only).")


class CameraDetail(Camera):
    """A camera with the counts of its latest interval."""

    snapshot_at: dt.datetime | None = Field(description="When the latest annotated snapshot was taken (null: none).")
    interval_start: dt.datetime | None = Field(description="Start of the latest counting interval.")
    interval_s: int | None = Field(description="Length of the interval, seconds.")
    counts: list[LineCount] = Field(description="Vehicles by line, direction and class.")
    people: PeopleCounts | None = Field(description="Pedestrians of the latest people interval (null: the camera "
                                                    "has no people model or sent none).")

"""Response models of ``/v1/parking`` (``parking.api``): the OpenAPI contract of the JSON the
routes send.

The hot routes answer pre-serialised bytes from memory; these models document them and never
validate an answer per request (the schemathesis test checks real answers against them).
Counts are spaces, times ISO 8601 with offset, positions WGS84 degrees.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AvailabilitySnapshot",
    "BucketRecord",
    "Datex2Publication",
    "ForecastPoint",
    "GuidanceAnswer",
    "GuidanceSite",
    "RawRecord",
    "Site",
    "SiteAvailability",
    "SiteForecast",
    "SiteHistory",
    "SiteList",
    "SiteNear",
]

Status = Literal["spacesAvailable", "almostFull", "full", "closed", "unknown"]
VehicleTypeName = Literal["car", "disabled", "ev", "motorcycle"]


class SiteAvailability(BaseModel):
    """Current availability of a site (DATEX II status terms)."""

    site_id: str = Field(description="Site id.")
    capacity: int = Field(ge=0, description="Spaces in total.")
    occupied: int | None = Field(description="Occupied spaces among those whose state is known; null when nothing is known.")
    free: int | None = Field(description="Free spaces among those whose state is known; null when nothing is known.")
    unknown: int = Field(ge=0, description="Spaces whose state is unknown (stale or offline sensors).")
    status: Status = Field(description="`closed` outside opening hours; `unknown` without (enough) data; `full`, "
                                       "`almostFull` (`ITS_PARKING_ALMOST_FULL_RATIO`) or `spacesAvailable`.")
    observed_at: dt.datetime | None = Field(description="Source time of the newest input used, ISO 8601.")
    age_s: float | None = Field(description="Seconds since `observed_at` at the time of the answer.")
    flags: list[str] = Field(description="Quality flags: `no_data`, `stale_count`, `stale_sensors`, "
                                         "`clamped_over_capacity`, `clamped_negative`, `counter_drift_corrected`, "
                                         "`duplicates_ignored`.")
    free_by_type: dict[str, int] = Field(description="Free spaces per vehicle type where sensors know each space's type.")


class Site(BaseModel):
    """A parking site with its current availability."""

    site_id: str = Field(description="Site id.")
    name: str = Field(description="Display name.")
    kind: Literal["off-street", "on-street"] = Field(description="A counted lot or a zone of sensed street spaces.")
    lat: float = Field(ge=-90, le=90, description="Representative point latitude, WGS84 degrees.")
    lon: float = Field(ge=-180, le=180, description="Representative point longitude, WGS84 degrees.")
    geometry: dict[str, Any] = Field(description="GeoJSON Point or Polygon of the site (WGS84).")
    capacity_by_type: dict[VehicleTypeName, int] = Field(description="Spaces per vehicle type (`car` holds the rest).")
    opening_hours: str | None = Field(description="OpenStreetMap `opening_hours` syntax; null: always open.")
    tariff: str | None = Field(description="Free-text tariff.")
    availability: SiteAvailability


class SiteNear(Site):
    """A site found near a point."""

    distance_m: float = Field(ge=0, description="Straight-line distance from the query point, metres (0.1 m).")


class SiteList(BaseModel):
    """Sites near a point, nearest first."""

    sites: list[SiteNear]
    count: int = Field(ge=0, description="Number of sites returned.")


class RawRecord(BaseModel):
    """One stored availability record (``interval=raw``)."""

    time: dt.datetime = Field(description="Record time, ISO 8601.")
    capacity: int = Field(description="Spaces in total.")
    occupied: int | None = Field(description="Occupied spaces.")
    free: int | None = Field(description="Free spaces.")
    unknown: int | None = Field(description="Spaces of unknown state.")
    status: str | None = Field(description="Status as in `SiteAvailability.status`.")


class BucketRecord(BaseModel):
    """Means over one bucket (``interval`` = `15m`, `1h`, `1d`)."""

    time: dt.datetime = Field(description="Bucket start, ISO 8601.")
    capacity: int | None = Field(description="Spaces in total (largest in the bucket).")
    mean_occupied: float | None = Field(description="Mean occupied spaces (0.01).")
    mean_free: float | None = Field(description="Mean free spaces (0.01).")
    min_free: int | None = Field(description="Fewest free spaces.")
    max_free: int | None = Field(description="Most free spaces.")
    readings: int = Field(ge=0, description="Records in the bucket.")


class SiteHistory(BaseModel):
    """Occupancy history of a site over ``[from, to)``, oldest first (at most 10,000 records)."""

    model_config = ConfigDict(populate_by_name=True)

    site_id: str = Field(description="Site id.")
    from_: dt.datetime = Field(alias="from", description="Start of the window, ISO 8601.")
    to: dt.datetime = Field(description="End of the window (excluded), ISO 8601.")
    interval: Literal["raw", "15m", "1h", "1d"] = Field(description="Bucket width, or `raw` records.")
    records: list[RawRecord | BucketRecord] = Field(
        description="`RawRecord`s for `interval=raw`, else one `BucketRecord` per non-empty bucket, oldest first.")


class ForecastPoint(BaseModel):
    """Free spaces expected at one horizon, with an uncertainty band."""

    horizon_min: int = Field(description="Minutes after `observed_at`: 15, 30 or 60.")
    at: dt.datetime | None = Field(None, description="`observed_at` + horizon, ISO 8601 (absent without an observation).")
    free: int | None = Field(description="Expected free spaces; null with `reason` when no forecast is made.")
    free_low: int | None = Field(description="Lower end of the band, spaces.")
    free_high: int | None = Field(description="Upper end of the band, spaces.")
    reason: str | None = Field(description="Why there is no forecast (null when there is one).")


class SiteForecast(BaseModel):
    """Free-space forecasts of a site from its current observation."""

    site_id: str = Field(description="Site id.")
    capacity: int = Field(ge=0, description="Spaces in total.")
    observed_at: dt.datetime | None = Field(description="Observation the forecasts start from, ISO 8601.")
    forecasts: list[ForecastPoint]


class AvailabilitySnapshot(BaseModel):
    """Bulk availability of every site (``ETag`` changes only with the content)."""

    generated_at: dt.datetime = Field(description="When the snapshot was built, ISO 8601.")
    sites: list[SiteAvailability]


class Datex2Publication(BaseModel):
    """Current availability as a DATEX II (Parking Publication Light compatible) document:
    ``parkingPublicationLight`` with ``publicationTime`` and one ``parkingSite`` per site
    (``parkingSiteStatus``, ``numberOfSpaces``, occupancy where known)."""

    model_config = ConfigDict(extra="allow")


class GuidanceSite(BaseModel):
    """A ranked site of a guidance answer."""

    site_id: str = Field(description="Site id.")
    name: str = Field(description="Site name.")
    lat: float = Field(description="WGS84 degrees.")
    lon: float = Field(description="WGS84 degrees.")
    distance_m: float = Field(description="From the requested point (m).")
    status: str = Field(description="DATEX II status now.")
    free_now: int = Field(description="Free spaces now (spaces).")
    observed_at: dt.datetime | None = Field(description="Time of the reading the forecast starts from (UTC).")
    expected_free: int = Field(description="Free spaces expected on arrival (spaces); the current ones without a forecast.")
    probability: float | None = Field(
        description="Chance of at least one free space on arrival, from the forecast and its past errors (0-1);"
                    " null without a forecast.")
    reason: str | None = Field(default=None, description="Why there is no probability.")


class GuidanceAnswer(BaseModel):
    """Sites ranked for a driver arriving at a point: by the chance of a free space on arrival
    (rounded to ``ITS_PARKING_GUIDANCE_PROBABILITY_STEP``), then by distance."""

    generated_at: dt.datetime = Field(description="When the answer was computed (UTC).")
    arrive_at: dt.datetime = Field(description="Arrival time assumed (UTC).")
    arrive_in_min: float = Field(description="Minutes from now to the arrival (min).")
    vehicle_type: VehicleTypeName | None = Field(description="Only sites with spaces for this type; null: any.")
    radius_m: float = Field(description="Search radius (m).")
    sites: list[GuidanceSite] = Field(description="The ranked sites, best first.")
    count: int = Field(description="Number of sites (sites).")

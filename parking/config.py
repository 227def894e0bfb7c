"""Parking thresholds and tunables, read from ``ITS_PARKING_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ParkingSettings", "get_parking_settings"]


class ParkingSettings(BaseSettings):
    """Thresholds of the parking domain; every field maps to ``ITS_PARKING_<FIELD_NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ITS_PARKING_", extra="ignore", frozen=True)

    almost_full_ratio: float = Field(
        default=0.9, gt=0, le=1,
        description="Occupied / capacity at or above which a site is `almostFull` (ratio 0-1).",
    )
    full_free_spaces: int = Field(
        default=0, ge=0, description="A site with at most this many free spaces is `full` (spaces)."
    )
    max_unknown_ratio: float = Field(
        default=0.5, ge=0, le=1,
        description="A site whose unknown spaces exceed this share of capacity is `unknown` (ratio 0-1).",
    )
    sensor_stale_s: float = Field(
        default=900.0, gt=0,
        description="A space sensor silent longer than this is stale; its space counts as unknown (s).",
    )
    counter_stale_s: float = Field(
        default=3600.0, gt=0,
        description="A site whose last count is older than this has status `unknown` (s).",
    )
    timezone: str = Field(
        default="UTC", description="IANA time zone of sites without one, used for opening hours and daily profiles."
    )
    forecast_min_days: int = Field(
        default=7, ge=1,
        description="Days of history a site needs before it is forecast; fewer gives a reason instead (days).",
    )
    forecast_slot_min: int = Field(
        default=30, ge=5, le=120, description="Width of the time-of-day slots of the occupancy profile (min)."
    )
    forecast_band_quantile: float = Field(
        default=0.9, gt=0.5, lt=1,
        description="Central coverage of the forecast uncertainty band (e.g. 0.9 = 5th-95th percentile of past residuals).",
    )
    forecast_issue_interval_s: float = Field(
        default=900.0, ge=1,
        description="Cadence at which the parking service issues and stores +15/+30/+60 min forecasts of every site,"
                    " aligned to multiples of it in UTC; the stored ones are scored in reports (s).",
    )


@lru_cache(maxsize=1)
def get_parking_settings() -> ParkingSettings:
    """Process-wide parking settings (cached)."""
    return ParkingSettings()

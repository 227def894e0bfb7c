"""Parking thresholds and tunables, read from ``ITS_PARKING_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ParkingSettings", "get_parking_settings", "iso3166_codes"]

SYSTEM_ISO3166 = Path("/usr/share/zoneinfo/iso3166.tab")


@lru_cache(maxsize=1)
def iso3166_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 country codes from the time zone database's ``iso3166.tab``.

    Read from the ``tzdata`` package, else from the system's zoneinfo; empty when neither is
    installed (then only the two-letter form is checked).
    """
    try:
        text = resources.files("tzdata").joinpath("zoneinfo", "iso3166.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        text = SYSTEM_ISO3166.read_text(encoding="utf-8") if SYSTEM_ISO3166.is_file() else ""
    return frozenset(line.split("\t", 1)[0] for line in text.splitlines() if line and not line.startswith("#"))


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
    forecast_blend_prior_points: float = Field(
        default=100.0, ge=0,
        description="Shrinkage of a site's forecast blend weights toward all sites': the all-sites mean error"
                    " counts as this many of the site's own past forecasts (forecasts).",
    )
    forecast_blend_decay: float = Field(
        default=0.95, gt=0, le=1,
        description="Per-day forgetting factor of past forecast errors when learning the blend weights"
                    " (1 = never forget; ratio).",
    )
    forecast_issue_interval_s: float = Field(
        default=900.0, ge=1,
        description="Cadence at which the parking service issues and stores +15/+30/+60 min forecasts of every site,"
                    " aligned to multiples of it in UTC; the stored ones are scored in reports (s).",
    )

    country: str = Field(
        default="AU",
        description="ISO 3166-1 alpha-2 code of the country whose sites are published (the demo city, Cairns, is in"
                    " Australia); `publicationCreator.country` of the DATEX II Parking Publication Light export.",
    )
    datex2_publisher: str = Field(
        default="its-platform", min_length=1, max_length=200,
        description="Identifier of the publisher, unique within `country`; `publicationCreator.nationalIdentifier`"
                    " of the DATEX II Parking Publication Light export.",
    )

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        code = value.strip().upper()
        known = iso3166_codes()
        if len(code) != 2 or not code.isascii() or not code.isalpha() or (known and code not in known):
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. AU, GB, BE)")
        return code

    guidance_probability_step: float = Field(
        default=0.05, gt=0, le=1,
        description="Guidance ranks sites by the chance of a free space on arrival rounded to this step, then by"
                    " distance, so that nearly equally likely sites are told apart by distance (probability 0-1).",
    )
    guidance_sign_arrive_min: float = Field(
        default=10.0, ge=0, le=60,
        description="Drive time assumed for the sign texts: alternatives are judged on arriving this much later (min).",
    )
    guidance_sign_radius_m: float = Field(
        default=2000.0, gt=0, description="A sign sends drivers only to sites within this distance of its site (m)."
    )
    guidance_sign_alternatives: int = Field(
        default=2, ge=1, le=5, description="Alternative sites a sign names at most (sites)."
    )
    guidance_sign_min_probability: float = Field(
        default=0.8, ge=0, le=1,
        description="A sign names an alternative only if it has at least this chance of a free space on arrival"
                    " (probability 0-1).",
    )


@lru_cache(maxsize=1)
def get_parking_settings() -> ParkingSettings:
    """Process-wide parking settings (cached)."""
    return ParkingSettings()

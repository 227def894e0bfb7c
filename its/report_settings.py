"""Report thresholds and the nightly report, read from ``ITS_REPORTS_*`` environment variables."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ReportSettings"]


class ReportSettings(BaseSettings):
    """Indicator windows and thresholds; every field maps to ``ITS_REPORTS_<FIELD_NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ITS_REPORTS_", extra="ignore", frozen=True)

    timezone: str = Field(
        default="UTC", description="IANA time zone of report days (`--from`/`--to` dates, nightly report) and of hours of day.")
    nightly_time: str = Field(
        default="02:00", description="Local time (HH:MM, `timezone`) at which `its serve` writes yesterday's report.")
    nightly_formats: str = Field(
        default="html,json,csv,xlsx", description="Comma-separated formats of the nightly report.")
    on_time_early_s: float = Field(
        default=60.0, ge=0, description="A departure up to this much early counts as on time (s).")
    on_time_late_s: float = Field(
        default=300.0, ge=0, description="A departure up to this much late counts as on time (s).")
    frequent_headway_s: float = Field(
        default=720.0, gt=0, description="Routes with a mean scheduled headway at most this are frequent: EWT is reported (s).")
    avl_interval_s: float = Field(
        default=30.0, gt=0, description="Expected interval between AVL pings of a vehicle on duty (s).")
    avl_max_gap_s: float = Field(
        default=300.0, gt=0, description="Ping gaps longer than this do not count towards vehicle-km (s).")
    peak_tti: float = Field(
        default=1.3, gt=1, description="Network travel time index at or above which an hour is `peak` (ratio).")
    parking_checkpoint_s: float = Field(
        default=3600.0, gt=0, description="Interval of the checks averaged into the share of paid spaces connected (s).")
    heartbeat_interval_s: float = Field(
        default=60.0, gt=0, le=60,
        description="Interval at which every API process records a heartbeat (ready or not, requests and 5xx answers"
                    " since the previous one) for API availability, aligned to multiples of it in UTC; at most 60 so"
                    " that every minute of a running process has one (s).")
    html_max_rows: int = Field(
        default=200, ge=1, description="Rows of each table printed in the HTML report (CSV/XLSX have all) (rows).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("nightly_time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError(f"expected HH:MM, got {value!r}")
        return f"{int(m.group(1)):02d}:{m.group(2)}"

    @field_validator("nightly_formats")
    @classmethod
    def _formats(cls, value: str) -> str:
        bad = {f.strip() for f in value.split(",")} - {"html", "json", "csv", "xlsx"}
        if bad:
            raise ValueError(f"unknown report formats {sorted(bad)}; use html, json, csv, xlsx")
        return value

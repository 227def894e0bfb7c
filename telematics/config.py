"""Telematics thresholds, read from ``ITS_TELEMATICS_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["TelematicsSettings"]


class TelematicsSettings(BaseSettings):
    """Thresholds of live arrivals, dispatcher alerts and the fleet simulator."""

    model_config = SettingsConfigDict(env_prefix="ITS_TELEMATICS_", extra="ignore", frozen=True)

    stale_after_s: float = Field(
        default=120.0, gt=0, description="A vehicle silent longer than this (s) is stale: its arrivals fall back to the schedule.")
    board_window_min: int = Field(
        default=120, gt=0, le=1440, description="Arrivals kept per stop, minutes ahead (the `minutes` query is capped by it).")
    board_refresh_s: float = Field(
        default=1.0, gt=0, description="Arrival boards are rebuilt at most this often after a change, and at least every 15 s, s.")
    off_route_m: float = Field(
        default=150.0, gt=0, description="A vehicle farther than this from its trip's path (m) is off route.")
    early_running_s: float = Field(
        default=120.0, gt=0, description="A vehicle this far ahead of schedule (s) is running early.")
    bunching_ratio: float = Field(
        default=0.25, gt=0, lt=1, description="Bunching: actual gap to the vehicle ahead below this share of the scheduled gap.")
    gap_ratio: float = Field(
        default=2.0, gt=1, description="Gap: actual gap to the vehicle ahead above this multiple of the scheduled gap.")
    max_gap_s: float = Field(
        default=300.0, gt=0, description="Pings further apart than this (s) give no interpolated stop passing.")
    history_days: int = Field(
        default=14, ge=0, description="Days of stored stop arrivals the arrival model learns from at start.")
    recent_positions_min: int = Field(
        default=30, ge=0, description="Minutes of stored positions replayed into the live state at start.")

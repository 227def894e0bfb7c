"""Telematics thresholds, read from ``ITS_TELEMATICS_*`` environment variables."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from telematics.holding import (
    DEFAULT_CAP_SHARE,
    DEFAULT_GAIN,
    DEFAULT_ORIGIN_CAP_SHARE,
    FREQUENT_HEADWAY_S,
)

__all__ = ["HoldingRoute", "TelematicsSettings"]


class HoldingRoute(BaseModel):
    """Holding parameters of one route (``ITS_TELEMATICS_HOLDING_ROUTES``); unset fields take
    the ``ITS_TELEMATICS_HOLDING_*`` defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Advise holds on this route at all.")
    gain: float | None = Field(default=None, ge=0, le=1, description="Gain of the headway rule (0-1).")
    cap_share: float | None = Field(default=None, ge=0, le=2, description="Longest hold, share of the scheduled headway.")
    origin_cap_share: float | None = Field(default=None, ge=0, le=2,
                                           description="Longest hold at a trip's first stop, share of the headway.")
    frequent: bool | None = Field(default=None, description="Force headway management on (true) or off (false).")
    control_stops: list[str] | None = Field(default=None, description="Stop ids of the control stops (instead of "
                                                                      "the feed's timepoints).")


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
    max_future_s: float = Field(
        default=300.0, gt=0, description="Positions stamped more than this (s) after the service's clock are not applied to the live state (a unit's clock is wrong); those stamped ahead by less are applied at the clock's time.")
    max_speed_mps: float = Field(
        default=50.0, gt=0, description="A position reached from its vehicle's last plausible one faster than this (m/s; 50 = 180 km/h) is flagged `speed`: not applied live, left out of vehicle-km and AVL completeness, counted in the data-quality table.")
    gps_noise_m: float = Field(
        default=50.0, ge=0, description="Distance two positions may differ by at no time apart (GPS error, m) before the speed check counts it.")
    reanchor_fixes: int = Field(
        default=3, ge=2, description="After this many consecutive `speed`-flagged positions that are plausible one from the next, the vehicle is taken to be where they say.")
    service_area: tuple[float, float, float, float] | None = Field(
        default=None, description="Where vehicles may be, `[west, south, east, north]` degrees (JSON); positions outside are flagged `area`. Unset: each agency's GTFS stops' bounding box widened by `service_area_margin_m`.")
    service_area_margin_m: float = Field(
        default=5000.0, ge=0, description="Margin around an agency's stops (m) of its default service area (depots, detours).")
    recent_positions_min: int = Field(
        default=30, ge=0, description="Minutes of stored positions replayed into the live state at start.")
    road_paths: bool = Field(
        default=True, description="Build the paths of trips without a shape on a stored road network (`its maps import`) when one is stored; else straight lines between the stops.")
    road_network: str = Field(
        default="", description="Name of the stored road network for trips without a shape (empty: the first stored, as the traffic service does).")
    holding_advice: bool = Field(
        default=True, description="Compute holding advice at control stops and publish it to dispatchers and vehicles.")
    holding_gain: float = Field(
        default=DEFAULT_GAIN, ge=0, le=1,
        description="Headway rule gain: share of the gap to the mean of the forward and backward headways closed by one hold.")
    holding_cap_share: float = Field(
        default=DEFAULT_CAP_SHARE, ge=0, le=2, description="Longest hold as a share of the route's scheduled headway there.")
    holding_origin_cap_share: float = Field(
        default=DEFAULT_ORIGIN_CAP_SHARE, ge=0, le=2,
        description="Longest hold at a trip's first stop as a share of the scheduled headway.")
    holding_frequent_headway_s: float = Field(
        default=FREQUENT_HEADWAY_S, gt=0,
        description="A route whose scheduled headway at a stop (s, over the 2 h around the bus) is at most this is "
                    "headway-managed there; elsewhere a bus is never held past its scheduled departure.")
    holding_min_hold_s: float = Field(
        default=20.0, ge=0, description="Holds shorter than this (s) are not advised.")
    holding_republish_s: float = Field(
        default=15.0, ge=0, description="An advised hold is sent to the vehicle again when it changed by at least this (s).")
    holding_publish_unaccepted: bool = Field(
        default=True, description="Send advice to the vehicle before a dispatcher accepts it (false: accepted advice only).")
    holding_routes: dict[str, HoldingRoute] = Field(
        default_factory=dict,
        description="Per-route holding parameters, JSON by route_id: {\"C53\": {\"gain\": 0.5, \"cap_share\": 0.25, "
                    "\"origin_cap_share\": 0.5, \"frequent\": true, \"control_stops\": [\"1001\"], \"enabled\": true}}.")

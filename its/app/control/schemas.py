"""Response models of ``/v1/auth`` and ``/v1/control`` (``its.app.control``): the OpenAPI contract of
the JSON these routes send (documentation only; answers are not validated per request)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Alert", "AlertList", "ControlSettings", "LoggedOut", "Login", "Session"]

Role = Literal["dispatcher", "admin"]


class Session(BaseModel):
    """The logged-in user."""

    username: str = Field(description="User name.")
    role: Role = Field(description="`dispatcher` or `admin`.")
    csrf_token: str = Field(description="Send it as `X-CSRF-Token` on state-changing requests.")


class Login(Session):
    """A new dispatcher session. The session token is only in the HttpOnly `its_session`
    cookie (a script cannot read it); clients without cookies send it as `Authorization: Bearer`."""


class LoggedOut(BaseModel):
    """The session is ended."""

    logged_out: bool = Field(description="Always true.")


class Alert(BaseModel):
    """A condition that needs a dispatcher's attention; ``alert_id`` is ``kind:subject``."""

    alert_id: str = Field(description="`kind:subject`: raising the same condition twice is one alert.")
    kind: str = Field(description="What kind of condition (e.g. `bunching`, `gap`, `stale_vehicle`, `off_route`, `parking_full`, `parking_sensor_offline`, `traffic_incident`).")
    severity: Literal["info", "warning", "critical"] = Field(description="Severity.")
    subject: str = Field(description="What it is about (vehicle, site, camera, edge id...).")
    message: str = Field(description="Human-readable description.")
    raised_at: dt.datetime = Field(description="When it was raised, ISO 8601.")
    lat: float | None = Field(description="Where, latitude in degrees (null: no position).")
    lon: float | None = Field(description="Where, longitude in degrees.")
    cleared_at: dt.datetime | None = Field(description="When the condition ended (null: active).")
    acked_by: str | None = Field(description="User who acknowledged it.")
    acked_at: dt.datetime | None = Field(description="When it was acknowledged.")


class AlertList(BaseModel):
    """Active alerts, newest first."""

    version: int = Field(ge=0, description="Changes with every raise, clear or acknowledgement.")
    alerts: list[Alert]


class ControlSettings(BaseModel):
    """The control-centre page's settings, its user and the data routes this API serves."""

    basemap_tile_url: str | None = Field(description="XYZ tile URL template drawn under the map; null: offline map.")
    username: str = Field(description="Logged-in user.")
    role: Role = Field(description="Their role.")
    routes: list[str] = Field(description="GET route templates of the data API (`/v1/...`, `/gtfs-rt/...`) mounted here.")
    panels: dict[str, list[str]] = Field(
        default_factory=dict, description="Per registered domain, the control-centre panels and map layers it feeds "
                                          "(its descriptor's `control_panels`).")

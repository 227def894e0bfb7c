"""``/v1/parking`` routes: sites near a point, one site, history, forecast, bulk snapshot,
server-sent events of changes and the DATEX II export. Public audience (app keys get their
higher quota through the same dependency); answers come from the service's memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from sse_starlette.sse import EventSourceResponse

from its.auth import public
from its.errors import ApiError, bad_request, not_found
from parking.store import occupancy_history

if TYPE_CHECKING:
    from parking.service import ParkingService

__all__ = ["build_router"]

STREAM_POLL_S = 0.2
MAX_HISTORY = timedelta(days=31)
INTERVALS = {"raw": None, "15m": 900, "1h": 3600, "1d": 86400}

VehicleType = Literal["car", "disabled", "ev", "motorcycle"]


def build_router(service: ParkingService) -> APIRouter:
    """The router of a :class:`parking.service.ParkingService`."""
    router = APIRouter(prefix="/v1/parking", tags=["parking"], dependencies=[Depends(public)])

    def known(site_id: str) -> str:
        if site_id not in service.state.sites:
            raise not_found("parking site", site_id)
        return site_id

    @router.get("/sites", response_model=None)
    async def sites_near(
        lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, WGS84 degrees.")],
        lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, WGS84 degrees.")],
        radius_m: Annotated[float, Query(gt=0, le=50_000, description="Search radius (m).")] = 1000,
        vehicle_type: Annotated[VehicleType | None, Query(description="Only sites with spaces for this type.")] = None,
        min_free: Annotated[int, Query(ge=0, le=100_000, description="Only sites with at least this many free spaces.")] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Response:
        """Parking sites near a point, nearest first, each with its current availability."""
        return _json(service.near_json(lat, lon, radius_m, vehicle_type, min_free, limit))

    @router.get("/sites/{site_id}", response_model=None)
    async def site(site_id: str) -> Response:
        """One site with its current availability."""
        return _json(service.site_json(known(site_id)))

    @router.get("/sites/{site_id}/history")
    def history(
        site_id: str,
        start: Annotated[datetime | None, Query(alias="from", description="ISO 8601 start (default: 24 h ago).")] = None,
        end: Annotated[datetime | None, Query(alias="to", description="ISO 8601 end (default: now).")] = None,
        interval: Annotated[Literal["raw", "15m", "1h", "1d"], Query(description="Aggregation bucket.")] = "15m",
    ) -> dict[str, Any]:
        """Occupancy history of a site: raw records or means per bucket."""
        known(site_id)
        end_t = _aware(end) if end else datetime.now(UTC)
        start_t = _aware(start) if start else end_t - timedelta(hours=24)
        if start_t >= end_t:
            raise bad_request("'from' must be before 'to'")
        if end_t - start_t > MAX_HISTORY:
            raise bad_request(f"at most {MAX_HISTORY.days} days per request")
        if service.ctx is None:
            raise ApiError(503, "unavailable", "parking service not started")
        rows = occupancy_history(service.ctx.read_db, site_id, start_t, end_t, INTERVALS[interval])
        return {"site_id": site_id, "from": start_t.isoformat(), "to": end_t.isoformat(), "interval": interval,
                "records": rows}

    @router.get("/sites/{site_id}/forecast")
    def forecast(site_id: str) -> dict[str, Any]:
        """Free spaces expected at +15, +30 and +60 min with an uncertainty band."""
        result: dict[str, Any] = service.forecast(known(site_id), datetime.now(UTC))
        return result

    @router.get("/availability")
    async def availability(request: Request) -> Response:
        """Bulk snapshot of every site; send ``If-None-Match`` to get 304 while unchanged."""
        tag, body = service.snapshot()
        headers = {"ETag": tag, "Cache-Control": "no-cache"}
        sent = request.headers.get("if-none-match", "")
        if tag in {t.strip().removeprefix("W/") for t in sent.split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @router.get("/stream")
    async def stream(request: Request) -> EventSourceResponse:
        """Server-sent events: one ``availability`` event per site change (first the current state)."""

        async def events() -> AsyncIterator[dict[str, str]]:
            seen = -1
            while not await request.is_disconnected():
                version, changed = service.state.changed_since(seen)
                if changed:
                    now = datetime.now(UTC)
                    for a in changed:
                        yield {"event": "availability", "id": str(version), "data": orjson.dumps(a.as_dict(now)).decode()}
                seen = version
                await asyncio.sleep(STREAM_POLL_S)

        return EventSourceResponse(events(), ping=15)

    @router.get("/datex2")
    def datex2() -> Response:
        """Current availability as a DATEX II Parking Publication Light compatible document."""
        return Response(orjson.dumps(service.datex2(datetime.now(UTC))), media_type="application/json")

    return router


def _json(body: bytes) -> Response:
    """Pre-serialised JSON as is (no response-model validation or re-encoding)."""
    return Response(body, media_type="application/json")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

"""``/v1/parking`` routes: sites near a point, one site, history, forecast, guidance, bulk
snapshot, server-sent events of changes and the DATEX II export. Public audience (app keys get their
higher quota through the same dependency); answers come from the service's memory.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from sse_starlette.sse import EventSourceResponse

from its.auth import public
from its.conditional import conditional_response, conditional_responses, weak
from its.errors import ApiError, bad_request, error_responses, not_found
from its.http_limits import query_time
from its.sse import RESET_EVENT, EventBuffer, reset_data
from parking.schemas import (
    AvailabilitySnapshot,
    Datex2Publication,
    GuidanceAnswer,
    GuidanceSite,
    Site,
    SiteForecast,
    SiteHistory,
    SiteList,
    VehicleTypeName,
)
from parking.store import occupancy_history

if TYPE_CHECKING:
    from parking.service import ParkingService
    from parking.state import SiteChange

__all__ = ["AvailabilityEvents", "build_router"]

STREAM_IDLE_S = 5.0  # s a stream with nothing to send waits before checking its client is still there
MAX_HISTORY = timedelta(days=31)
INTERVALS = {"raw": None, "15m": 900, "1h": 3600, "1d": 86400}

MAX_ARRIVE_MIN = 60.0  # the forecasts reach +60 min


_STREAM: dict[int | str, dict[str, Any]] = {200: {
    "description": "Server-sent events, endless: first one `availability` event per site (the current state; the "
                   "last one carries the `id` the state is current to), then one `availability` event per change, "
                   "each with its own `id`; `data` is a `SiteAvailability` JSON object; a comment ping every 15 s. "
                   "Reconnecting with `Last-Event-ID` replays the changes after that event from a bounded buffer; "
                   "when it cannot (unknown id, or too far behind) a `reset` event (`{reason, last_event_id}`) "
                   "announces a fresh snapshot instead.",
    "content": {"text/event-stream": {"schema": {"type": "string"},
                                      "x-event-data": {"$ref": "#/components/schemas/SiteAvailability"}}},
}}


def build_router(service: ParkingService) -> APIRouter:
    """The router of a :class:`parking.service.ParkingService`."""
    router = APIRouter(prefix="/v1/parking", tags=["parking"], dependencies=[Depends(public)])

    _site_routes(router, service)
    _availability_routes(router, service)
    return router


def _site_routes(router: APIRouter, service: ParkingService) -> None:
    """Sites near a point, one site, its history and its forecast."""

    def known(site_id: str) -> str:
        if site_id not in service.state.sites:
            raise not_found("parking site", site_id)
        return site_id

    @router.get("/sites", response_model=SiteList)
    async def sites_near(
        lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, WGS84 degrees.")],
        lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, WGS84 degrees.")],
        radius_m: Annotated[float, Query(gt=0, le=50_000, description="Search radius (m).")] = 1000,
        vehicle_type: Annotated[VehicleTypeName | None, Query(description="Only sites with spaces for this type.")] = None,
        min_free: Annotated[int, Query(ge=0, le=100_000, description="Only sites with at least this many free spaces.")] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Response:
        """Parking sites near a point, nearest first, each with its current availability."""
        return _json(service.near_json(lat, lon, radius_m, vehicle_type, min_free, limit))

    @router.get("/sites/{site_id}", response_model=Site)
    async def site(site_id: str) -> Response:
        """One site with its current availability."""
        return _json(service.site_json(known(site_id)))

    @router.get("/sites/{site_id}/history", response_model=SiteHistory, responses=error_responses(503))
    def history(
        site_id: str,
        start: Annotated[datetime | None, Query(alias="from", description="ISO 8601 start (default: 24 h ago).")] = None,
        end: Annotated[datetime | None, Query(alias="to", description="ISO 8601 end (default: now).")] = None,
        interval: Annotated[Literal["raw", "15m", "1h", "1d"], Query(description="Aggregation bucket.")] = "15m",
    ) -> Response:
        """Occupancy history of a site: raw records or means per bucket."""
        known(site_id)
        end_t = query_time(end, "to") if end else datetime.now(UTC)
        start_t = query_time(start, "from") if start else end_t - timedelta(hours=24)
        if start_t >= end_t:
            raise bad_request("'from' must be before 'to'")
        if end_t - start_t > MAX_HISTORY:
            raise bad_request(f"at most {MAX_HISTORY.days} days per request")
        if service.ctx is None:
            raise ApiError(503, "unavailable", "parking service not started")
        rows = occupancy_history(service.ctx.read_db, site_id, start_t, end_t, INTERVALS[interval])
        return _json(orjson.dumps({"site_id": site_id, "from": start_t.isoformat(), "to": end_t.isoformat(),
                                   "interval": interval, "records": rows}))

    @router.get("/sites/{site_id}/forecast", response_model=SiteForecast)
    def forecast(site_id: str) -> Response:
        """Free spaces expected at +15, +30 and +60 min with an uncertainty band."""
        return _json(orjson.dumps(service.forecast(known(site_id), datetime.now(UTC))))


def _availability_routes(router: APIRouter, service: ParkingService) -> None:
    """Guidance, the bulk snapshot, the stream of changes and the DATEX II export."""

    @router.get("/guidance", response_model=GuidanceAnswer)
    def guidance(
        lat: Annotated[float, Query(ge=-90, le=90, description="Latitude of the destination, WGS84 degrees.")],
        lon: Annotated[float, Query(ge=-180, le=180, description="Longitude of the destination, WGS84 degrees.")],
        vehicle_type: Annotated[VehicleTypeName | None, Query(description="Only sites with spaces for this type.")] = None,
        arrive_in_min: Annotated[float, Query(description="Minutes until the driver arrives (0-60, min).")] = 15.0,
        radius_m: Annotated[float, Query(gt=0, le=50_000, description="Search radius (m).")] = 2000.0,
        limit: Annotated[int, Query(ge=1, le=500, description="At most this many sites.")] = 10,
    ) -> GuidanceAnswer:
        """Open sites near a destination ranked by the chance of a free space on arrival, then by distance."""
        if not (0.0 <= arrive_in_min <= MAX_ARRIVE_MIN):  # also rejects NaN
            raise bad_request(f"arrive_in_min must be between 0 and {MAX_ARRIVE_MIN:g} (the forecasts reach"
                              f" +{MAX_ARRIVE_MIN:g} min), got {arrive_in_min!r}")
        now = datetime.now(UTC)
        ranked = service.guidance(lat, lon, vehicle_type, arrive_in_min, radius_m, limit, now)
        return GuidanceAnswer(
            generated_at=now, arrive_at=now + timedelta(minutes=arrive_in_min), arrive_in_min=arrive_in_min,
            vehicle_type=vehicle_type, radius_m=radius_m, count=len(ranked),
            sites=[GuidanceSite(**vars(r)) for r in ranked],
        )

    changed: dict[str, Any] = {"tag": "", "at": 0.0}  # when this process first served the current content

    @router.get("/availability", response_model=AvailabilitySnapshot, responses=conditional_responses())
    async def availability(request: Request) -> Response:
        """Bulk snapshot of every site; 304 while unchanged (``If-None-Match`` or ``If-Modified-Since``).

        The tag is weak (``W/``): it names the availability content; ``generated_at`` and the
        ages in the body move with the clock. ``Last-Modified`` is when this process first saw
        that content."""
        tag, body = service.snapshot()
        if tag != changed["tag"]:
            changed.update(tag=tag, at=time.time())
        return conditional_response(request, body, media_type="application/json", etag=weak(tag),
                                    last_modified_s=float(changed["at"]))

    changes = AvailabilityEvents(service)

    @router.get("/stream", response_class=EventSourceResponse, responses=_STREAM)
    async def stream(request: Request) -> EventSourceResponse:
        """Server-sent events: one ``availability`` event per site change (first the current state);
        a reconnect with ``Last-Event-ID`` gets the changes after that event (`its.sse`)."""
        return EventSourceResponse(changes.stream(request), ping=15)

    @router.get("/datex2", response_model=Datex2Publication)
    def datex2() -> Response:
        """Current availability as a DATEX II v3 Parking Publication Light 02-00-00 payload (JSON)."""
        return Response(orjson.dumps(service.datex2(datetime.now(UTC))), media_type="application/json")


class AvailabilityEvents:
    """The parking changes as one replayable log (`its.sse.EventBuffer`) shared by every stream.

    Pushed, not polled: the state hands every refresh's changes to :meth:`publish` (in version
    order, under its lock), which appends one ``availability`` event per changed site and wakes
    the waiting streams at once. A stream with nothing to send sleeps until then (or
    ``STREAM_IDLE_S``, to notice a client that left).
    """

    def __init__(self, service: ParkingService) -> None:
        self.service = service
        self.buffer = EventBuffer()
        service.state.add_listener(self.publish)

    def publish(self, changes: list[SiteChange]) -> None:
        """One event per changed site, in its new state."""
        now = datetime.now(UTC)
        for change in changes:
            self.buffer.append("availability", orjson.dumps(change.after.as_dict(now)).decode())

    def snapshot(self) -> tuple[str, list[dict[str, str]]]:
        """``(cursor, events)``: every site's current availability, at least up to date to
        ``cursor`` (read first, so a change racing the snapshot is sent again, never missed); the
        last event carries the cursor as its id (see `its.sse`)."""
        cursor = self.buffer.cursor
        now = datetime.now(UTC)
        events = [{"event": "availability", "data": orjson.dumps(a.as_dict(now)).decode()}
                  for a in self.service.state.all_current()]
        if events:
            events[-1]["id"] = cursor
        return cursor, events

    async def stream(self, request: Request) -> AsyncIterator[dict[str, str]]:
        """One client's events: replay after ``Last-Event-ID`` or a snapshot, then the changes."""
        asked = request.headers.get("last-event-id")
        pending = self.buffer.since(asked) if asked else None
        cursor = asked or ""
        reason = "unknown_last_event_id" if asked else None
        while True:
            if pending is None:  # no replay possible: say why (unless it is a first connection), then the state
                if reason is not None:
                    yield {"event": RESET_EVENT, "data": reset_data(cursor, reason)}
                cursor, frames = self.snapshot()
                for frame in frames:
                    yield frame
                pending = []
            for item in pending:
                yield {"event": item.event, "id": item.id, "data": item.data}
                cursor = item.id
            while not await self.buffer.wait(cursor, STREAM_IDLE_S):
                if await request.is_disconnected():
                    return
            if await request.is_disconnected():
                return
            pending = self.buffer.since(cursor)
            reason = "fell_behind"


def _json(body: bytes) -> Response:
    """Pre-serialised JSON as is (no response-model validation or re-encoding)."""
    return Response(body, media_type="application/json")


"""Public HTTP routes of the arrivals service: stops, arrivals, routes, vehicles, GTFS-rt.

Every answer is read from the service's current `telematics.service.Snapshot` (rebuilt
in the background), never recomputed per request; handlers are ``async`` because they
only read memory (no threadpool hop).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from its.auth import public
from its.conditional import conditional_response, conditional_responses, entity_tag
from its.errors import ApiError, error_responses, not_found
from telematics.board import public_view
from telematics.gtfs.writer import feed_zip
from telematics.schemas import (
    GtfsRtFeed,
    RouteList,
    RouteVehicles,
    Stop,
    StopArrivals,
    StopList,
    Vehicle,
    VehicleList,
)

if TYPE_CHECKING:
    from telematics.service import ArrivalsService

__all__ = ["StaticArchives", "build_router"]

PROTOBUF = "application/x-protobuf"
ZIP = "application/zip"
Format = Annotated[str, Query(pattern="^(pb|protobuf|json)$", description="`pb` (default) or `json`.")]
#: The GTFS-rt answers: protobuf by default, the JSON mapping with ``?format=json``.
FEED_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "GTFS-realtime `FeedMessage`: protobuf wire form (default, `format=pb`) or its JSON mapping "
                   "(`format=json`).",
    "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary",
                                      "description": "Serialized `transit_realtime.FeedMessage` (gtfs-realtime.proto)."}}},
}}
#: The static GTFS archive.
STATIC_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "GTFS static feed (zip of `agency.txt`, `routes.txt`, `stops.txt`, `trips.txt`, `stop_times.txt`, "
                   "`calendar.txt`/`calendar_dates.txt`, `shapes.txt`, `frequencies.txt` as imported).",
    "content": {ZIP: {"schema": {"type": "string", "format": "binary"}}},
}}


def _json(obj: object) -> Response:
    """Serialise with orjson directly (no response-model validation on the hot path)."""
    return Response(orjson.dumps(obj), media_type="application/json")


def build_router(service: ArrivalsService) -> APIRouter:
    """The FastAPI router over ``service``'s state (public audience)."""
    router = APIRouter(dependencies=[Depends(public)], tags=["arrivals"], responses=error_responses(503))

    def ready() -> None:
        if not service.ready():
            raise ApiError(503, "unavailable", "arrivals state is still loading")

    _stop_routes(router, service, ready)
    _vehicle_routes(router, service, ready)
    _feed_routes(router, service, ready)
    return router


def _stop_routes(router: APIRouter, service: ArrivalsService, ready: Callable[[], None]) -> None:
    """Stops near a point, one stop, its arrivals."""

    def stop_or_404(stop_id: str) -> dict[str, Any]:
        stop = service.stops.get(stop_id)
        if stop is None:
            raise not_found("stop", stop_id)
        return stop

    @router.get("/v1/stops", response_model=StopList)
    async def stops_near(
        lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, WGS84 degrees.")],
        lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, WGS84 degrees.")],
        radius_m: Annotated[float, Query(gt=0, le=5000, description="Search radius, metres.")] = 500.0,
        limit: Annotated[int, Query(ge=1, le=100, description="Most stops returned.")] = 20,
    ) -> Response:
        """Stops within ``radius_m`` of a point, nearest first (distance in metres)."""
        ready()
        found: list[tuple[float, str]] = []
        for index in service.stop_index:
            found.extend(index.near(lat, lon, radius_m, limit))
        found.sort()
        return _json({"stops": [{**service.stops[sid], "distance_m": round(d, 1)} for d, sid in found[:limit]]})

    @router.get("/v1/stops/{stop_id}", response_model=Stop)
    async def stop_detail(stop_id: str) -> Response:
        """One stop: name, code, position and the routes serving it."""
        ready()
        return _json(stop_or_404(stop_id))

    @router.get("/v1/stops/{stop_id}/arrivals", response_model=StopArrivals)
    async def stop_arrivals(
        stop_id: str,
        minutes: Annotated[int, Query(ge=1, le=1440, description="Look-ahead window, minutes.")] = 60,
    ) -> Response:
        """Upcoming arrivals at a stop: predicted where a fresh vehicle serves the trip,
        otherwise scheduled with ``fallback`` (``stale_vehicle`` or ``no_vehicle``)."""
        ready()
        stop = stop_or_404(stop_id)
        snap = service.snapshot
        horizon = snap.now_s + min(minutes, service.config.board_window_min) * 60.0
        return Response(snap.arrivals_json(stop, horizon, service.clock()), media_type="application/json")


def _vehicle_routes(router: APIRouter, service: ArrivalsService, ready: Callable[[], None]) -> None:
    """Routes, the vehicles on a route, every live vehicle, one vehicle."""

    @router.get("/v1/routes", response_model=RouteList)
    async def routes() -> Response:
        """Every route of the imported feeds."""
        ready()
        return _json({"routes": sorted(service.routes.values(), key=lambda r: (r["agency"], r["route_id"]))})

    @router.get("/v1/routes/{route_id}/vehicles", response_model=RouteVehicles)
    async def route_vehicles(route_id: str) -> Response:
        """Fresh vehicles currently running a trip of the route."""
        ready()
        if route_id not in service.routes:
            raise not_found("route", route_id)
        snap = service.snapshot
        now = service.clock()
        out = []
        for vid in snap.route_vehicles.get(route_id, ()):
            view = snap.vehicles[vid]
            out.append(public_view(view, now))
        return _json({"route": service.routes[route_id], "vehicles": out})

    @router.get("/v1/vehicles", response_model=VehicleList,
                responses=error_responses(404, s404="Unknown `agency` or `route_id` filter."))
    async def vehicles(
        route_id: Annotated[str | None, Query(min_length=1, max_length=200, description="Only this route's vehicles.")]
        = None,
        agency: Annotated[str | None, Query(min_length=1, max_length=200, description="Only this agency's vehicles.")]
        = None,
    ) -> Response:
        """Every vehicle in memory (silent up to 2 h), stale ones flagged: position, trip,
        delay (s, positive late), ``updated_at`` (its last ping, ISO 8601 UTC) and ``age_s``
        (s since then); ``stale`` once silent longer than ``ITS_TELEMATICS_STALE_AFTER_S``."""
        ready()
        if agency is not None and agency not in service.fleets:
            raise not_found("agency", agency)
        if route_id is not None and route_id not in service.routes:
            raise not_found("route", route_id)
        now = service.clock()
        stale_s = service.config.stale_after_s
        out = []
        for view in service.snapshot.vehicles.values():
            if (agency is not None and view["agency"] != agency) or (route_id is not None
                                                                     and view["route_id"] != route_id):
                continue
            age = max(now - view["_observed_s"], 0.0)
            out.append({"vehicle_id": view["vehicle_id"], "agency": view["agency"], "route_id": view["route_id"],
                        "trip_id": view["trip_id"], "lat": view["lat"], "lon": view["lon"], "bearing": view["bearing"],
                        "delay_s": view["delay_s"], "updated_at": view["observed_at"], "age_s": round(age, 1),
                        "stale": age > stale_s})
        out.sort(key=lambda v: (v["agency"], v["vehicle_id"]))
        return _json({"vehicles": out})

    @router.get("/v1/vehicles/{vehicle_id}", response_model=Vehicle)
    async def vehicle(vehicle_id: str) -> Response:
        """A vehicle's latest position, trip, progress and delay."""
        ready()
        view = service.snapshot.vehicles.get(vehicle_id)
        if view is None:
            raise not_found("vehicle", vehicle_id)
        return _json(public_view(view, service.clock()))


def _feed_routes(router: APIRouter, service: ArrivalsService, ready: Callable[[], None]) -> None:
    """The GTFS-realtime feeds (protobuf, or JSON with ``?format=json``) and the static GTFS they refer to.

    Every answer carries ``ETag`` and ``Last-Modified`` and honours ``If-None-Match`` /
    ``If-Modified-Since`` (`its.conditional`): a poller gets 304 until the feed changes. A
    feed's tag is the hash of its protobuf bytes (the JSON mapping's tag adds ``.json``),
    computed once per snapshot; ``Last-Modified`` is the feed header's timestamp.
    """
    tags: dict[str, Any] = {"snap": None}

    def feed(request: Request, kind: str, fmt: str) -> Response:
        ready()
        snap = service.snapshot
        if tags["snap"] is not snap:  # a new snapshot: tags of its feeds computed once
            tags.clear()
            tags["snap"] = snap
        pb: bytes = getattr(snap, f"{kind}_pb")
        tag = tags.get(kind) or tags.setdefault(kind, entity_tag(pb))
        if fmt == "json":
            return conditional_response(request, lambda: orjson.dumps(getattr(snap, f"{kind}_json")),
                                        media_type="application/json", etag=tag[:-1] + '.json"',
                                        last_modified_s=snap.now_s)
        return conditional_response(request, pb, media_type=PROTOBUF, etag=tag, last_modified_s=snap.now_s)

    @router.get("/gtfs-rt/trip-updates", response_model=GtfsRtFeed, responses=conditional_responses(FEED_RESPONSES))
    async def trip_updates(request: Request, format: Format = "pb") -> Response:
        """GTFS-realtime 2.0 TripUpdates (protobuf; ``?format=json`` for the JSON mapping); 304 while unchanged."""
        return feed(request, "trip_updates", format)

    @router.get("/gtfs-rt/vehicle-positions", response_model=GtfsRtFeed, responses=conditional_responses(FEED_RESPONSES))
    async def vehicle_positions(request: Request, format: Format = "pb") -> Response:
        """GTFS-realtime 2.0 VehiclePositions (protobuf; ``?format=json`` for the JSON mapping); 304 while unchanged."""
        return feed(request, "vehicle_positions", format)

    archives = StaticArchives()

    @router.get("/gtfs/static.zip", response_class=Response,
                responses=conditional_responses(STATIC_RESPONSES, 404, s404="No GTFS feed is imported, or unknown "
                                                                           "`agency`."))
    def static_zip(
        request: Request,
        agency: Annotated[str | None, Query(min_length=1, max_length=64, description="Only this agency's feed "
                                            "(default: every agency's, in one archive).")] = None,
    ) -> Response:
        """The static GTFS the platform runs on (the active imported feeds, calendar as imported): the
        ``trip_id``, ``stop_id`` and ``route_id`` of the realtime feeds are its ids. One zip for all agencies
        unless ``agency`` names one; ``ETag``/``Last-Modified`` and 304 as the realtime feeds."""
        ready()
        feeds = dict(service.feeds)
        if agency is not None:
            if agency not in feeds:
                raise not_found("agency", agency)
            feeds = {agency: feeds[agency]}
        if not feeds:
            raise ApiError(404, "not_found", "no GTFS feed is imported (`its gtfs import FEED.zip`)")
        tag, body, built_s = archives.get(feeds)
        return conditional_response(request, body, media_type=ZIP, etag=tag, last_modified_s=built_s,
                                    headers={"Content-Disposition": 'attachment; filename="gtfs.zip"'})


class StaticArchives:
    """The GTFS zips built from the service's feeds, one per selection, rebuilt when a feed object changes.

    ``get`` returns ``(ETag, bytes, built at epoch s)``: the archive is deterministic, so its hash
    only changes with the feeds; ``Last-Modified`` is when this process first built that content.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[tuple[str, ...], tuple[tuple[Any, ...], str, bytes, float]] = {}

    def get(self, feeds: dict[str, Any]) -> tuple[str, bytes, float]:
        key = tuple(sorted(feeds))
        objects = tuple(feeds[k] for k in key)
        with self._lock:  # one build at a time (seconds for a city's feed); the others wait for it
            hit = self._built.get(key)
            if hit is None or any(a is not b for a, b in zip(hit[0], objects, strict=True)):
                body = feed_zip(feeds)
                tag = entity_tag(body)
                built = hit[3] if hit is not None and hit[1] == tag else time.time()
                if len(self._built) > 16:
                    self._built.clear()
                hit = self._built[key] = (objects, tag, body, built)
            return hit[1], hit[2], hit[3]

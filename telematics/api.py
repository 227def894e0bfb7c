"""Public HTTP routes of the arrivals service: stops, arrivals, routes, vehicles, GTFS-rt.

Every answer is read from the service's current `telematics.service.Snapshot` (rebuilt
in the background), never recomputed per request; handlers are ``async`` because they
only read memory (no threadpool hop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Response

from its.auth import public
from its.errors import ApiError, not_found
from telematics.board import public_view

if TYPE_CHECKING:
    from telematics.service import ArrivalsService

__all__ = ["build_router"]

PROTOBUF = "application/x-protobuf"
Format = Annotated[str, Query(pattern="^(pb|protobuf|json)$", description="`pb` (default) or `json`.")]


def _json(obj: object) -> Response:
    """Serialise with orjson directly (no response-model validation on the hot path)."""
    return Response(orjson.dumps(obj), media_type="application/json")


def build_router(service: ArrivalsService) -> APIRouter:
    """The FastAPI router over ``service``'s state (public audience)."""
    router = APIRouter(dependencies=[Depends(public)], tags=["arrivals"])

    def ready() -> None:
        if not service.ready():
            raise ApiError(503, "unavailable", "arrivals state is still loading")

    def stop_or_404(stop_id: str) -> dict[str, Any]:
        stop = service.stops.get(stop_id)
        if stop is None:
            raise not_found("stop", stop_id)
        return stop

    @router.get("/v1/stops", response_model=None)
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

    @router.get("/v1/stops/{stop_id}", response_model=None)
    async def stop_detail(stop_id: str) -> Response:
        """One stop: name, code, position and the routes serving it."""
        ready()
        return _json(stop_or_404(stop_id))

    @router.get("/v1/stops/{stop_id}/arrivals", response_model=None)
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

    @router.get("/v1/routes", response_model=None)
    async def routes() -> Response:
        """Every route of the imported feeds."""
        ready()
        return _json({"routes": sorted(service.routes.values(), key=lambda r: (r["agency"], r["route_id"]))})

    @router.get("/v1/routes/{route_id}/vehicles", response_model=None)
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

    @router.get("/v1/vehicles", response_model=None)
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

    @router.get("/v1/vehicles/{vehicle_id}", response_model=None)
    async def vehicle(vehicle_id: str) -> Response:
        """A vehicle's latest position, trip, progress and delay."""
        ready()
        view = service.snapshot.vehicles.get(vehicle_id)
        if view is None:
            raise not_found("vehicle", vehicle_id)
        return _json(public_view(view, service.clock()))

    def feed(pb: bytes, js: dict[str, Any], fmt: str) -> Response:
        if fmt == "json":
            return _json(js)
        return Response(content=pb, media_type=PROTOBUF)

    @router.get("/gtfs-rt/trip-updates", response_model=None)
    async def trip_updates(format: Format = "pb") -> Response:
        """GTFS-realtime 2.0 TripUpdates (protobuf; ``?format=json`` for the JSON mapping)."""
        ready()
        snap = service.snapshot
        return feed(snap.trip_updates_pb, snap.trip_updates_json, format)

    @router.get("/gtfs-rt/vehicle-positions", response_model=None)
    async def vehicle_positions(format: Format = "pb") -> Response:
        """GTFS-realtime 2.0 VehiclePositions (protobuf; ``?format=json`` for the JSON mapping)."""
        ready()
        snap = service.snapshot
        return feed(snap.vehicle_positions_pb, snap.vehicle_positions_json, format)

    return router

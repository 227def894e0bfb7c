"""HTTP routes of the traffic domain (public): congestion GeoJSON, incidents, indices and their
history, travel time."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Response

from its import auth
from its.errors import ApiError, OrjsonResponse, bad_request, error_responses, not_found
from maps.geojson import edges_geojson
from maps.routing import NoRouteError
from traffic.congestion import LEVELS, SOURCES
from traffic.schemas import CongestionCollection, IncidentList, Indices, TravelTime, TtiHistory
from traffic.tti_history import bucket_means, default_step_s, iso_times

if TYPE_CHECKING:
    from traffic.service import TrafficService, _Snapshot

__all__ = ["GEOJSON", "GeoJsonResponse", "build_router", "parse_bbox_param", "parse_latlon"]

HISTORY_MAX_POINTS = 720  # points returned by the TTI history route unless step_s is given
GEOJSON = "application/geo+json"


class GeoJsonResponse(OrjsonResponse):
    """A GeoJSON document (RFC 7946), rendered by orjson."""

    media_type = GEOJSON


def parse_latlon(value: str, name: str) -> tuple[float, float]:
    """``"lat,lon"`` degrees → (lon, lat); 422 naming the parameter when malformed or out of range."""
    parts = value.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise bad_request(f"parameter {name!r} must be 'lat,lon' in degrees, got {value[:60]!r}") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise bad_request(f"parameter {name!r}: latitude must be in [-90, 90] and longitude in [-180, 180]")
    return lon, lat


def parse_bbox_param(value: str) -> tuple[float, float, float, float]:
    """``"west,south,east,north"`` degrees; 422 when malformed."""
    try:
        w, s, e, n = (float(x) for x in value.split(","))
    except ValueError:
        raise bad_request(f"parameter 'bbox' must be 'west,south,east,north' in degrees, got {value[:80]!r}") from None
    if not all(math.isfinite(x) for x in (w, s, e, n)) or not (w <= e and s <= n) \
            or not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise bad_request("parameter 'bbox': need west <= east, south <= north, within [-180, 180] x [-90, 90]")
    return w, s, e, n


def build_router(service: TrafficService) -> APIRouter:
    """Routes over ``service``'s latest snapshot."""
    public = APIRouter(prefix="/v1/traffic", tags=["traffic"], dependencies=[Depends(auth.public)],
                       responses=error_responses(503, s503="No road network is loaded (`no_network`), or the "
                                                           "stored history cannot be read (`store_unavailable`)."))

    def snapshot() -> _Snapshot:
        snap = service.snapshot
        if snap is None or service.network is None:
            raise ApiError(503, "no_network", "no road network is loaded for congestion estimates")
        return snap

    _map_routes(public, service, snapshot)
    _index_routes(public, service, snapshot)
    return public


def freshness(snap: _Snapshot) -> dict[str, Any]:
    """When the snapshot was computed and how old it is (s)."""
    return {"observed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snap.updated_at)),
            "age_s": round(max(0.0, time.time() - snap.updated_at), 1)}


def _map_routes(public: APIRouter, service: TrafficService, snapshot: Callable[[], _Snapshot]) -> None:
    """The congestion map and the active incidents."""

    @public.get("/congestion", response_model=CongestionCollection, response_class=GeoJsonResponse)
    def congestion(bbox: str | None = Query(None, description="west,south,east,north (degrees).")) -> Response:
        """Every edge's current speed, level, confidence and source mix as GeoJSON."""
        box = parse_bbox_param(bbox) if bbox is not None else None  # bad input first: 422, not 503
        snap = snapshot()
        st = snap.state
        assert service.network is not None
        props: dict[str, Any] = {
            "speed_mps": st.speed_mps, "usual_mps": st.profile_mps, "confidence": st.confidence,
            "travel_time_s": st.travel_time_s, "level": np.asarray(LEVELS)[st.level],
        }
        for k, name in enumerate(SOURCES):
            props[f"share_{name}"] = st.source_mix[:, k].astype(np.float64)
        fc = edges_geojson(service.network, props, bbox=box)
        fc.update(freshness(snap))
        return GeoJsonResponse(fc)

    @public.get("/incidents", response_model=IncidentList)
    def incidents() -> Response:
        """Edges and corridors far below their usual speed for this time of day."""
        snap = snapshot()
        return OrjsonResponse({"incidents": [{
            "kind": i.kind, "subject": i.subject, "speed_mps": round(i.speed_mps, 2),
            "usual_mps": round(i.usual_mps, 2), "ratio": round(i.ratio, 3), "confidence": round(i.confidence, 3),
            "lat": i.lat, "lon": i.lon, "edges": list(i.edges[:50]),
        } for i in snap.incidents], **freshness(snap)})


def _index_routes(public: APIRouter, service: TrafficService, snapshot: Callable[[], _Snapshot]) -> None:
    """Travel time indices (now and history) and congestion-aware travel times."""

    @public.get("/indices", response_model=Indices)
    def indices(limit: int = Query(20, ge=1, le=500, description="Corridors and areas listed (worst first).")) -> Response:
        """Travel time index (current / free-flow travel time) of the network, areas and corridors."""
        snap = snapshot()
        names = service.corridor_index[1]
        worst_c = np.argsort(-snap.corridors.tti)[:limit]
        worst_a = np.argsort(-snap.areas.tti)[:limit]
        return OrjsonResponse({
            "network_tti": round(snap.network_tti, 4),
            "corridors": [{"name": str(names[snap.corridors.group[i]]), "tti": round(float(snap.corridors.tti[i]), 4),
                           "length_m": round(float(snap.corridors.length_m[i]), 1)} for i in worst_c],
            "areas": [{"area": int(snap.areas.group[i]), "tti": round(float(snap.areas.tti[i]), 4),
                       "edges": int(snap.areas.edges[i])} for i in worst_a],
            **freshness(snap),
        })

    @public.get("/indices/history", response_model=TtiHistory,
                responses=error_responses(404, s404="Unknown `corridor` or `area`."))
    def indices_history(
        hours: float = Query(24.0, gt=0, le=168, description="Window ending now (h), at most a week."),
        corridor: str | None = Query(None, min_length=1, max_length=200,
                                     description="Street name of a corridor (as listed by /indices)."),
        area: int | None = Query(None, ge=0, description="Area id (as listed by /indices)."),
        step_s: int | None = Query(None, ge=1, le=86400, description=(
            "Average samples into buckets of this width (s); default: buckets sized so that at most "
            f"{HISTORY_MAX_POINTS} points are returned.")),
    ) -> Response:
        """Travel time index over time of the network (default), one corridor or one area.

        Points are ``{"time": ISO 8601 UTC bucket start, "tti": mean ratio}``, oldest first. The
        network series is sampled at every estimate update and answered from memory; a
        corridor's or area's every ``ITS_TRAFFIC_TTI_GROUP_SAMPLE_S`` from the store.
        """
        if corridor is not None and area is not None:
            raise bad_request("give at most one of 'corridor' and 'area'")
        snap = snapshot()
        net = service.network
        assert net is not None
        now = time.time()
        since = now - hours * 3600.0
        step = step_s or default_step_s(hours * 3600.0, HISTORY_MAX_POINTS)
        subject: str | int | None = None
        if corridor is None and area is None:
            scope = "network"
            t, v = service.tti_history.window(since)
        else:
            from traffic.store import load_tti_samples

            if corridor is not None:
                names = service.corridor_index[1]
                k = int(np.searchsorted(names, corridor))
                if k >= len(names) or names[k] != corridor:
                    raise not_found("corridor", corridor)
                scope, subject = "corridor", corridor
            else:
                assert area is not None
                if not np.isin(area, snap.areas.group):
                    raise not_found("area", area)
                scope, subject = "area", area
            try:
                t, v = load_tti_samples(service.read_db(), net.name, scope, str(subject),
                                        datetime.fromtimestamp(since, UTC))
            except Exception as exc:
                raise ApiError(503, "store_unavailable", "the travel time index history cannot be read now") from exc
        bt, bv = bucket_means(t, v, step)
        return OrjsonResponse({
            "network": net.name, "scope": scope, "subject": subject, "hours": hours, "step_s": step,
            "points": [{"time": ts, "tti": round(x, 4)} for ts, x in zip(iso_times(bt), bv.tolist(), strict=True)],
            **freshness(snap),
        })

    @public.get("/travel-time", response_model=TravelTime,
                responses=error_responses(404, s404="No route between the points (`no_route`)."))
    def travel_time(
        origin: str = Query(..., alias="from", description="Origin 'lat,lon' (degrees)."),
        dest: str = Query(..., alias="to", description="Destination 'lat,lon' (degrees)."),
    ) -> Response:
        """Fastest route under current congestion, its length, current and free-flow time."""
        o, d = parse_latlon(origin, "from"), parse_latlon(dest, "to")
        snap = snapshot()
        try:
            r = service.route(o, d)
        except NoRouteError as exc:
            raise ApiError(404, "no_route", str(exc)) from None
        net = service.network
        assert net is not None
        coords = np.concatenate([net.coords[net.geom_offsets[e]:net.geom_offsets[e + 1]] for e in r.edges]) \
            if len(r.edges) else np.zeros((0, 2))
        return OrjsonResponse({
            "from": {"lat": o[1], "lon": o[0]}, "to": {"lat": d[1], "lon": d[0]},
            "length_m": round(r.length_m, 1), "travel_time_s": round(r.time_s, 1),
            "freeflow_time_s": round(r.freeflow_time_s, 1), "edges": r.edges.tolist(),
            "geometry": {"type": "LineString", "coordinates": np.round(coords, 6).tolist()},
            **freshness(snap),
        })

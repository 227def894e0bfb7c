"""Dispatcher routes of the holding advice (``/v1/holding``): list it, accept or dismiss it, read the audit log.

Every route needs a dispatcher session (`its.auth.dispatcher`; a decision also the session's
``X-CSRF-Token``), like the control centre's alert routes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from its import auth
from its.db import Database
from its.errors import ApiError, OrjsonResponse, error_responses, not_found
from its.http_limits import aware_query_time
from telematics.advice_store import read_audit
from telematics.schemas import AdviceDecision, AdviceList, AuditList, HoldingAdvice

if TYPE_CHECKING:
    from telematics.service import ArrivalsService

__all__ = ["build_advice_router"]

_AdviceId = Path(min_length=1, max_length=64, description="`advice_id` from `GET /v1/holding/advice`.")


def _db_or_503(service: ArrivalsService) -> Database:
    if service.ctx is None:
        raise ApiError(503, "unavailable", "no database")
    return service.ctx.db


def build_advice_router(service: ArrivalsService) -> APIRouter:
    """The ``/v1/holding`` routes over ``service``'s advice (dispatcher audience)."""
    router = APIRouter(prefix="/v1/holding", tags=["holding"], dependencies=[Depends(auth.dispatcher)],
                       responses=error_responses(503))

    def ready() -> None:
        if not service.ready():
            raise ApiError(503, "unavailable", "arrivals state is still loading")

    @router.get("/advice", response_model=AdviceList,
                responses=error_responses(404, s404="Unknown `agency` or `route_id` filter."))
    def list_advice(
        agency: Annotated[str | None, Query(min_length=1, max_length=200, description="Only this agency's advice.")]
        = None,
        route_id: Annotated[str | None, Query(min_length=1, max_length=200, description="Only this route's advice.")]
        = None,
    ) -> Response:
        """The current holding advice per vehicle (its next control stop), with the
        dispatchers' decisions, by agency, route and vehicle."""
        ready()
        if agency is not None and agency not in service.fleets:
            raise not_found("agency", agency)
        if route_id is not None and route_id not in service.routes:
            raise not_found("route", route_id)
        now = service.snapshot.now_s
        items = [e for e in service.advice.entries(now) if (agency is None or e["agency"] == agency)
                 and (route_id is None or e["route_id"] == route_id)]
        return OrjsonResponse({"generated_at": service.snapshot.generated_at, "version": service.advice.version,
                               "advice": items})

    @router.post("/advice/{advice_id}", response_model=HoldingAdvice,
                 responses=error_responses(404, 409, 422, s404="No current advice has this id.",
                                           s409="The advice was superseded while deciding (the decision is logged)."))
    def decide(body: AdviceDecision, user: auth.DispatcherUser, advice_id: str = _AdviceId) -> Response:
        """Accept (the bus holds) or dismiss (it does not) an advice; the decision, who and
        when, goes to the audit log and the vehicle's advice topic follows it."""
        ready()
        _db_or_503(service)
        return OrjsonResponse(service.decide(advice_id, body.action, user.name))

    @router.get("/audit", response_model=AuditList)
    def audit(
        limit: Annotated[int, Query(ge=1, le=1000, description="Most entries returned.")] = 100,
        since: Annotated[dt.datetime | None, Query(description="Only decisions from then, ISO 8601.")] = None,
        vehicle_id: Annotated[str | None, Query(min_length=1, max_length=200, description="Only this vehicle.")]
        = None,
        advice_id: Annotated[str | None, Query(min_length=1, max_length=64, description="Only this advice.")] = None,
    ) -> Response:
        """The dispatchers' decisions on holding advice, newest first."""
        since = aware_query_time(since, "since")
        db = _db_or_503(service)
        rows = read_audit(db, limit=limit, since=since, vehicle_id=vehicle_id, advice_id=advice_id)
        return OrjsonResponse({"entries": rows})

    return router

"""Operating-mode playbook of the control centre (``/v1/control/playbook``).

The application layer composes what the domains' live services expose through the kernel's
contract (:mod:`its.playbook`): the first ready :class:`~its.playbook.ModeSource` (the
traffic service) gives the network's operating mode now, with the report's definition and
setting (``ITS_REPORTS_PEAK_TTI``); when it is ``incident`` or ``peak`` every ready
:class:`~its.playbook.Recommender` (telematics: holds on the affected routes; parking:
diversions away from the affected full car parks; traffic: detours around incident edges)
adds its actions with their expected effect. A dispatcher applies an action: the log
(``playbook_log``) records who, when, the mode and the action as it stood.

Every route needs a dispatcher session (`its.auth.dispatcher`; applying also the session's
``X-CSRF-Token``), like the holding routes.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from its import auth
from its.app.control.playbook_schemas import AppliedEntry, ApplyRequest, PlaybookLog, PlaybookView
from its.app.control.playbook_store import applied_since, read_log, write_applied
from its.errors import ApiError, OrjsonResponse, error_responses, not_found
from its.http_limits import aware_query_time
from its.playbook import Action, ActionApplier, ModeSource, Recommender, Situation
from its.report_settings import ReportSettings
from its.service import Context, Service

__all__ = ["APPLIED_WINDOW_S", "evaluate", "playbook_router"]

log = logging.getLogger(__name__)
#: An action shows as applied when it was applied within this long (s).
APPLIED_WINDOW_S = 3600.0

playbook_router = APIRouter(prefix="/v1/control/playbook", tags=["control"], dependencies=[Depends(auth.dispatcher)],
                            responses=error_responses(503))
_ActionId = Path(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$",
                 description="`action_id` from `GET /v1/control/playbook`.")


def evaluate(services: Sequence[Service], now_s: float, peak_tti: float
             ) -> tuple[Situation | None, list[Action], list[str]]:
    """The situation at ``now_s`` (epoch s), the recommended actions and the services that gave some.

    A service that fails is logged and skipped: the others' actions are still shown.
    """
    situation: Situation | None = None
    for svc in services:
        if isinstance(svc, ModeSource) and svc.ready():
            situation = svc.situation(now_s, peak_tti)
            if situation is not None:
                break
    if situation is None or not situation.active:
        return situation, [], []
    actions: list[Action] = []
    sources: list[str] = []
    for svc in services:
        if not isinstance(svc, Recommender) or not svc.ready():
            continue
        try:
            got = svc.recommend(situation)
        except Exception:
            log.exception("playbook: %s failed to recommend", svc.name)
            continue
        actions += got
        if got:
            sources.append(svc.name)
    return situation, actions, sources


def _services(request: Request) -> Sequence[Service]:
    return getattr(request.app.state, "services", ())


def _ctx(request: Request) -> Context:
    ctx: Context | None = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise ApiError(503, "unavailable", "the platform is still starting")
    return ctx


def _current(request: Request) -> tuple[Situation | None, list[Action], list[str]]:
    return evaluate(_services(request), time.time(), ReportSettings().peak_tti)


def _iso(t: dt.datetime | float) -> str:
    when = t if isinstance(t, dt.datetime) else dt.datetime.fromtimestamp(t, dt.UTC)
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@playbook_router.get("", response_model=PlaybookView)
def playbook(request: Request) -> Response:
    """The network's operating mode now and, when it is `incident` or `peak`, the recommended
    actions with their expected effect and whether a dispatcher applied them (last hour)."""
    ctx = _ctx(request)
    situation, actions, sources = _current(request)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=APPLIED_WINDOW_S)
    applied = applied_since(ctx.read_db, [a.action_id for a in actions], since)
    items: list[dict[str, Any]] = []
    for a in actions:
        found = applied.get(a.action_id)
        items.append({**a.to_json(), "applied": None if found is None else {"by": found[0], "at": _iso(found[1])}})
    return OrjsonResponse({
        "generated_at": _iso(situation.at_s if situation else time.time()),
        "mode": situation.mode if situation else None,
        "network_tti": None if situation is None or situation.network_tti is None else round(situation.network_tti, 3),
        "peak_tti": situation.peak_tti if situation else ReportSettings().peak_tti,
        "incidents": [{"subject": i.subject, "severity": i.severity, "message": i.message, "lat": i.lat, "lon": i.lon}
                      for i in (situation.incidents if situation else ())],
        "sources": sources, "actions": items})


@playbook_router.post("/actions/{action_id}/apply", response_model=AppliedEntry,
                      responses=error_responses(404, 409, 422, s404="No current action has this id.",
                                                s409="The operating mode is not `incident` or `peak` now."))
def apply(user: auth.DispatcherUser, request: Request, action_id: str = _ActionId,
          body: ApplyRequest | None = None) -> Response:
    """Record that the dispatcher applied a current action (who, when, the mode and the action
    as it stood), then let the recommending domain carry it out (`ActionApplier`: a headway
    action's holds are accepted as the dispatcher); answers the log entry and what was done."""
    ctx = _ctx(request)
    situation, actions, _sources = _current(request)
    if situation is None or not situation.active:
        mode = situation.mode if situation else None
        raise ApiError(409, "conflict", f"the operating mode is {mode or 'unknown'}: the playbook has no action now")
    action = next((a for a in actions if a.action_id == action_id), None)
    if action is None:
        raise not_found("action", action_id)
    log_id = write_applied(ctx.db, action, situation, user.name, dt.datetime.now(dt.UTC),
                           body.note if body is not None else None)
    entry = next(e for e in read_log(ctx.db, limit=50, action_id=action_id) if e["log_id"] == log_id)
    return OrjsonResponse({**entry, "carried_out": carry_out(_services(request), action, user.name)})


def carry_out(services: Sequence[Service], action: Action, actor: str) -> list[str]:
    """What the service of ``action``'s domain did to carry it out (nothing when no service of that
    domain carries out actions); a failure is logged, the action stays applied (logged)."""
    done: list[str] = []
    for svc in services:
        if isinstance(svc, ActionApplier) and svc.name == action.domain:
            try:
                done += svc.carry_out(action, actor)
            except Exception:
                log.exception("playbook: %s failed to carry out %s", svc.name, action.action_id)
    return done


@playbook_router.get("/log", response_model=PlaybookLog)
def applied_log(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most entries returned.")] = 100,
    since: Annotated[dt.datetime | None, Query(description="Only actions applied from then, ISO 8601.")] = None,
    action_id: Annotated[str | None, Query(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$",
                                           description="Only this action.")] = None,
) -> Response:
    """The actions dispatchers applied, newest first."""
    since = aware_query_time(since, "since")
    return OrjsonResponse({"entries": read_log(_ctx(request).read_db, limit=limit, since=since, action_id=action_id)})

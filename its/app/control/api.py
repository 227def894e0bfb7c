"""Login/logout and the dispatcher's alert routes (``/v1/auth``, ``/v1/control``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from its.app.control.schemas import Alert as AlertModel
from its.app.control.schemas import AlertList, LoggedOut, Login, Session
from its.auth import SESSION_COOKIE, Authenticator, DispatcherUser, Principal, client_ip, public
from its.errors import ApiError, OrjsonResponse, error_responses, not_found
from its.service import Context

__all__ = ["auth_router", "control_router"]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _no_store(response: Response) -> None:
    """Answers about sessions (CSRF tokens, the cookie) are never stored by any cache."""
    response.headers.update(NO_STORE)


auth_router = APIRouter(prefix="/v1/auth", tags=["auth"], dependencies=[Depends(_no_store)])
control_router = APIRouter(prefix="/v1/control", tags=["control"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")


def _auth(request: Request) -> Authenticator:
    return request.app.state.auth  # type: ignore[no-any-return]


def _ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


_SET_COOKIE = {"Set-Cookie": {"description": f"`{SESSION_COOKIE}` session cookie (HttpOnly, SameSite=Strict; "
                                             "Secure with `ITS_COOKIE_SECURE`).", "schema": {"type": "string"}}}


@auth_router.post("/login", response_model=Login,
                  responses={200: {"headers": _SET_COOKIE}, **error_responses(401, s401="Wrong username or password.")})
def login(body: LoginRequest, request: Request, _p: Annotated[Principal, Depends(public)]) -> Response:
    """Start a dispatcher session: sets an HttpOnly SameSite=Strict cookie, returns the CSRF token.

    The session token travels only in the cookie, never in the body (a script cannot read it).
    """
    try:
        token, principal = _auth(request).login(body.username, body.password, client_ip(request))
    except ApiError as exc:
        exc.headers = {**(exc.headers or {}), **NO_STORE}
        raise
    settings = _auth(request).settings
    response = OrjsonResponse({"username": principal.name, "role": principal.role,
                               "csrf_token": principal.csrf_token}, headers=NO_STORE)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=settings.cookie_secure,
                        max_age=settings.session_ttl_s, path="/")
    return response


@auth_router.post("/logout", response_model=LoggedOut)
def logout(request: Request, user: DispatcherUser) -> Response:
    """End the session (server side and cookie)."""
    _auth(request).logout(user)
    response = OrjsonResponse({"logged_out": True}, headers=NO_STORE)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@auth_router.get("/me", response_model=Session)
def me(user: DispatcherUser) -> Response:
    """The logged-in user, role and CSRF token."""
    return OrjsonResponse({"username": user.name, "role": user.role, "csrf_token": user.csrf_token}, headers=NO_STORE)


@control_router.get("/alerts", response_model=AlertList)
def alerts(request: Request, _u: DispatcherUser) -> Response:
    """Active alerts, newest first."""
    sink = _ctx(request).alerts
    return OrjsonResponse({"version": sink.version, "alerts": [a.to_json() for a in sink.active()]})


@control_router.post("/alerts/{alert_id}/ack", response_model=AlertModel)
def acknowledge(alert_id: Annotated[str, Field(max_length=300)], request: Request, user: DispatcherUser) -> Response:
    """Acknowledge an alert (recorded with user and time)."""
    if len(alert_id) > 300:
        raise ApiError(422, "invalid_parameter", "alert_id too long")
    alert = _ctx(request).alerts.acknowledge(alert_id, user.name)
    if alert is None:
        raise not_found("alert", alert_id)
    return OrjsonResponse(alert.to_json())

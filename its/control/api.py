"""Login/logout and the dispatcher's alert routes (``/v1/auth``, ``/v1/control``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from its.auth import SESSION_COOKIE, Authenticator, DispatcherUser, Principal, public
from its.errors import ApiError, not_found
from its.service import Context

__all__ = ["auth_router", "control_router"]

auth_router = APIRouter(prefix="/v1/auth", tags=["auth"])
control_router = APIRouter(prefix="/v1/control", tags=["control"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")


def _auth(request: Request) -> Authenticator:
    return request.app.state.auth  # type: ignore[no-any-return]


def _ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


@auth_router.post("/login")
def login(body: LoginRequest, request: Request, response: Response,
          _p: Annotated[Principal, Depends(public)]) -> dict[str, Any]:
    """Start a dispatcher session: sets an HttpOnly SameSite=Strict cookie, returns the CSRF token."""
    client = request.client.host if request.client else "unknown"
    token, principal = _auth(request).login(body.username, body.password, client)
    settings = _auth(request).settings
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=settings.cookie_secure,
                        max_age=settings.session_ttl_s, path="/")
    return {"username": principal.name, "role": principal.role, "csrf_token": principal.csrf_token, "token": token}


@auth_router.post("/logout")
def logout(request: Request, response: Response, user: DispatcherUser) -> dict[str, bool]:
    """End the session (server side and cookie)."""
    _auth(request).logout(user)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"logged_out": True}


@auth_router.get("/me")
def me(user: DispatcherUser) -> dict[str, Any]:
    """The logged-in user, role and CSRF token."""
    return {"username": user.name, "role": user.role, "csrf_token": user.csrf_token}


@control_router.get("/alerts")
def alerts(request: Request, _u: DispatcherUser) -> dict[str, Any]:
    """Active alerts, newest first."""
    sink = _ctx(request).alerts
    return {"version": sink.version, "alerts": [a.to_json() for a in sink.active()]}


@control_router.post("/alerts/{alert_id}/ack")
def acknowledge(alert_id: Annotated[str, Field(max_length=300)], request: Request, user: DispatcherUser) -> dict[str, Any]:
    """Acknowledge an alert (recorded with user and time)."""
    if len(alert_id) > 300:
        raise ApiError(422, "invalid_parameter", "alert_id too long")
    alert = _ctx(request).alerts.acknowledge(alert_id, user.name)
    if alert is None:
        raise not_found("alert", alert_id)
    return alert.to_json()

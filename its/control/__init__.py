"""Control centre: dispatcher login, alerts and acknowledgements, reports, the /control web UI."""

from __future__ import annotations

from fastapi import APIRouter

from its.control.api import auth_router, control_router

__all__ = ["control_routers"]


def control_routers() -> list[APIRouter]:
    """Routers the app mounts for the control centre."""
    from its.reports.api import reports_router

    routers = [auth_router, control_router, reports_router]
    try:
        from its.control.ui import ui_router
    except ModuleNotFoundError as exc:
        if exc.name != "its.control.ui":
            raise
    else:
        routers.append(ui_router)
    return routers

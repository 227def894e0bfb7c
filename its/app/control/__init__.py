"""Control centre: dispatcher login, alerts and acknowledgements, the operating-mode playbook, reports,
the /control web UI."""

from __future__ import annotations

from fastapi import APIRouter

from its.app.control.api import auth_router, control_router

__all__ = ["control_routers"]


def control_routers() -> list[APIRouter]:
    """Routers the app mounts for the control centre."""
    from its.app.control.playbook import playbook_router
    from its.app.reports.api import reports_router

    routers = [auth_router, control_router, playbook_router, reports_router]
    try:
        from its.app.control.ui import ui_router
    except ModuleNotFoundError as exc:
        if exc.name != "its.app.control.ui":
            raise
    else:
        routers.append(ui_router)
    return routers

"""Walk an app's route table, including routers that FastAPI mounts lazily."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.routing import APIRoute

__all__ = ["iter_api_routes", "route_audience"]


def iter_api_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Yield ``(full_path, route)`` for every APIRoute, descending into included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router") and hasattr(route, "include_context"):
            sub_prefix = prefix + getattr(route.include_context, "prefix", "")
            yield from iter_api_routes(route.original_router.routes, sub_prefix)


def route_audience(route: APIRoute) -> str | None:
    """The strictest audience a route declares through its dependencies, if any."""
    found: set[str] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        aud = getattr(dep.call, "audience", None)
        if aud:
            found.add(aud)
        stack.extend(dep.dependencies)
    return next((a for a in ("admin", "dispatcher", "app", "public") if a in found), None)

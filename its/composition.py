"""The composition root's inventory: which domain modules provide routes, services, commands.

Only this module (and the CLI/app/demo that use it) names the domain packages.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from its.ingest import Route
from its.service import Service

__all__ = ["domain_commands", "domain_routes", "domain_services"]

DOMAINS = ("maps", "telematics", "parking", "video", "traffic")


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None  # the domain does not provide this kind of module
        raise


def domain_routes() -> list[Route]:
    """Every domain's MQTT ingestion routes (``<pkg>.ingest.ROUTES``)."""
    from its.devices import DEVICE_STATUS_ROUTE

    routes: list[Route] = [DEVICE_STATUS_ROUTE]
    for pkg in DOMAINS:
        mod = _module(f"{pkg}.ingest")
        if mod is not None:
            routes.extend(getattr(mod, "ROUTES", []))
    return routes


def domain_services() -> list[Service]:
    """One instance of every domain's real-time service (``<pkg>.service.SERVICE_CLASS``)."""
    services: list[Service] = []
    for pkg in DOMAINS:
        mod = _module(f"{pkg}.service")
        if mod is None:
            continue
        factory: Any = getattr(mod, "create_service", None)
        if factory is not None:
            services.append(factory())
    return services


def domain_commands() -> list[tuple[str, str, Callable[..., Any]]]:
    """Every domain's CLI commands (``<pkg>.cli.COMMANDS``)."""
    commands: list[tuple[str, str, Callable[..., Any]]] = []
    for pkg in DOMAINS:
        mod = _module(f"{pkg}.cli")
        if mod is not None:
            commands.extend(getattr(mod, "COMMANDS", []))
    return commands

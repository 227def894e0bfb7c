"""The registry of domains: the one list of the platform's domain packages.

The application layer loops over these descriptors (`its.domain.Domain`) for everything it
assembles: collector routes, live services and their routers, CLI groups and commands,
settings, migrations, device kinds and the broker ACL, report sections, topic documentation
and demo steps. A domain is added by writing its ``<pkg>/domain.py`` and naming the package
here, or, without touching ``its/``, by listing its module in ``ITS_PLUGINS``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from its.devices import DEVICE_STATUS_FILTER, DEVICE_STATUS_ROUTE, parse_device_status
from its.domain import (
    DemoHook,
    Domain,
    DomainError,
    Field,
    ReportSection,
    Topic,
    register,
    registered,
)
from its.ingest import Route
from its.service import Service

__all__ = [
    "BUILTIN_DOMAINS",
    "KERNEL_TOPICS",
    "demo_hooks",
    "device_kinds",
    "domain_commands",
    "domain_routes",
    "domain_services",
    "domains",
    "report_sections",
    "topics",
]

#: The platform's own domain packages, in start-up order (the one list of domains).
BUILTIN_DOMAINS = ("maps", "telematics", "parking", "video", "traffic")

#: Topics the kernel defines for every domain's devices.
KERNEL_TOPICS = (
    Topic(filter=DEVICE_STATUS_FILTER, summary="A device's presence: levels device kind, device id.",
          publisher="every device (Last Will `{\"online\": false}`, retained)",
          fields=(Field("online", "bool", "whether the device is connected"),
                  Field("ts", "ISO 8601 or epoch s/ms", "time (default: time of receipt)", required=False)),
          parse=parse_device_status, stored_in="device_status", retained=True),
)


def _load(module: str) -> Domain:
    try:
        mod = importlib.import_module(module if "." in module else f"{module}.domain")
    except ModuleNotFoundError as exc:
        raise DomainError(f"domain module {module!r} not found ({exc})") from None
    domain = getattr(mod, "DOMAIN", None)
    if not isinstance(domain, Domain):
        raise DomainError(f"domain module {mod.__name__!r} exports no DOMAIN descriptor")
    return domain


def domains() -> tuple[Domain, ...]:
    """Every domain: the built-in ones, then ``ITS_PLUGINS``; registered in `its.domain`."""
    plugins = [m.strip() for m in os.environ.get("ITS_PLUGINS", "").split(",") if m.strip()]
    for module in (*BUILTIN_DOMAINS, *plugins):
        register(_load(module))
    return registered()


def domain_routes() -> list[Route]:
    """Every collector route: the kernel's device status, then each domain's."""
    return [DEVICE_STATUS_ROUTE, *(r for d in domains() for r in d.routes)]


def domain_services() -> list[Service]:
    """One instance of every domain's real-time service."""
    return [d.service() for d in domains() if d.service is not None]


def domain_commands() -> list[tuple[str, str, Callable[..., Any]]]:
    """Every domain's CLI commands ``(group, name, function)``."""
    return [c for d in domains() if d.commands is not None for c in d.commands()]


def cli_groups() -> dict[str, str]:
    """CLI groups the domains introduce, with their help."""
    return {name: text for d in domains() for name, text in d.cli_groups.items()}


def device_kinds() -> dict[str, tuple[str, ...]]:
    """What each kind of device may publish (ACL patterns with ``{id}``, ``{site}``, ``{space}``)."""
    return {k.name: k.publishes for d in domains() for k in d.device_kinds}


def report_sections() -> list[ReportSection]:
    """Every domain's report sections, in their order."""
    return sorted((s for d in domains() for s in d.report_sections), key=lambda s: s.order)


def topics() -> list[tuple[str, Topic]]:
    """Every MQTT topic with its owner (``platform`` for the kernel's)."""
    return [*(("platform", t) for t in KERNEL_TOPICS), *((d.name, t) for d in domains() for t in d.topics)]


def demo_hooks() -> list[DemoHook]:
    """Every domain's demo steps, in their order."""
    return sorted((h for d in domains() for h in d.demo_hooks), key=lambda h: h.order)

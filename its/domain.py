"""The domain descriptor: everything the platform needs from one domain package.

Each domain package exports one :class:`Domain` (``<pkg>/domain.py``, ``DOMAIN``). The
application layer (:mod:`its.app.registry`) imports the descriptors named in one list (plus
``ITS_PLUGINS``) and registers them here; every part of the platform that needs "all domains"
(collector routes, live services, API routers, CLI groups, settings, migrations, device kinds
and their ACL, report sections, topic documentation, demo hooks) loops over
:func:`registered`. No other list of domains exists.

A descriptor is checked when it is built (at import of its module): a missing or malformed
part raises :class:`DomainError` naming the domain and the part.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_settings import BaseSettings

from its.ingest import Route, topic_matches

if TYPE_CHECKING:
    import pandas as pd

    from its.db import Database
    from its.indicators import Indicator
    from its.report_settings import ReportSettings
    from its.service import Service

__all__ = [
    "DemoContext",
    "DemoHook",
    "DeviceKind",
    "Domain",
    "DomainError",
    "Field",
    "ReportRequest",
    "ReportSection",
    "Topic",
    "lazy",
    "register",
    "registered",
    "topic_of",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
Command = tuple[str, str, Callable[..., Any]]


class DomainError(ValueError):
    """A domain descriptor is missing a part or declares one wrongly."""


@dataclass(frozen=True, slots=True)
class Field:
    """One payload field of a topic: name, type and unit, meaning (for ``docs/topics.md``)."""

    name: str
    kind: str
    meaning: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class Topic:
    """One MQTT topic a domain defines: its filter, who publishes it, its payload and parser.

    Attributes
    ----------
    filter : str
        The MQTT filter (``its/v1/vehicles/+/+/position``); the one place it is written.
    summary : str
        One line: what a message is.
    publisher : str
        Who publishes it (devices, a worker, the platform).
    payload : str
        ``json``, ``protobuf``, ``jpeg``...
    fields : tuple of Field
        The payload fields with units.
    parse : callable, optional
        The one parser of the message (``(topic, payload) -> rows``); the collector and every
        live consumer call it, so a message is stored and used or dead-lettered everywhere.
    stored_in : str, optional
        The table the collector writes (None: live only).
    retained : bool
        Published retained (the last message stays on the broker for new subscribers).
    from_platform : bool
        Published by the platform's API process (`its serve`): the broker ACL lets its
        ``platform`` account write it (no device may).
    """

    filter: str
    summary: str
    publisher: str
    payload: str = "json"
    fields: tuple[Field, ...] = ()
    parse: Callable[[str, bytes], Sequence[Any]] | None = None
    stored_in: str | None = None
    retained: bool = False
    from_platform: bool = False

    def concrete(self, *values: str) -> str:
        """The topic with each ``+`` level filled, in order (``POSITION.concrete("wmata", "7")``)."""
        levels = self.filter.split("/")
        slots = [i for i, level in enumerate(levels) if level == "+"]
        if len(values) != len(slots):
            raise ValueError(f"{self.filter} has {len(slots)} wildcard levels, {len(values)} values given")
        for i, value in zip(slots, values, strict=True):
            levels[i] = value
        return "/".join(levels)

    def matches(self, topic: str) -> bool:
        """Whether a concrete topic falls under this filter."""
        return topic_matches(self.filter.split("/"), topic.split("/"))


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """A kind of device, the topics it may publish and those it may read (ACL patterns).

    ``{id}`` is the device id (its MQTT user name); a ``SITE.SPACE`` id also fills ``{site}``
    and ``{space}``. Every device may also read the platform's derived state
    (``its/v1/state/#``).
    """

    name: str
    publishes: tuple[str, ...]
    reads: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """What a report section is computed for: a database, a UTC period, an area, thresholds."""

    db: Database
    start: datetime
    end: datetime
    area: str | None
    settings: ReportSettings
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportSection:
    """One section of ``its report``: its key, title and the function that fills it.

    ``indicator_modules`` are the modules whose public functions define the section's
    indicators (their docstrings make the glossary). ``quality``, when given, returns what the
    domain knows of its sources' data quality beyond what the platform counts (messages
    stored and dead-lettered): a frame ``table, source`` and any of ``flagged_speed,
    flagged_area, stale_devices`` (rows of its tables flagged implausible, devices gone
    stale), merged into the platform's data-quality table.
    """

    key: str
    title: str
    build: Callable[[ReportRequest], dict[str, Indicator]]
    indicator_modules: tuple[str, ...] = ()
    order: int = 50
    quality: Callable[[ReportRequest], pd.DataFrame] | None = None


@dataclass(frozen=True, slots=True)
class DemoContext:
    """What a demo step gets: the demo's database, data directory, the shared real data
    (None when absent) and the files the demo wrote (``{"parking_sites": path}``)."""

    db: Database
    data_dir: Path
    shared_data: Path | None
    files: dict[str, Path]


@dataclass(frozen=True, slots=True)
class DemoHook:
    """A step the demo runs for this domain once the city is loaded (in ``order``)."""

    name: str
    run: Callable[[DemoContext], None]
    order: int = 50


@dataclass(frozen=True)
class Domain:
    """Everything the platform needs from one domain package.

    Attributes
    ----------
    name : str
        Package name (``telematics``); also the CLI group unless ``cli_group`` says otherwise.
    title : str
        One line for the CLI help and docs.
    topics : tuple of Topic
        Every MQTT topic the domain defines (stored or live).
    routes : tuple of Route
        Collector routes: topic filter -> parser -> table; each filter is one of ``topics``.
    live_topics : tuple of str
        Topic filters (of any domain) the domain's live service subscribes to.
    service : callable, optional
        Factory of the domain's real-time service (its router is mounted by the app).
    commands : callable, optional
        Returns the domain's CLI commands ``(group, name, function)`` (imported lazily).
    cli_groups : dict
        CLI groups the domain introduces, with their help.
    settings : tuple of BaseSettings subclasses
        The domain's settings classes (``ITS_<PKG>_*``), documented in the config table.
    migrations : Path, optional
        Directory of the domain's SQL migrations (``NNNN_name.sql``).
    device_kinds : tuple of DeviceKind
        Kinds of devices that publish the domain's topics, with their ACL patterns.
    report_sections : tuple of ReportSection
        The domain's sections of ``its report``.
    control_panels : tuple of str
        Control-centre panels and map layers the domain feeds.
    demo_hooks : tuple of DemoHook
        Steps the demo runs for the domain.
    """

    name: str = ""
    title: str = ""
    topics: tuple[Topic, ...] = ()
    routes: tuple[Route, ...] = ()
    live_topics: tuple[str, ...] = ()
    service: Callable[[], Service] | None = None
    commands: Callable[[], Sequence[Command]] | None = None
    cli_groups: dict[str, str] = field(default_factory=dict)
    settings: tuple[type[BaseSettings], ...] | None = None
    migrations: Path | None = None
    device_kinds: tuple[DeviceKind, ...] = ()
    report_sections: tuple[ReportSection, ...] = ()
    control_panels: tuple[str, ...] = ()
    demo_hooks: tuple[DemoHook, ...] = ()

    def __post_init__(self) -> None:
        who = self.name or "<unnamed>"
        if not _NAME.match(self.name or ""):
            raise DomainError(f"domain {who!r}: part 'name' is required (a lower-case package name)")
        if not self.title:
            raise DomainError(f"domain {who!r}: part 'title' is required")
        if self.settings is None:
            raise DomainError(f"domain {who!r}: part 'settings' is required (() when it has none)")
        if self.migrations is not None and not self.migrations.is_dir():
            raise DomainError(f"domain {who!r}: part 'migrations' is not a directory: {self.migrations}")
        filters = {t.filter for t in self.topics}
        for route in self.routes:
            if route.topic_filter not in filters:
                raise DomainError(f"domain {who!r}: part 'routes' uses {route.topic_filter!r}, "
                                  "which is not one of its 'topics'")
        for topic in self.topics:
            if topic.stored_in is not None and not any(r.topic_filter == topic.filter for r in self.routes):
                raise DomainError(f"domain {who!r}: part 'topics' says {topic.filter!r} is stored "
                                  "but no route stores it")
        if self.commands is not None and not callable(self.commands):
            raise DomainError(f"domain {who!r}: part 'commands' must be a callable returning the commands")
        for section in self.report_sections:
            if not section.key or not callable(section.build):
                raise DomainError(f"domain {who!r}: part 'report_sections' needs a key and a build function")


def lazy(target: str, *, call: bool = False) -> Callable[[], Any]:
    """A descriptor part imported only when used: ``"pkg.module:name"`` gives the attribute
    (``call=True``: the result of calling it), so importing a descriptor stays cheap."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise DomainError(f"lazy target {target!r}: expected 'module:name'")

    def load() -> Any:
        import importlib

        value = getattr(importlib.import_module(module), name)
        return value() if call else value

    load.__qualname__ = load.__name__ = f"lazy({target})"
    return load


_REGISTERED: dict[str, Domain] = {}


def register(domain: Domain) -> None:
    """Add a descriptor to the process's registry (the application layer does this once)."""
    if not isinstance(domain, Domain):
        raise DomainError(f"not a Domain descriptor: {domain!r}")
    existing = _REGISTERED.get(domain.name)
    if existing is not None and existing is not domain:
        raise DomainError(f"domain {domain.name!r} is registered twice")
    _REGISTERED[domain.name] = domain


def registered() -> tuple[Domain, ...]:
    """The registered descriptors, in registration order."""
    return tuple(_REGISTERED.values())


def topic_of(topic: str) -> Topic | None:
    """The declared topic a concrete topic falls under, if any domain declares one."""
    for domain in _REGISTERED.values():
        for t in domain.topics:
            if t.matches(topic):
                return t
    return None

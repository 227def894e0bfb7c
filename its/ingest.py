"""Ingestion contracts: a :class:`Route` maps an MQTT topic filter to rows of a table.

A domain's ``ingest.py`` exposes ``ROUTES``; its parse functions are pure and raise
:class:`PayloadError` with a reason naming the field. The collector runtime
(:mod:`its.collector`) does batching, COPY, dead-lettering and acknowledgement.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "STATE_FILTER",
    "TELEMETRY_FILTER",
    "UNSAFE_TEXT",
    "PayloadError",
    "Route",
    "Router",
    "check_id",
    "json_object",
    "optional_float",
    "require_float",
    "topic_matches",
]

#: Every telemetry topic (the collector's subscription, the platform accounts' ACL).
TELEMETRY_FILTER = "its/v1/#"
#: Derived state the platform publishes (only the platform account may write it; not stored).
STATE_FILTER = "its/v1/state/#"

Parse = Callable[[str, bytes], Sequence[Sequence[Any]]]


class PayloadError(ValueError):
    """A message failed validation; the text is stored as the rejection reason."""


@dataclass(frozen=True)
class Route:
    """Where the messages of one topic filter go.

    Attributes
    ----------
    feed : str
        Short name used in metrics and reports (``vehicle_positions``).
    topic_filter : str
        MQTT filter without ``$share`` prefix (``its/v1/vehicles/+/+/position``).
    table : str
        Destination table.
    columns : tuple of str
        Column names, in the order of the tuples ``parse`` returns.
    parse : callable
        ``(topic, payload) -> rows``; raises :class:`PayloadError`.
    upsert_key : tuple of str, optional
        When set, rows update existing ones with the same key instead of being skipped.
    """

    feed: str
    topic_filter: str
    table: str
    columns: tuple[str, ...]
    parse: Parse
    upsert_key: tuple[str, ...] | None = None
    _levels: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_levels", tuple(self.topic_filter.split("/")))

    def matches(self, topic: str) -> bool:
        return topic_matches(self._levels, topic.split("/"))


def topic_matches(filter_levels: Sequence[str], topic_levels: Sequence[str]) -> bool:
    """MQTT topic-filter matching with ``+`` and ``#``."""
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True
        if i >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[i]:
            return False
    return len(filter_levels) == len(topic_levels)


class Router:
    """Finds the route of a topic; exact literal prefixes are checked first."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._cache: dict[str, Route | None] = {}

    def route(self, topic: str) -> Route | None:
        # cache by the topic's shape: the last level plus level count is enough to
        # distinguish our topics; fall back to a full scan on a miss
        if topic in self._cache:
            return self._cache[topic]
        levels = topic.split("/")
        found = next((r for r in self.routes if topic_matches(r._levels, levels)), None)
        if len(self._cache) < 100_000:
            self._cache[topic] = found
        return found


#: Characters no id (topic level or payload field) may hold: control characters (C0, DEL,
#: C1) and the bidirectional embeddings, overrides and isolates (U+202A-202E, U+2066-2069),
#: which make an id display as something it is not.
UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def check_id(value: object, name: str, max_len: int = 128, *, topic_level: bool = False) -> str:
    """An id of 1..``max_len`` characters without control or bidi-override characters.

    The one rule for every id a parser reads (topic levels and payload fields, in every
    domain): a string of 1..``max_len`` characters with no control character (C0, DEL, C1)
    and no bidirectional embedding, override or isolate (:data:`UNSAFE_TEXT`), which would
    make an id display as something it is not. An id that names a topic level
    (``topic_level``) may also not hold ``/``, ``+`` or ``#`` (MQTT's separator and
    wildcards: the id could not be published to or subscribed to on its own).

    Raises
    ------
    PayloadError
        Naming ``name``.
    """
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise PayloadError(f"{name} must be a string of 1-{max_len} characters")
    if UNSAFE_TEXT.search(value):
        raise PayloadError(f"{name} contains control or bidi-override characters")
    if topic_level and _TOPIC_SPECIAL.search(value):
        raise PayloadError(f"{name} contains '/', '+' or '#'")
    return value


_TOPIC_SPECIAL = re.compile("[/+#]")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise PayloadError(f"duplicate key {k!r}")
        out[k] = v
    return out


def json_object(payload: bytes, *, max_depth: int = 4) -> dict[str, Any]:
    """Decode a UTF-8 JSON object payload.

    Raises
    ------
    PayloadError
        Not UTF-8, not JSON, not an object, nested deeper than ``max_depth``.
    """
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("payload is not valid UTF-8") from None
        raise PayloadError(f"invalid JSON: {str(exc)[:120]}") from None
    if not isinstance(obj, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(obj).__name__}")
    flat = not any(type(v) in (dict, list) for v in obj.values())
    if not flat and _depth(obj) > max_depth:
        raise PayloadError(f"payload nested deeper than {max_depth} levels")
    if len(_KEY_END.findall(payload)) != (len(obj) if flat else _count_keys(obj)):
        # the text has more `"...":` than the decoded object kept keys: look for duplicates
        json.loads(payload, object_pairs_hook=_reject_duplicate_keys)
    return obj


_KEY_END = re.compile(rb'"\s*:')


def _count_keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value)
    return 0


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def require_float(obj: dict[str, Any], key: str, lo: float | None = None, hi: float | None = None) -> float:
    """A required finite number within ``[lo, hi]``; the error names the field."""
    if key not in obj:
        raise PayloadError(f"missing field {key!r}")
    return _as_float(obj[key], key, lo, hi)


def optional_float(obj: dict[str, Any], key: str, lo: float | None = None, hi: float | None = None) -> float | None:
    """An optional finite number within ``[lo, hi]`` (``None`` when absent or null)."""
    value = obj.get(key)
    return None if value is None else _as_float(value, key, lo, hi)


def _as_float(value: Any, key: str, lo: float | None, hi: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"field {key!r} must be a number")
    x = float(value)
    if not math.isfinite(x):
        raise PayloadError(f"field {key!r} is not finite")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise PayloadError(f"field {key!r}={x} outside [{lo}, {hi}]")
    return x

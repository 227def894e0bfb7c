"""One collector batch: parse, check and write inside the caller's transaction.

:func:`process_batch` turns each message into rows of its route's table, or skips it (the
platform's own topics), or makes it a dead letter with the reason: unknown topic, unsafe
topic or text (control or bidi-override characters), oversized payload, the parser's
refusal, or a time outside the feed's :class:`its.timeutil.TimeWindow`. Nothing raises out
of it except errors of the database write, which the collector handles (bisection, spool).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg2

from its import metrics
from its.db import copy_rows, timeseries_columns, upsert_rows
from its.dead_letters import Message, dead_letter, reason_class, write_dead_letters
from its.domain import topic_of
from its.ingest import STATE_FILTER, UNSAFE_TEXT, PayloadError, Route, Router, topic_matches
from its.timeutil import TimePolicy, TimeWindow

__all__ = ["IGNORE", "BatchResult", "process_batch", "topic_verdict"]

log = logging.getLogger(__name__)
#: The platform's own topics under the telemetry tree: derived state (only the platform
#: account may write it, see ``its.device_registry.acl_text``) and every topic a registered
#: domain declares as live only (``Topic.stored_in`` None, e.g. camera snapshots: JPEGs the
#: API keeps in memory). Acknowledged and skipped; any other topic without a route is
#: dead-lettered as ``unknown_topic``.
_STATE_LEVELS = tuple(STATE_FILTER.split("/"))
_UNSAFE = UNSAFE_TEXT.search


@dataclass
class BatchResult:
    """What one :func:`process_batch` did (messages, except ``inserted``: rows)."""

    stored: int = 0
    rejected: int = 0
    inserted: int = 0
    ignored: int = 0
    #: dead letters not written again: redeliveries of ones already stored
    redelivered: int = 0
    received_by_feed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stored_by_feed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    inserted_by_table: dict[str, int] = field(default_factory=dict)
    #: (feed, kind of reason: `its.dead_letters.reason_class`) of each dead letter
    reasons: list[tuple[str, str]] = field(default_factory=list)

    def publish_metrics(self) -> None:
        """Count the batch in the Prometheus metrics (once it is committed)."""
        for feed, n in self.received_by_feed.items():
            metrics.RECEIVED.labels(feed).inc(n)
        for feed, n in self.stored_by_feed.items():
            metrics.STORED.labels(feed).inc(n)
        for table, n in self.inserted_by_table.items():
            metrics.ROWS_INSERTED.labels(table).inc(n)
        for feed, short in self.reasons:
            metrics.REJECTED.labels(feed, short).inc()


#: The verdict of :func:`topic_verdict` on the platform's own topics (acknowledged, skipped).
IGNORE = "ignore"
_verdicts: dict[str, str | None] = {}


def topic_verdict(topic: str) -> str | None:
    """``IGNORE`` for the platform's own topics, a dead-letter reason for an unsafe topic, else None."""
    try:
        return _verdicts[topic]
    except KeyError:
        pass
    verdict: str | None = None
    if topic_matches(_STATE_LEVELS, topic.split("/")):
        verdict = IGNORE
    else:
        declared = topic_of(topic)  # a topic a domain declares as live only (camera snapshots)
        verdict = IGNORE if declared is not None and declared.stored_in is None else None
    if verdict is None and _UNSAFE(topic):
        verdict = "unsafe topic: a level contains control or bidi-override characters"
    if len(_verdicts) < 100_000:
        _verdicts[topic] = verdict
    return verdict


class _RouteChecks(NamedTuple):
    """What one batch checks of a route's rows: column count, time column, its window as
    aware datetimes that surely pass (``lo``/``hi``, for the fast path) and the window."""

    n_columns: int
    t_index: int | None
    window: TimeWindow | None
    lo: datetime
    hi: datetime


def _utc(t_s: float) -> datetime:
    try:
        return datetime.fromtimestamp(t_s, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC) if t_s > 0 else datetime.min.replace(tzinfo=UTC)


def _route_checks(conn: psycopg2.extensions.connection, route: Route, window: TimeWindow | None,
                  newest_s: float, now_s: float) -> _RouteChecks:
    column = timeseries_columns(conn).get(route.table)
    t_index = route.columns.index(column) if window is not None and column in route.columns else None
    if window is None or t_index is None:
        return _RouteChecks(len(route.columns), None, None, _utc(-1e18), _utc(1e18))
    # within [lo, hi] a row is plausible whichever message of the batch carries it
    return _RouteChecks(len(route.columns), t_index, window, _utc(newest_s - window.max_age_s),
                        _utc(now_s + window.max_future_s))


def _time_problem(t: object, window: TimeWindow, received_s: float, now_s: float) -> str | None:
    """The exact time check of one row value (datetime or epoch s; other values pass)."""
    if isinstance(t, datetime):
        return window.problem(t.timestamp(), received_s, now_s)
    if isinstance(t, int | float) and not isinstance(t, bool):
        return window.problem(float(t), received_s, now_s)
    return None


def _plain_json(payload: bytes) -> bool:
    """True for a JSON object payload in plain ASCII without escapes: none of its strings can
    hold a control character (JSON escapes them) or a bidi one (non-ASCII), so its rows need no
    scan. (A GTFS-realtime payload that parses always has non-ASCII bytes: its timestamp varint.)"""
    return payload.startswith(b"{") and payload.isascii() and b"\\" not in payload


def _row_problem(rows: Sequence[Sequence[Any]], checks: _RouteChecks, scan_text: bool, msg: Message,
                 now_s: float) -> str | None:
    """Why the parsed rows of one message cannot be stored, or None (``scan_text``: look for
    control or bidi-override characters in the text values)."""
    n_columns, t_index, window, lo, hi = checks
    for row in rows:
        if len(row) != n_columns:
            return f"parser error: {len(row)} values for {n_columns} columns"
        if scan_text:
            for value in row:
                if value.__class__ is str and not value.isprintable() and _UNSAFE(value):
                    return "text value contains control or bidi-override characters"
        if t_index is not None and window is not None:
            t = row[t_index]
            if t.__class__ is not datetime or not lo <= t <= hi:
                problem = _time_problem(t, window, msg.received_s, now_s)
                if problem is not None:
                    return problem
    return None


def process_batch(
    conn: psycopg2.extensions.connection,
    router: Router,
    batch: Sequence[Message],
    max_payload_bytes: int,
    *,
    time_policy: TimePolicy | None = None,
    dead_letter_bytes: int = 4096,
    now_s: float | None = None,
) -> BatchResult:
    """Parse and write one batch inside the caller's transaction.

    Every message either yields rows for its route's table, is one of the platform's own
    topics (derived state and live-only topics, skipped), or becomes a ``rejected_messages`` row with the
    reason; nothing raises out of here except errors of the database write.

    Parameters
    ----------
    max_payload_bytes : int
        Larger payloads are dead-lettered, bytes.
    time_policy : TimePolicy, optional
        Plausible message times per feed; None checks none (history imports).
    dead_letter_bytes : int
        Bytes of the payload a dead letter keeps.
    now_s : float, optional
        Current time for the future bound, epoch s (default: the clock).
    """
    now_s = time.time() if now_s is None else now_s
    rows_by_route: dict[Route, list[Sequence[Any]]] = defaultdict(list)
    rejected: list[tuple[Any, ...]] = []
    again: list[bool] = []
    checks: dict[int, _RouteChecks] = {}  # by id(route): a Route hashes all its fields
    newest_s = max((m.received_s for m in batch), default=now_s)
    result = BatchResult()
    received_by_feed, stored_by_feed = result.received_by_feed, result.stored_by_feed
    for msg in batch:
        topic = msg.topic
        reason = topic_verdict(topic)
        if reason is IGNORE:
            result.ignored += 1
            continue
        route = router.route(topic)
        feed = route.feed if route else "unknown"
        received_by_feed[feed] += 1
        if route is None:
            reason = "unknown_topic: no route for this topic"
        elif reason is not None:
            pass  # unsafe topic
        elif msg.size > max_payload_bytes:
            reason = f"oversized: {msg.size} bytes > {max_payload_bytes}"
        else:
            try:
                rows = route.parse(topic, msg.payload)
                found = checks.get(id(route))
                if found is None:
                    window = time_policy.window(feed) if time_policy is not None else None
                    found = checks[id(route)] = _route_checks(conn, route, window, newest_s, now_s)
                reason = _row_problem(rows, found, not _plain_json(msg.payload), msg, now_s)
                if reason is None:
                    rows_by_route[route].extend(rows)
                    stored_by_feed[feed] += 1
            except PayloadError as exc:
                reason = str(exc)[:500] or "invalid payload"
            except Exception as exc:  # a parser bug must not kill the collector
                log.exception("parser of %s failed", feed)
                reason = f"parser error: {type(exc).__name__}: {str(exc)[:300]}"
        if reason is not None:
            rejected.append(dead_letter(msg, reason, dead_letter_bytes))
            again.append(msg.dup)
            result.reasons.append((feed, reason_class(reason)))
    for route, rows in rows_by_route.items():
        if route.upsert_key:
            n = upsert_rows(conn, route.table, route.columns, rows, route.upsert_key)
        else:
            n = copy_rows(conn, route.table, route.columns, rows)
        result.inserted_by_table[route.table] = result.inserted_by_table.get(route.table, 0) + n
        result.inserted += n
    if rejected:
        result.redelivered = len(rejected) - write_dead_letters(conn, rejected, again)
    result.stored = sum(stored_by_feed.values())
    result.rejected = len(rejected)
    return result

"""Gather every domain's indicators for a period and area into one report.

A report is ``{"period", "area", "generated_at", "sections": {section: {indicator: entry}}}``;
each entry has ``unit``, ``defined_by`` (the function whose docstring defines it), and either
``rows`` (a DataFrame) or ``value`` (a number), with ``reason`` saying why it is ``None``.
`report_json` turns it into plain JSON; `report_tables` lists its tables.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg2

from its.db import Database, refresh_aggregate, timeseries_backend
from its.domain import ReportRequest
from its.indicators import Indicator, indicator
from its.report_settings import ReportSettings

__all__ = ["PLATFORM_SECTION", "Report", "build_report", "day_bounds", "definition", "parse_period", "refresh_aggregate",
           "refresh_rollups", "report_json", "report_tables", "sections", "yesterday"]

log = logging.getLogger(__name__)
Report = dict[str, Any]
#: The application layer's own report section (every domain's come from the registry).
PLATFORM_SECTION = "platform"


def sections() -> list[str]:
    """Section keys of a report, in order: every registered domain's, then ``platform``."""
    from its.app.registry import report_sections

    return [s.key for s in report_sections()] + [PLATFORM_SECTION]


def day_bounds(first: date, last_exclusive: date, timezone: str) -> tuple[datetime, datetime]:
    """UTC instants of local midnight starting ``first`` and ``last_exclusive``."""
    zone = ZoneInfo(timezone)
    return (datetime.combine(first, time(), zone).astimezone(UTC),
            datetime.combine(last_exclusive, time(), zone).astimezone(UTC))


def _instant(text: str, field: str, timezone: str, end: bool) -> datetime:
    """A date (local midnight; for ``end`` the midnight after it) or an ISO 8601 date-time."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = date.fromisoformat(value)
            return day_bounds(day + timedelta(days=1) if end else day, day, timezone)[0]
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: expected a date YYYY-MM-DD or an ISO 8601 date-time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


def parse_period(start: str | None, end: str | None, timezone: str, now: datetime | None = None,
                 max_days: float | None = None) -> tuple[datetime, datetime]:
    """The UTC period ``[from, to)`` of a request.

    A date ``from`` starts at its local midnight; a date ``to`` includes that whole day (ends
    at the next midnight); date-times are taken as given (local ``timezone`` when naive).
    Both missing: the last 24 hours (ending at the next whole hour after ``now``). One
    missing: one day from/until the other.

    Raises
    ------
    ValueError
        Unparseable bounds, ``from >= to`` or a period longer than ``max_days``; the message
        names the field.
    """
    try:
        return _period(start, end, timezone, now, max_days)
    except OverflowError:
        raise ValueError("from/to: date out of range") from None


def _period(start: str | None, end: str | None, timezone: str, now: datetime | None,
            max_days: float | None) -> tuple[datetime, datetime]:
    if start is None and end is None:
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        hour = moment.replace(minute=0, second=0, microsecond=0)
        hi = hour if hour == moment else hour + timedelta(hours=1)
        return hi - timedelta(days=1), hi
    if start and end:
        lo, hi = _instant(start, "from", timezone, end=False), _instant(end, "to", timezone, end=True)
    elif start:
        lo = _instant(start, "from", timezone, end=False)
        hi = lo + timedelta(days=1)
    else:
        hi = _instant(str(end), "to", timezone, end=True)
        lo = hi - timedelta(days=1)
    if hi <= lo:
        raise ValueError(f"to: {hi.isoformat()} is not after from {lo.isoformat()}")
    if max_days is not None and (hi - lo) > timedelta(days=max_days):
        raise ValueError(f"to: the period is longer than {max_days:g} days")
    return lo, hi


def _guard(name: str, fn: Callable[[], dict[str, Indicator]]) -> dict[str, Indicator]:
    """Run a domain section; a missing table or failed query makes it one null entry with the reason."""
    try:
        return fn()
    except psycopg2.errors.UndefinedTable as exc:
        reason = f"no data source: {str(exc).splitlines()[0]}"
    except (psycopg2.Error, ValueError, KeyError) as exc:
        log.exception("report section %s failed", name)
        reason = f"could not compute: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return {"section": indicator("", None, rows=None, table=True, reason=reason)}


def _quality(name: str, fn: Callable[[], pd.DataFrame]) -> pd.DataFrame | None:
    """A domain's data-quality frame; a missing table or failed query leaves its columns out (logged)."""
    try:
        return fn()
    except (psycopg2.Error, ValueError, KeyError):
        log.exception("data quality of report section %s failed", name)
        return None


def refresh_rollups(db: Database, start: datetime, end: datetime, now: datetime | None = None) -> list[str]:
    """On TimescaleDB, bring the continuous aggregates up to date over ``[start, end)``; return them.

    A continuous aggregate answers from its materialisation below its watermark (the end of
    its last refresh) and from the raw rows above it (real-time aggregation): rows stored
    late below the watermark (late or replayed messages, back-filled history) stay invisible
    until the refresh policy's next run. A report therefore first refreshes the buckets of its
    period (whole buckets, up to one bucket before ``now`` as the policy does, so the live
    buckets keep being aggregated in real time) and then counts every stored row, as the
    native ``date_bin`` views do. No-op on native PostgreSQL; a refresh that fails (a
    read-only replica) is logged and the report uses the aggregate as it is.
    """
    if timeseries_backend(db) != "timescaledb":
        return []
    moment = (now or datetime.now(UTC)).timestamp()
    done = []
    for view, bucket in db.fetchall("SELECT view_name, bucket FROM its_rollups ORDER BY view_name"):
        width = bucket.total_seconds()
        lo = math.floor(start.timestamp() / width) * width
        hi = min(math.ceil(end.timestamp() / width), math.floor(moment / width) - 1) * width
        if hi <= lo:
            continue
        try:
            refresh_aggregate(db.url, view, datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC))
            done.append(view)
        except psycopg2.Error as exc:
            log.warning("could not refresh %s before the report: %s", view, str(exc).strip())
    return done


def build_report(db: Database, start: datetime, end: datetime, area: str | None = None,
                 settings: ReportSettings | None = None) -> Report:
    """Every domain's indicators over ``[start, end)``.

    ``area`` restricts public transport to that agency and traffic to that road network;
    parking and camera counts are not area-scoped.
    """
    if end <= start:
        raise ValueError(f"empty period: from {start.isoformat()} is not before to {end.isoformat()}")
    s = settings or ReportSettings()
    refresh_rollups(db, start, end)
    from its.app.registry import domain_routes, report_sections
    from its.app.reports import platform

    routes = tuple(domain_routes())
    request = ReportRequest(db=db, start=start, end=end, area=area, settings=s, routes=routes)
    sections: dict[str, dict[str, Indicator]] = {
        sec.key: _guard(sec.key, lambda sec=sec: sec.build(request)) for sec in report_sections()  # type: ignore[misc]
    }
    quality = [frame for sec in report_sections() if sec.quality is not None
               if (frame := _quality(sec.key, lambda sec=sec: sec.quality(request))) is not None]  # type: ignore[misc]
    sections[PLATFORM_SECTION] = _guard(PLATFORM_SECTION, lambda: platform.section(db, start, end, list(routes),
                                                                                   quality=quality))
    return {"period": {"from": start.isoformat(), "to": end.isoformat()}, "area": area,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "sections": sections}


def definition(fn: Callable[..., Any] | None) -> str | None:
    """The defining text of an indicator: its function's docstring up to the numpydoc sections."""
    if fn is None:
        return None
    doc = inspect.getdoc(fn) or ""
    text = re.split(r"\n(?:Parameters|Returns)\n-+", doc)[0]
    return " ".join(text.split())


def _plain(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value, tz="UTC").isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    cols = list(map(str, frame.columns))
    return [dict(zip(cols, map(_plain, row), strict=True)) for row in frame.itertuples(index=False, name=None)]


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON (tables as lists of records, times ISO 8601, NaN as null)."""
    sections: dict[str, Any] = {}
    for name, entries in report["sections"].items():
        out: dict[str, Any] = {}
        for key, e in entries.items():
            fn = e.get("defined_by")
            item: dict[str, Any] = {"unit": e["unit"], "definition": definition(fn),
                                    "defined_in": f"{fn.__module__}.{fn.__qualname__}" if fn else None}
            if "rows" in e:
                item["rows"] = None if e["rows"] is None else _records(e["rows"])
            else:
                item["value"] = _plain(e.get("value"))
            item["reason"] = e.get("reason")
            for extra in set(e) - {"unit", "defined_by", "rows", "value", "reason"}:
                item[extra] = e[extra]
            out[key] = item
        sections[name] = out
    return {"period": report["period"], "area": report["area"], "generated_at": report["generated_at"],
            "sections": sections}


def report_tables(report: Report) -> dict[str, pd.DataFrame]:
    """Every table of the report, named ``<section>.<indicator>``, plus ``summary``.

    ``summary`` has one row per indicator: its unit, value (scalars) or row count (tables)
    and the reason when it is null.
    """
    tables: dict[str, pd.DataFrame] = {}
    summary = []
    for name, entries in report["sections"].items():
        for key, e in entries.items():
            rows = e.get("rows")
            if rows is not None:
                tables[f"{name}.{key}"] = rows
            summary.append({"section": name, "indicator": key, "unit": e["unit"],
                            "value": _plain(e.get("value")) if "value" in e else None,
                            "rows": None if "value" in e else (0 if rows is None else len(rows)),
                            "reason": e.get("reason")})
    return {"summary": pd.DataFrame(summary), **tables}


def yesterday(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """Bounds of the local day before ``now``."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return day_bounds(today - timedelta(days=1), today, timezone)

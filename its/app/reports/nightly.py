"""Writing reports to disk: on demand, and yesterday's report every night at a set time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from its.app.reports.gather import build_report, yesterday
from its.app.reports.render import render
from its.db import Database
from its.report_settings import ReportSettings
from its.settings import Settings

__all__ = ["list_reports", "next_run", "nightly_report_loop", "reports_dir", "write_report"]

log = logging.getLogger(__name__)


def reports_dir(data_dir: Path) -> Path:
    """Where stored reports live: ``<data_dir>/reports``."""
    return Path(data_dir) / "reports"


def write_report(db: Database, start: datetime, end: datetime, out_dir: Path, formats: list[str],
                 settings: ReportSettings | None = None, area: str | None = None) -> list[Path]:
    """Gather the indicators of ``[start, end)`` once and write them in every format; return the paths."""
    s = settings or ReportSettings()
    report = build_report(db, start, end, area, s)
    return [render(report, fmt, out_dir, s.html_max_rows) for fmt in formats]


def next_run(now: datetime, settings: ReportSettings) -> datetime:
    """The next nightly run (UTC) strictly after ``now``: ``nightly_time`` in ``timezone``."""
    zone = ZoneInfo(settings.timezone)
    hh, mm = (int(x) for x in settings.nightly_time.split(":"))
    local = now.astimezone(zone)
    run = datetime.combine(local.date(), time(hh, mm), zone)
    if run <= local:
        run = datetime.combine(local.date() + timedelta(days=1), time(hh, mm), zone)
    return run.astimezone(UTC)


def nightly_report_loop(settings: Settings, db: Database, stop_event: threading.Event,
                        report_settings: ReportSettings | None = None,
                        clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Until ``stop_event`` is set, write yesterday's report at ``ITS_REPORTS_NIGHTLY_TIME``.

    Reports go to ``<data_dir>/reports`` in ``ITS_REPORTS_NIGHTLY_FORMATS``. A report of a day
    already written (its JSON file exists) is not rewritten, so restarts are harmless; a
    failure is logged and retried at the next run. ``clock`` gives the current UTC time.
    """
    rs = report_settings or ReportSettings()
    out = reports_dir(settings.data_dir)
    formats = [f.strip() for f in rs.nightly_formats.split(",") if f.strip()]
    while not stop_event.is_set():
        due = next_run(clock(), rs)
        if stop_event.wait(max(0.0, (due - clock()).total_seconds())):
            return
        start, end = yesterday(clock(), rs.timezone)
        stem = f"its-report-{start.isoformat()[:10]}-{end.isoformat()[:10]}"
        if (out / f"{stem}.json").exists():
            continue
        try:
            paths = write_report(db, start, end, out, formats, rs)
            log.info("nightly report written: %s", ", ".join(map(str, paths)))
        except Exception:
            log.exception("nightly report for %s failed", start.date())


def list_reports(data_dir: Path) -> list[dict[str, Any]]:
    """Stored reports, newest first: ``name``, ``format``, ``bytes``, ``modified`` (ISO 8601)."""
    folder = reports_dir(data_dir)
    if not folder.is_dir():
        return []
    items = []
    for path in folder.iterdir():
        if not path.name.startswith("its-report-"):
            continue
        if path.is_dir():
            fmt, size = "csv", sum(p.stat().st_size for p in path.glob("*.csv"))
        else:
            fmt, size = path.suffix.lstrip("."), path.stat().st_size
        items.append({"name": path.name, "format": fmt, "bytes": size,
                      "modified": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")})
    return sorted(items, key=lambda r: (r["name"], r["format"]), reverse=True)

"""``its report``: a thin wrapper over `its.app.reports.nightly.write_report`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["COMMANDS", "report"]


def report(
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD) or ISO date-time; default: the last 24 hours.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, included (YYYY-MM-DD), or an ISO date-time, excluded.")] = None,
    area: Annotated[str | None, typer.Option("--area", help="Agency (public transport) and road network (traffic) to report on.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, csv (one file per table), xlsx or json.")] = "html",
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: <data dir>/reports).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the indicators as one JSON object on the last line.")] = False,
) -> None:
    """Efficiency indicators of every domain for a period: a report file and a summary."""
    from its.app.reports.gather import build_report, parse_period, report_json, report_tables
    from its.app.reports.nightly import reports_dir
    from its.app.reports.render import FORMATS, render
    from its.commands import open_database, settings_or_exit
    from its.console import print_json_line
    from its.report_settings import ReportSettings

    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)}, got {fmt!r}", err=True)
        raise typer.Exit(2)
    rs = ReportSettings()
    try:
        lo, hi = parse_period(start, end, rs.timezone)
    except ValueError as exc:
        typer.echo(f"error: --{exc}", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    rt, db = open_database(settings)
    try:
        result = build_report(db, lo, hi, area, rs)
    finally:
        db.close()
        rt.stop()
    path = render(result, fmt, out or reports_dir(rt.settings.data_dir), rs.html_max_rows)
    summary = report_tables(result)["summary"]
    typer.echo(f"report {lo.isoformat()} to {hi.isoformat()}{' area ' + area if area else ''}: {path}")
    for item in summary.to_dict("records"):
        if isinstance(item["reason"], str):
            shown = f"null ({item['reason']})"
        elif isinstance(item["value"], int | float) and item["value"] == item["value"]:
            shown = f"{float(item['value']):.4g} {item['unit']}"
        else:
            shown = f"{int(item['rows'])} rows"
        typer.echo(f"  {item['section']}.{item['indicator']}: {shown}")
    if json_out:
        print_json_line(report_json(result))


#: ``report`` is a top-level command: the empty group name asks `its.app.cli` to register it at the root.
COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [("", "report", report)]

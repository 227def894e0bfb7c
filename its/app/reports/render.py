"""Render a gathered report as JSON, CSV (one file per table), XLSX (openpyxl) or printable HTML.

HTML charts are drawn with matplotlib (Agg) and inlined as PNG data URIs: no CDN, no script.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import orjson
import pandas as pd
from matplotlib.ticker import MaxNLocator
from openpyxl import Workbook

from its.app.reports.gather import Report, report_json, report_tables

__all__ = ["FORMATS", "render", "render_csv", "render_html", "render_json", "render_xlsx", "table_csv"]

FORMATS = ("html", "csv", "xlsx", "json")


def _stem(report: Report) -> str:
    start = report["period"]["from"][:10]
    end = report["period"]["to"][:10]
    area = f"-{report['area']}" if report.get("area") else ""
    return f"its-report-{start}-{end}{area}".replace("/", "_")


def _excel_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.tz_convert("UTC").tz_localize(None).to_pydatetime() \
            if value.tzinfo else value.to_pydatetime()
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is not None:
        return value.replace(tzinfo=None)
    return value


def table_csv(frame: pd.DataFrame) -> str:
    """A table as CSV text (times ISO 8601 UTC, empty for null)."""
    return frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ")


def render_json(report: Report, out_dir: Path) -> Path:
    """Write ``<stem>.json``: the report as one JSON object."""
    path = out_dir / f"{_stem(report)}.json"
    path.write_bytes(orjson.dumps(report_json(report), option=orjson.OPT_INDENT_2))
    return path


def render_csv(report: Report, out_dir: Path) -> Path:
    """Write a directory ``<stem>-csv/`` with one ``<section>.<indicator>.csv`` per table."""
    folder = out_dir / f"{_stem(report)}-csv"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in report_tables(report).items():
        (folder / f"{name}.csv").write_text(table_csv(frame))
    return folder


def render_xlsx(report: Report, out_dir: Path) -> Path:
    """Write ``<stem>.xlsx``: a ``summary`` sheet and one sheet per table (times in UTC)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    first = True
    used: set[str] = set()
    for name, frame in report_tables(report).items():
        title = name[-31:].replace("/", "_")
        while title in used:
            title = title[1:] + "_"
        used.add(title)
        sheet = ws if first else wb.create_sheet()
        first = False
        sheet.title = title
        sheet.append([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            sheet.append([_excel_value(v) for v in row])
    path = out_dir / f"{_stem(report)}.xlsx"
    wb.save(path)
    return path


# --------------------------------------------------------------------------- HTML


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _line_chart(frame: pd.DataFrame, x: str, y: str, series: str, title: str, ylabel: str, top: int = 8) -> str:
    """Lines of ``y`` over ``x`` (times, or ``hour_of_day``) for the ``top`` series with most points."""
    fig, ax = plt.subplots(figsize=(8, 3))
    keep = frame.groupby(series)[y].count().sort_values(ascending=False).index[:top]
    by_hour = x == "hour_of_day"
    for key in keep:
        g = frame[frame[series] == key].sort_values(x)
        ax.plot(g[x] if by_hour else pd.to_datetime(g[x], utc=True), g[y], marker=".", label=str(key))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=min(len(keep), 8), loc="upper left", bbox_to_anchor=(0, -0.18), frameon=False)
    if by_hour:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("hour of day (report time zone)")
    else:
        ax.set_xlabel("UTC")
        fig.autofmt_xdate()
    return _png(fig)


def _bar_chart(labels: list[str], values: list[float], title: str, ylabel: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(labels, values, color="#3b6ea5")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right", fontsize=7)
    return _png(fig)


def _charts(report: Report) -> dict[str, list[tuple[str, str]]]:
    """Charts per section: ``(caption, data URI)``."""
    s = report["sections"]
    out: dict[str, list[tuple[str, str]]] = {k: [] for k in s}

    def rows(section: str, key: str) -> pd.DataFrame | None:
        return s.get(section, {}).get(key, {}).get("rows")

    if (f := rows("public_transport", "on_time_by_route")) is not None:
        out["public_transport"].append(("On-time performance by route", _bar_chart(
            f["route_id"].astype(str).tolist(), (f["on_time_share"] * 100).tolist(), "On-time departures", "%")))
    if (f := rows("public_transport", "delay_by_route_hour")) is not None:
        out["public_transport"].append(("Mean delay by route and hour of day", _line_chart(
            f.rename(columns={"hour": "hour_of_day"}).assign(mean_delay_min=f["mean_delay_s"] / 60),
            "hour_of_day", "mean_delay_min", "route_id", "Mean delay", "min")))
    if (f := rows("parking", "occupancy_by_site_hour")) is not None:
        out["parking"].append(("Occupancy rate by site and hour", _line_chart(
            f.assign(pct=f["occupancy_rate"] * 100), "hour", "pct", "site_id", "Occupancy", "%")))
    if (f := rows("traffic", "speed_tti_by_area_hour")) is not None:
        out["traffic"].append(("Travel time index by area and hour", _line_chart(
            f, "hour", "tti", "network", "Travel time index", "TTI")))
    if (f := rows("camera_counts", "counts_hour")) is not None:
        streams = f.assign(stream=f["camera_id"] + "/" + f["line_id"] + "/" + f["direction"])
        per = pd.DataFrame(streams.groupby(["stream", "interval_start"])["vehicles"].sum().reset_index())
        out["camera_counts"].append(("Vehicles per hour by camera line and direction", _line_chart(
            per, "interval_start", "vehicles", "stream", "Hourly volume", "vehicles/h")))
    if (f := rows("camera_counts", "pedestrians_hour")) is not None:  # next to the vehicles: people lines
        walk = f.assign(stream=f["camera_id"] + "/" + f["line_id"] + "/" + f["direction"])
        out["camera_counts"].append(("Pedestrians per hour by camera people line and direction", _line_chart(
            walk, "interval_start", "people", "stream", "Hourly pedestrian volume", "people/h")))
    if (f := rows("camera_counts", "people_present_hour")) is not None:  # zone-only cameras have these
        zones = f.assign(stream=f["camera_id"] + "/" + f["zone_id"])
        out["camera_counts"].append(("People present per hour by camera zone (mean of the estimates)", _line_chart(
            zones, "interval_start", "people_mean", "stream", "People present", "people")))
    return out


_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222}h1{font-size:1.5em}
h2{border-bottom:2px solid #3b6ea5;padding-bottom:.2em;page-break-before:auto}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#eef2f7}.null{color:#a33}.def{font-size:.8em;color:#555;max-width:60em}
img{max-width:100%;page-break-inside:avoid}@media print{body{margin:0}h2{page-break-before:always}}
"""


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    return html.escape(str(value))


def _html_table(frame: pd.DataFrame, max_rows: int) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for row in frame.head(max_rows).itertuples(index=False, name=None))
    more = f"<p>{len(frame) - max_rows} more rows in the CSV/XLSX download.</p>" if len(frame) > max_rows else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def render_html(report: Report, out_dir: Path, max_rows: int = 200) -> Path:
    """Write ``<stem>.html``: a printable page with a summary, charts and every table."""
    plain = report_json(report)
    charts = _charts(report)
    tables = report_tables(report)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>ITS report</title><style>{_CSS}</style>"
             "</head><body>",
             f"<h1>ITS efficiency report</h1><p>Period {html.escape(report['period']['from'])} to "
             f"{html.escape(report['period']['to'])} (end excluded)"
             f"{' · area ' + html.escape(report['area']) if report.get('area') else ''} · generated "
             f"{html.escape(report['generated_at'])}</p>",
             "<h2>Summary</h2>", _html_table(tables["summary"], 10_000)]
    for name, entries in report["sections"].items():
        parts.append(f"<h2>{html.escape(name.replace('_', ' ').capitalize())}</h2>")
        for caption, uri in charts.get(name, []):
            parts.append(f"<figure><img alt='{html.escape(caption)}' src='{uri}'><figcaption>"
                         f"{html.escape(caption)}</figcaption></figure>")
        for key, e in entries.items():
            item = plain["sections"][name][key]
            parts.append(f"<h3>{html.escape(key.replace('_', ' '))} ({html.escape(e['unit'])})</h3>")
            if item.get("definition"):
                parts.append(f"<p class='def'>{html.escape(item['definition'])}</p>")
            if e.get("reason"):
                parts.append(f"<p class='null'>No value: {html.escape(e['reason'])}</p>")
            elif e.get("rows") is not None:
                parts.append(_html_table(e["rows"], max_rows))
            else:
                parts.append(f"<p><b>{_cell(e.get('value'))}</b></p>")
    parts.append("</body></html>")
    path = out_dir / f"{_stem(report)}.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def render(report: Report, fmt: str, out_dir: Path, max_rows: int = 200) -> Path:
    """Write the report in ``fmt`` (one of `FORMATS`) under ``out_dir``; return the file or folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        return render_json(report, out_dir)
    if fmt == "csv":
        return render_csv(report, out_dir)
    if fmt == "xlsx":
        return render_xlsx(report, out_dir)
    if fmt == "html":
        return render_html(report, out_dir, max_rows)
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")

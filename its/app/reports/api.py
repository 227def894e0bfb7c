"""Reports over HTTP for dispatchers and admins: indicators as JSON, tables as CSV, stored reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from its import auth
from its.app.reports.gather import build_report, parse_period, report_json, report_tables
from its.app.reports.nightly import list_reports, reports_dir
from its.app.reports.render import table_csv
from its.app.reports.schemas import KpiReport, StoredReports
from its.db import Database
from its.errors import ApiError, OrjsonResponse, bad_request, error_responses, not_found
from its.report_settings import ReportSettings

__all__ = ["MAX_DAYS", "reports_router"]

#: Longest period one request may ask for (days).
MAX_DAYS = 92

reports_router = APIRouter(prefix="/v1/reports", tags=["reports"], dependencies=[Depends(auth.dispatcher)])

FromQuery = Annotated[str | None, Query(alias="from", max_length=40,
                                        description="First day (YYYY-MM-DD) or ISO date-time; default: the last 24 hours.")]
ToQuery = Annotated[str | None, Query(alias="to", max_length=40,
                                      description="Last day, included (YYYY-MM-DD), or ISO date-time, excluded.")]
AreaQuery = Annotated[str | None, Query(max_length=64, description="Agency and road network to report on.")]


def _report(request: Request, start: str | None, end: str | None, area: str | None) -> dict[str, Any]:
    rs = ReportSettings()
    try:
        lo, hi = parse_period(start, end, rs.timezone, max_days=MAX_DAYS)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    db: Database = request.app.state.ctx.read_db
    return build_report(db, lo, hi, area, rs)


@reports_router.get("/kpis", response_model=KpiReport)
def kpis(request: Request, start: FromQuery = None, end: ToQuery = None, area: AreaQuery = None) -> Response:
    """Every domain's efficiency indicators for ``[from, to)``: one JSON object (null values carry a reason)."""
    return OrjsonResponse(report_json(_report(request, start, end, area)))


@reports_router.get("/tables/{table}.csv", response_class=Response, responses={
    200: {"description": "The table as CSV (header row, comma-separated, UTF-8); `Content-Disposition: attachment`.",
          "content": {"text/csv": {"schema": {"type": "string"}}}},
    **error_responses(404, s404="Unknown table (`not_found`), or no rows for this period (`no_data`).")})
def table(request: Request, table: str, start: FromQuery = None, end: ToQuery = None,
          area: AreaQuery = None) -> Response:
    """One table of the report (``summary`` or ``<section>.<indicator>``) as CSV."""
    if len(table) > 80:
        raise not_found("report table", table)
    report = _report(request, start, end, area)
    tables = report_tables(report)
    if table not in tables:
        if table in {f"{s}.{k}" for s, entries in report["sections"].items() for k in entries}:
            raise ApiError(404, "no_data", f"report table {table!r} has no rows for this period")
        raise not_found("report table", table)
    return Response(table_csv(tables[table]), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{table}.csv"'})


@reports_router.get("", response_model=StoredReports)
def stored(request: Request) -> Response:
    """Reports written by the nightly job (and ``its report``), newest first."""
    return OrjsonResponse({"reports": list_reports(request.app.state.ctx.settings.data_dir)})


_FILE = {"schema": {"type": "string", "format": "binary"}}


@reports_router.get("/files/{name}", response_class=FileResponse, responses={200: {
    "description": "The stored file as an attachment: the HTML report, the JSON report (as `/kpis`) or the "
                   "XLSX workbook; the media type follows its extension.",
    "content": {"text/html": _FILE, "application/json": {"schema": {"$ref": "#/components/schemas/KpiReport"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _FILE}}})
def download(request: Request, name: str) -> FileResponse:
    """Download one stored report file (HTML, JSON or XLSX)."""
    items = {r["name"]: r for r in list_reports(request.app.state.ctx.settings.data_dir)}
    if name not in items or items[name]["format"] == "csv":
        raise not_found("report file", name)
    path = reports_dir(request.app.state.ctx.settings.data_dir) / name
    return FileResponse(path, filename=name)


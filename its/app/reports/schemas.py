"""Response models of ``/v1/reports`` (``its.app.reports.api``): the OpenAPI contract of the JSON
these routes send (documentation only; answers are not validated per request)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Indicator", "KpiReport", "Period", "StoredReport", "StoredReports"]


class Period(BaseModel):
    """The reported period ``[from, to)``."""

    model_config = ConfigDict(populate_by_name=True)

    from_: dt.datetime = Field(alias="from", description="Start, ISO 8601 UTC.")
    to: dt.datetime = Field(description="End (excluded), ISO 8601 UTC.")


class Indicator(BaseModel):
    """One efficiency indicator: a table (``rows``) or a number (``value``); null with ``reason``
    when the period has no data for it. Some carry details (``basis``, ``horizon_min``...)."""

    model_config = ConfigDict(extra="allow")

    unit: str = Field(description="Unit of the values (`s`, `share` (0-1), `spaces`, `vehicles`...).")
    definition: str | None = Field(description="How it is computed (the defining function's docstring).")
    defined_in: str | None = Field(description="Dotted name of the defining function.")
    rows: list[dict[str, Any]] | None = Field(None, description="Table indicators: one object per row (times ISO 8601, "
                                                                "NaN as null).")
    value: float | None = Field(None, description="Scalar indicators: the number.")
    reason: str | None = Field(description="Why there is no value (null when there is one).")


class KpiReport(BaseModel):
    """Every domain's efficiency indicators for a period: ``sections`` maps a section
    (`public_transport`, `parking`, `traffic`, `camera_counts`, `platform`) to its indicators by name."""

    period: Period
    area: str | None = Field(description="Agency and road network reported on (null: all).")
    generated_at: dt.datetime = Field(description="When the report was computed, ISO 8601 UTC.")
    sections: dict[str, dict[str, Indicator]] = Field(
        description="Section name → indicator name → indicator (see `its report` and the README's indicator list).")


class StoredReport(BaseModel):
    """A report file written by the nightly job or ``its report``."""

    name: str = Field(description="File name (download it from `/v1/reports/files/{name}`).")
    format: str = Field(description="`html`, `json`, `xlsx` or `csv` (a folder of tables, not downloadable).")
    bytes: int = Field(ge=0, description="Size, bytes.")
    modified: dt.datetime = Field(description="Last modification, ISO 8601 UTC (whole seconds).")


class StoredReports(BaseModel):
    """Stored reports, newest first."""

    reports: list[StoredReport]

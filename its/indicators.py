"""The one shape of a report indicator, built by one function.

An indicator is a table (``rows``, a DataFrame) or a number (``value``), with its ``unit`` and
the function whose docstring defines it (``defined_by``); when it has no value, ``reason``
says why (a period with too little data gives ``None`` and the reason, never a made-up 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NotRequired, TypedDict

import pandas as pd

__all__ = ["Indicator", "indicator", "indicator_table"]


class Indicator(TypedDict):
    """One indicator of a report section (see the module docstring)."""

    unit: str
    defined_by: Callable[..., Any] | None
    reason: str | None
    rows: NotRequired[pd.DataFrame | None]
    value: NotRequired[float | None]
    # details some indicators carry (copied into the report JSON as they are)
    basis: NotRequired[str]
    horizon_min: NotRequired[int]
    forecasts_scored: NotRequired[int]
    measured_min: NotRequired[float]


def indicator(unit: str, defined_by: Callable[..., Any] | None, *, rows: pd.DataFrame | None = None,
              value: float | None = None, reason: str = "no data in the period",
              table: bool | None = None, **details: Any) -> Indicator:
    """Build an indicator: a table when ``rows`` is given (or ``table`` is true), else a value.

    Parameters
    ----------
    unit : str
        Unit(s) of the values (``"s"``, ``"share"``, ``"spaces"``...).
    defined_by : callable
        The function whose docstring defines the indicator.
    rows : DataFrame, optional
        The indicator's table; an empty or missing table gives ``rows=None`` with ``reason``.
    value : float, optional
        The indicator's number; a missing one gives ``value=None`` with ``reason``.
    reason : str
        Why there is no value (used only when there is none).
    table : bool, optional
        Force the table form even when ``rows`` is None.
    **details
        Extra keys the indicator carries (``basis``, ``horizon_min``, ``forecasts_scored``,
        ``measured_min``).
    """
    out: Indicator
    if rows is not None or table:
        ok = rows is not None and not rows.empty
        out = {"unit": unit, "defined_by": defined_by, "rows": rows if ok else None,
               "reason": None if ok else reason}
    else:
        out = {"unit": unit, "defined_by": defined_by, "value": value,
               "reason": None if value is not None else reason}
    out.update(details)  # type: ignore[typeddict-item]
    return out


def indicator_table(rows: pd.DataFrame | None, unit: str, defined_by: Callable[..., Any],
                    reason: str, **details: Any) -> Indicator:
    """A table indicator (``rows``; ``None`` with ``reason`` when missing or empty): `indicator`."""
    return indicator(unit, defined_by, rows=rows, reason=reason, table=True, **details)

"""SQL edge of the live telematics data: vehicle positions, stop arrivals, predictions.

Time-series tables written with COPY (`its.db.copy_rows`, duplicates skipped) and read
back by time range. The GTFS static feeds are imported and loaded by
`telematics.gtfs.database`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg2.extras

from its.db import Database, copy_rows
from telematics.ingest import POSITION_COLUMNS

__all__ = [
    "ARRIVAL_COLUMNS",
    "PREDICTION_COLUMNS",
    "fill_start_times",
    "read_positions",
    "read_stop_arrivals",
    "write_positions",
    "write_predictions",
    "write_stop_arrivals",
]

#: Columns of ``stop_arrivals`` rows, in the order `write_stop_arrivals` expects.
ARRIVAL_COLUMNS = ("agency", "service_date", "trip_id", "stop_sequence", "time", "stop_id",
                   "vehicle_id", "route_id", "scheduled_time", "delay_s")

#: Columns of ``arrival_predictions`` rows, in the order `write_predictions` expects.
PREDICTION_COLUMNS = ("issued", "agency", "service_date", "trip_id", "stop_id", "stop_sequence", "vehicle_id",
                      "predicted_time", "horizon_s")


# --------------------------------------------------------------------------- time series

def _copy_batch(db: Database, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY ``rows`` into ``table`` in one transaction (no connection for an empty batch); rows inserted."""
    batch = list(rows)
    if not batch:
        return 0
    with db.connection() as conn:
        return copy_rows(conn, table, tuple(columns), batch)


def write_stop_arrivals(db: Database, rows: Iterable[Sequence[Any]]) -> int:
    """Store detected stop arrivals (rows in `ARRIVAL_COLUMNS` order); duplicates are skipped.

    Returns
    -------
    int
        Rows inserted.
    """
    return _copy_batch(db, "stop_arrivals", ARRIVAL_COLUMNS, rows)


def read_stop_arrivals(db: Database, agency_id: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Stop arrivals of ``agency_id`` with ``start <= time < end`` as a DataFrame (`ARRIVAL_COLUMNS`)."""
    rows = db.fetchall(
        "SELECT " + ", ".join(ARRIVAL_COLUMNS) + " FROM stop_arrivals WHERE agency = %s"
        " AND time >= %s AND time < %s ORDER BY time", (agency_id, start, end))
    return pd.DataFrame.from_records(rows, columns=list(ARRIVAL_COLUMNS))


def write_predictions(db: Database, rows: Iterable[Sequence[Any]]) -> int:
    """Store sampled arrival predictions (rows in `PREDICTION_COLUMNS` order); duplicates are skipped.

    Returns
    -------
    int
        Rows inserted.
    """
    return _copy_batch(db, "arrival_predictions", PREDICTION_COLUMNS, rows)


def write_positions(db: Database, rows: Iterable[Sequence[Any]]) -> int:
    """Store vehicle positions (rows in ``POSITION_COLUMNS`` order, as `telematics.ingest` parses them).

    Rows may stop before the trailing ``start_time`` (then NULL). Positions already stored
    (same agency, vehicle and time) are skipped.

    Returns
    -------
    int
        Rows inserted.
    """
    width = len(POSITION_COLUMNS)
    batch = [tuple(r) + (None,) * (width - len(r)) for r in rows]
    if not batch:
        return 0
    with db.connection() as conn:
        return copy_rows(conn, "vehicle_positions", POSITION_COLUMNS, batch)


def read_positions(db: Database, since: datetime, agency_id: str | None = None) -> pd.DataFrame:
    """Vehicle positions with ``time >= since`` (all agencies unless given), oldest first.

    Returns
    -------
    DataFrame
        Columns `telematics.ingest.POSITION_COLUMNS`; ``start_time`` is ``HH:MM:SS`` text
        or None.
    """
    query = "SELECT " + ", ".join(POSITION_COLUMNS) + " FROM vehicle_positions WHERE time >= %s"
    params: list[Any] = [since]
    if agency_id is not None:
        query += " AND agency = %s"
        params.append(agency_id)
    rows = db.fetchall(query + " ORDER BY time", params)
    return pd.DataFrame.from_records(rows, columns=list(POSITION_COLUMNS))


def fill_start_times(db: Database, runs: Sequence[tuple[str, str, datetime, str, str]]) -> set[tuple[str, str, datetime]]:
    """Record the run the live assignment gave to stored positions that named no run.

    Sets ``start_time`` of the stored position ``(agency, vehicle_id, time)`` whose
    ``trip_id`` is the given (frequency-based) trip and whose ``start_time`` is still NULL;
    the message's own start time is never overwritten.

    Parameters
    ----------
    runs : sequence of tuple
        ``(agency, vehicle_id, time, trip_id, start_time)`` with ``time`` a timezone-aware
        datetime and ``start_time`` ``HH:MM:SS`` of the service day.

    Returns
    -------
    set of tuple
        ``(agency, vehicle_id, time)`` of the positions updated; a position not stored
        yet (the collector has not committed it) is missing and may be retried.
    """
    if not runs:
        return set()
    lo = min(r[2] for r in runs)
    hi = max(r[2] for r in runs)
    with db.connection() as conn, conn.cursor() as cur:
        # literal bounds let the planner skip the daily partitions / chunks outside them
        bounds = cur.mogrify("p.time BETWEEN %s AND %s", (lo, hi)).decode()
        rows = psycopg2.extras.execute_values(
            cur,
            "UPDATE vehicle_positions AS p SET start_time = f.start_time"
            " FROM (VALUES %s) AS f (agency, vehicle_id, time, trip_id, start_time)"
            " WHERE p.agency = f.agency AND p.vehicle_id = f.vehicle_id AND p.time = f.time"
            " AND p.trip_id = f.trip_id AND p.start_time IS NULL AND " + bounds
            + " RETURNING p.agency, p.vehicle_id, p.time",
            [tuple(r) for r in runs], template="(%s, %s, %s::timestamptz, %s, %s)", fetch=True)
    return {(str(a), str(v), t) for a, v, t in rows}

"""Camera count indicators for reports: volumes per interval, peak hour volume and factor.

Pure functions over pandas frames compute each indicator (the docstring is its one
definition, with units); `section` reads ``traffic_counts`` through the
``traffic_counts_15m`` rollup (``its/migrations/0500_reports.sql``: ``date_bin`` on native
PostgreSQL, a continuous aggregate on TimescaleDB) for a period ``[start, end)``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from its.db import Database
from its.indicators import Indicator, indicator_table

__all__ = ["KEYS", "counts_per_interval", "peak_hour", "section"]

#: Columns identifying one counted stream.
KEYS = ["camera_id", "line_id", "direction", "vehicle_class"]


def counts_per_interval(counts: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Vehicles counted (vehicles) per camera, line, direction, class and interval.

    Sum of ``count`` over the rows whose ``interval_start`` falls in the interval
    (``freq``: ``"15min"``, ``"h"`` or ``"D"``, UTC boundaries).

    Returns
    -------
    DataFrame
        ``camera_id, line_id, direction, vehicle_class, interval_start, vehicles``.
    """
    start = pd.to_datetime(counts["interval_start"], utc=True).dt.floor(freq)
    frame = counts[KEYS].assign(interval_start=start.to_numpy(), vehicles=counts["count"].to_numpy(np.int64))
    return frame.groupby([*KEYS, "interval_start"], sort=True)["vehicles"].sum().reset_index()


def peak_hour(counts_15m: pd.DataFrame) -> pd.DataFrame:
    """Peak hour volume (vehicles/h) and peak hour factor per camera, line and direction.

    All classes summed per 15-min interval (intervals without a record between a stream's
    first and last count are 0). The peak hour is the four consecutive 15-min intervals with
    the largest total ``V``; ``PHF = V / (4 x V15max)`` with ``V15max`` the largest 15-min
    volume inside it (Highway Capacity Manual). Streams with less than an hour of intervals
    are left out.

    Parameters
    ----------
    counts_15m : DataFrame
        ``camera_id, line_id, direction, interval_start`` (15-min aligned), ``vehicles``.

    Returns
    -------
    DataFrame
        ``camera_id, line_id, direction, peak_start, peak_hour_volume, v15_max, phf``.
    """
    keys = ["camera_id", "line_id", "direction"]
    total = counts_15m.groupby([*keys, "interval_start"], sort=True)["vehicles"].sum().reset_index()
    rows = []
    for key, g in total.groupby(keys, sort=True):
        series = g.set_index("interval_start")["vehicles"]
        full = series.reindex(pd.date_range(series.index.min(), series.index.max(), freq="15min"), fill_value=0)
        v = full.to_numpy(np.float64)
        if len(v) < 4:
            continue
        window = np.lib.stride_tricks.sliding_window_view(v, 4)
        hour = window.sum(axis=1)
        i = int(np.argmax(hour))
        v15 = float(window[i].max())
        rows.append((*key, full.index[i], float(hour[i]), v15, float(hour[i] / (4 * v15)) if v15 > 0 else None))
    return pd.DataFrame(rows, columns=[*keys, "peak_start", "peak_hour_volume", "v15_max", "phf"])




def read_counts_15m(db: Database, start: datetime, end: datetime) -> pd.DataFrame:
    """15-min volumes of ``[start, end)`` from the ``traffic_counts_15m`` rollup."""
    rows = db.fetchall("SELECT camera_id, line_id, direction, vehicle_class, bucket, vehicles"
                       " FROM traffic_counts_15m WHERE bucket >= %s AND bucket < %s", (start, end))
    return pd.DataFrame.from_records(rows, columns=[*KEYS, "interval_start", "count"])


def section(db: Database, start: datetime, end: datetime) -> dict[str, Indicator]:
    """Every camera count indicator of ``[start, end)``."""
    c = read_counts_15m(db, start, end)
    reason = "no camera counts in the period"
    if c.empty:
        q = h = d = p = None
    else:
        q = counts_per_interval(c, "15min")
        h, d = counts_per_interval(c, "h"), counts_per_interval(c, "D")
        p = peak_hour(q)
        if p.empty:
            p = None
    return {
        "counts_15min": indicator_table(q, "vehicles", counts_per_interval, reason),
        "counts_hour": indicator_table(h, "vehicles", counts_per_interval, reason),
        "counts_day": indicator_table(d, "vehicles", counts_per_interval, reason),
        "peak_hour": indicator_table(p, "vehicles/h; PHF", peak_hour,
                            reason if c.empty else "no stream with an hour of 15-min counts"),
    }

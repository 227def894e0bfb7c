"""Pedestrian indicators for reports, next to the vehicle counts (:mod:`video.kpi`).

Pure functions over pandas frames compute each indicator (the docstring is its one
definition, with units); :func:`section` reads ``people_counts`` for a period
``[start, end)``, binned to 15 minutes in SQL. Pedestrian volumes (people/h) come from
people-counting lines; a camera without them (or whose frames are too far apart to follow
people) reports people present per zone only, which is a different quantity (people at a
time, not people per hour) and is reported as such.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from its.db import Database
from its.indicators import Indicator, indicator_table

__all__ = ["pedestrian_peak_hour", "pedestrian_volume_per_hour", "people_present_peak", "people_present_per_hour",
           "read_people_15m", "section"]

_ZONE_COLUMNS = ["camera_id", "zone_id", "interval_start", "person_samples", "samples", "people_max"]
_LINE_COLUMNS = ["camera_id", "line_id", "direction", "interval_start", "people"]


def read_people_15m(db: Database, start: datetime, end: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """15-min bins of ``people_counts`` in ``[start, end)``: ``(zones, lines)``.

    ``zones``: ``camera_id, zone_id, interval_start, person_samples`` (sum of mean people x
    estimates), ``samples`` (estimates), ``people_max`` (people); ``lines``: ``camera_id,
    line_id, direction, interval_start, people`` (crossings summed, people).
    """
    rows = db.fetchall(
        "SELECT camera_id, place_id, measure, date_bin(interval '15 minutes', interval_start, timestamptz 'epoch'),"
        " sum(people_mean * samples), sum(samples), max(people_max), sum(crossings)"
        " FROM people_counts WHERE interval_start >= %s AND interval_start < %s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        (start, end))
    zones = [(c, p, t, float(ps), int(n), float(mx)) for c, p, m, t, ps, n, mx, _ in rows if m == "present"]
    lines = [(c, p, m, t, float(x)) for c, p, m, t, _, _, _, x in rows if m != "present"]
    return pd.DataFrame.from_records(zones, columns=_ZONE_COLUMNS), pd.DataFrame.from_records(lines, columns=_LINE_COLUMNS)


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def people_present_per_hour(zones: pd.DataFrame) -> pd.DataFrame:
    """People present per camera, zone and hour (people).

    ``people_mean``: mean of every people estimate made in the hour (each interval's mean
    weighted by its number of estimates); ``people_max``: most people present in one
    estimate. Zone ``all`` is the camera's whole region of interest. UTC hours.

    Returns
    -------
    DataFrame
        ``camera_id, zone_id, interval_start, people_mean, people_max``.
    """
    z = zones.assign(interval_start=_utc(zones["interval_start"]).dt.floor("h"))
    g = z.groupby(["camera_id", "zone_id", "interval_start"], sort=True)
    out = g.agg(person_samples=("person_samples", "sum"), samples=("samples", "sum"), people_max=("people_max", "max"))
    out["people_mean"] = out["person_samples"] / out["samples"]
    return out.reset_index()[["camera_id", "zone_id", "interval_start", "people_mean", "people_max"]]


def pedestrian_volume_per_hour(lines: pd.DataFrame) -> pd.DataFrame:
    """Pedestrians crossing each people-counting line per hour, by direction (people/h).

    Sum of the crossings (estimated from density and optical flow, :mod:`video.people_flow`)
    of the intervals starting in the UTC hour.

    Returns
    -------
    DataFrame
        ``camera_id, line_id, direction, interval_start, people``.
    """
    frame = lines.assign(interval_start=_utc(lines["interval_start"]).dt.floor("h"))
    return frame.groupby(["camera_id", "line_id", "direction", "interval_start"], sort=True)["people"].sum().reset_index()


def _windows(series: pd.Series, fill: float | None) -> tuple[pd.Index, np.ndarray]:
    """A 15-min series on its full range of bins (missing bins ``fill``, NaN when None)."""
    full = series.reindex(pd.date_range(series.index.min(), series.index.max(), freq="15min"))
    values = full.to_numpy(np.float64)
    if fill is not None:
        values = np.nan_to_num(values, nan=fill)
    return full.index, values


def pedestrian_peak_hour(lines_15m: pd.DataFrame) -> pd.DataFrame:
    """Peak hour of each people-counting line: the four consecutive 15-min bins with the most
    pedestrians crossing, both directions together (people/h), and each direction's volume in it.

    Bins without a record between a line's first and last are 0 (as for vehicles, see
    :func:`video.kpi.peak_hour`); lines with less than an hour of bins are left out.

    Returns
    -------
    DataFrame
        ``camera_id, line_id, peak_start, peak_hour_volume, in, out`` (people/h).
    """
    rows = []
    frame = lines_15m.assign(interval_start=_utc(lines_15m["interval_start"]))
    for (camera, line), g in frame.groupby(["camera_id", "line_id"], sort=True):
        per_dir = g.pivot_table(index="interval_start", columns="direction", values="people", aggfunc="sum")
        index, both = _windows(per_dir.sum(axis=1), 0.0)
        if len(both) < 4:
            continue
        hour = np.lib.stride_tricks.sliding_window_view(both, 4).sum(axis=1)
        i = int(np.argmax(hour))
        window = per_dir.reindex(index[i:i + 4]).fillna(0.0)
        rows.append((camera, line, index[i], float(hour[i]),
                     *(float(window[d].sum()) if d in window else 0.0 for d in ("in", "out"))))
    return pd.DataFrame(rows, columns=["camera_id", "line_id", "peak_start", "peak_hour_volume", "in", "out"])


def people_present_peak(zones_15m: pd.DataFrame) -> pd.DataFrame:
    """Busiest hour of each zone: the four consecutive 15-min bins with the highest mean
    people present (people), and the most people present in one estimate in the period.

    Only windows whose four bins all have estimates count; zones with no such hour are left
    out.

    Returns
    -------
    DataFrame
        ``camera_id, zone_id, peak_start, peak_hour_mean, people_max, max_at`` (people;
        ``max_at`` the start of the 15-min bin holding the maximum).
    """
    rows = []
    frame = zones_15m.assign(interval_start=_utc(zones_15m["interval_start"]))
    for (camera, zone), g in frame.groupby(["camera_id", "zone_id"], sort=True):
        g = g.set_index("interval_start").sort_index()
        index, person = _windows(g["person_samples"], None)
        _, samples = _windows(g["samples"].astype(np.float64), None)
        if len(index) < 4:
            continue
        ps = np.lib.stride_tricks.sliding_window_view(person, 4).sum(axis=1)
        n = np.lib.stride_tricks.sliding_window_view(samples, 4).sum(axis=1)
        mean = ps / n  # NaN where a bin is missing
        if np.all(np.isnan(mean)):
            continue
        i = int(np.nanargmax(mean))
        top = g["people_max"].idxmax()
        rows.append((camera, zone, index[i], float(mean[i]), float(g["people_max"].max()), top))
    return pd.DataFrame(rows, columns=["camera_id", "zone_id", "peak_start", "peak_hour_mean", "people_max", "max_at"])


def section(db: Database, start: datetime, end: datetime) -> dict[str, Indicator]:
    """Every pedestrian indicator of ``[start, end)``."""
    zones, lines = read_people_15m(db, start, end)
    no_zones = "no people estimates from cameras in the period"
    no_lines = ("no people-counting line measured in the period (cameras without people lines, or with frames "
                "more than 0.25 s apart, report people present per zone only)")
    present = None if zones.empty else people_present_per_hour(zones)
    present_peak = None if zones.empty else people_present_peak(zones)
    volume = None if lines.empty else pedestrian_volume_per_hour(lines)
    peak = None if lines.empty else pedestrian_peak_hour(lines)
    return {
        "pedestrians_hour": indicator_table(volume, "people/h", pedestrian_volume_per_hour, no_lines),
        "pedestrians_peak_hour": indicator_table(
            None if peak is None or peak.empty else peak, "people/h", pedestrian_peak_hour,
            no_lines if lines.empty else "no people-counting line with an hour of 15-min bins"),
        "people_present_hour": indicator_table(present, "people", people_present_per_hour, no_zones),
        "people_present_peak": indicator_table(
            None if present_peak is None or present_peak.empty else present_peak, "people", people_present_peak,
            no_zones if zones.empty else "no zone with a full hour of people estimates"),
    }

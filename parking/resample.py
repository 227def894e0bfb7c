"""Histories as other networks would report them: another reading rate, another time zone, fewer sites.

Used to check that forecasts and guidance do not depend on Birmingham's particulars: its
readings every ~30 min, 08:00-16:30 local, in Europe/London. Pure functions over the frame of
:func:`parking.cleaning.read_history_csv` (no I/O).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["relocate", "resample_readings"]

_COLUMNS = ("site_id", "time", "local_min", "weekday", "local_date", "capacity", "occupied", "line")


def resample_readings(history: pd.DataFrame, every_min: int, max_gap_min: float = 45.0) -> pd.DataFrame:
    """Readings every ``every_min`` minutes, as a counter polled at that rate would give them.

    Each site's occupancy is interpolated linearly in time at the multiples of ``every_min``
    (UTC) that lie between two of its readings at most ``max_gap_min`` apart (no reading is
    invented across a longer gap, e.g. overnight), rounded to whole spaces. Capacity and UTC
    offset are those of the reading before.

    Parameters
    ----------
    history : DataFrame
        As from :func:`parking.cleaning.read_history_csv`.
    every_min : int
        Reading interval (min), a divisor or multiple of 60.
    max_gap_min : float
        Longest gap between two readings that is interpolated across (min).

    Returns
    -------
    DataFrame
        Same columns, sorted by site and time; ``line`` is 0 (no line of a file).
    """
    if every_min <= 0 or (60 % every_min and every_min % 60):
        raise ValueError(f"every_min must divide 60 or be a multiple of it, got {every_min}")
    step_s = every_min * 60
    parts = []
    for site_id, part in history.sort_values(["site_id", "time"], kind="stable").groupby("site_id", sort=True):
        part = part.drop_duplicates("time")
        t = ((part["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
        if t.size < 2:
            continue
        grid = np.arange(-(-t[0] // step_s) * step_s, t[-1] + 1, step_s, dtype=np.int64)
        after = np.searchsorted(t, grid, side="left")
        exact = (after < t.size) & (t[np.minimum(after, t.size - 1)] == grid)
        before = np.where(exact, after, after - 1)
        nxt = np.minimum(after, t.size - 1)
        ok = exact | ((before >= 0) & (after < t.size) & (t[nxt] - t[np.maximum(before, 0)] <= max_gap_min * 60))
        grid, before = grid[ok], before[ok]
        occupied = np.rint(np.interp(grid, t, part["occupied"].to_numpy(np.float64))).astype(np.int64)
        offset = (part["local_min"].to_numpy(np.float64) - (t % 86400) / 60.0) % 1440  # local - UTC (min)
        offset = np.rint(np.where(offset > 720, offset - 1440, offset) / 15.0)[before] * 15.0
        time = pd.to_datetime(grid, unit="s", utc=True)
        local = time.tz_localize(None) + pd.to_timedelta(offset, unit="min")
        parts.append(pd.DataFrame({
            "site_id": str(site_id),
            "time": time,
            "local_min": (local.hour * 60 + local.minute).to_numpy(np.float64),
            "weekday": local.day_of_week.to_numpy(),
            "local_date": local.normalize().to_numpy(),
            "capacity": part["capacity"].to_numpy(np.int64)[before],
            "occupied": occupied,
            "line": 0,
        }))
    if not parts:
        return history.iloc[0:0][list(_COLUMNS)]
    return pd.concat(parts, ignore_index=True)


def relocate(history: pd.DataFrame, utc_offset_min: int, keep_sites: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """The same local readings as if recorded in another time zone, on a random share of the sites.

    Local wall-clock times, weekdays and dates are kept; the UTC instants move so that every
    reading is at ``utc_offset_min`` from UTC (a city elsewhere whose car parks fill at the
    same local hours).

    Parameters
    ----------
    utc_offset_min : int
        UTC offset of the new zone (min), e.g. 600 for UTC+10.
    keep_sites : float
        Share of sites kept (0-1], chosen at random with ``seed``; at least one.
    """
    sites = np.unique(history["site_id"].to_numpy().astype(str))
    n = max(1, round(keep_sites * sites.size))
    kept = np.random.default_rng(seed).choice(sites, size=n, replace=False)
    out = history[history["site_id"].isin(kept)].copy()
    local = pd.to_datetime(out["local_date"]) + pd.to_timedelta(out["local_min"] * 60, unit="s")
    out["time"] = (local - pd.Timedelta(minutes=utc_offset_min)).dt.tz_localize("UTC")
    return out.reset_index(drop=True)

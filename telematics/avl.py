"""Recorded AVL positions: reading a CSV and keeping the fixes the live service would apply.

`read_avl` reads the ``../shared/data/README.md`` format as a feed nobody tuned for writes it:
only ``vehicle_id``, ``timestamp``, ``lat`` and ``lon`` are required (a navigation terminal
reports no more); ``trip_id``, ``route_id``, ``start_date``, ``speed_mps`` and ``bearing`` are
empty when their column is absent. ``timestamp`` is ISO 8601 (any offset) or epoch seconds
(epoch milliseconds above `its.timeutil.EPOCH_MS_ABOVE`, as in the live messages). A bad value
raises `AvlError` naming the file, the line (the header is line 1) and the field.

`plausible_positions` keeps what the live arrivals state applies (`telematics.gate`): one
fix per vehicle and time (a repeated fix is dropped, as the live fleet drops it), none
flagged by `telematics.plausibility.plausibility_flags` with the live thresholds and the
agency's service area (a "null island" 0, 0 fix, a jump no bus can make). So a replay of a
recorded day and the live service see the same positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from its.timeutil import EPOCH_MS_ABOVE
from telematics.config import TelematicsSettings
from telematics.gate import service_area
from telematics.gtfs import Feed
from telematics.plausibility import AREA, SPEED, plausibility_flags

__all__ = ["AVL_OPTIONAL", "AVL_REQUIRED", "AvlError", "PlausiblePositions",
           "plausible_positions", "read_avl"]

#: Columns an AVL CSV must have.
AVL_REQUIRED = ("vehicle_id", "timestamp", "lat", "lon")
#: Columns read when present (empty otherwise).
AVL_OPTIONAL = ("trip_id", "route_id", "start_date", "speed_mps", "bearing")


class AvlError(ValueError):
    """An AVL CSV is invalid; the message names the file, line and field."""


def _times_s(name: str, text: pd.Series) -> pd.Series:
    """Epoch seconds of ISO 8601 or epoch (s or ms) timestamps; `AvlError` at the first bad one."""
    numeric = pd.to_numeric(text, errors="coerce")
    epoch = numeric.where(numeric.abs() <= EPOCH_MS_ABOVE, numeric / 1000.0)
    iso = pd.to_datetime(text.where(numeric.isna()), utc=True, errors="coerce", format="ISO8601")
    seconds = epoch.where(numeric.notna(), (iso - pd.Timestamp(0, tz="UTC")).dt.total_seconds())
    bad = seconds.isna() | ~np.isfinite(seconds.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise AvlError(f"{name} line {row + 2} field timestamp: expected ISO 8601 or epoch seconds, got "
                       f"{text.iloc[row]!r}")
    return seconds.astype(np.float64)


def read_avl(path: str | Path) -> pd.DataFrame:
    """Read an AVL CSV, sorted by time.

    Parameters
    ----------
    path : str or Path
        The CSV (header line first).

    Returns
    -------
    DataFrame
        ``vehicle_id, trip_id, route_id, start_date`` (str, ``""`` when empty or absent),
        ``time_s`` (epoch s), ``lat, lon`` (degrees), ``speed_mps``, ``bearing`` (float, NaN
        when empty or absent), ``line`` (1-based line in the file).

    Raises
    ------
    AvlError
        A required column is missing, or a value is not a number or a time.
    """
    name = Path(path).name
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in AVL_REQUIRED:
        if column not in frame.columns:
            raise AvlError(f"{name} line 1 field {column}: required column missing")
    for column in AVL_OPTIONAL:
        if column not in frame.columns:
            frame[column] = ""
    out = pd.DataFrame({c: frame[c].str.strip() for c in ("vehicle_id", "trip_id", "route_id", "start_date")})
    for column in ("lat", "lon", "speed_mps", "bearing"):
        out[column] = pd.to_numeric(frame[column], errors="coerce")
        bad_col = out[column].isna() & (frame[column].str.strip() != "")
        if column in ("lat", "lon"):
            bad_col |= out[column].isna()
        if bad_col.any():
            row = int(np.flatnonzero(bad_col.to_numpy())[0])
            raise AvlError(f"{name} line {row + 2} field {column}: expected a number, got "
                           f"{frame[column].iloc[row]!r}")
    out["time_s"] = _times_s(name, frame["timestamp"])
    out["line"] = np.arange(len(frame)) + 2
    return out.sort_values(["time_s", "vehicle_id"], kind="stable").reset_index(drop=True)


class PlausiblePositions(NamedTuple):
    """`plausible_positions`: the fixes kept (``avl``, same columns, time order) and how
    many were left out: ``repeated`` (a second fix of a vehicle at the same time), ``area``
    (outside the service area), ``speed`` (an impossible move)."""

    avl: pd.DataFrame
    repeated: int
    area: int
    speed: int


def plausible_positions(avl: pd.DataFrame, feed: Feed, config: TelematicsSettings | None = None) -> PlausiblePositions:
    """The fixes the live arrivals state would apply.

    Parameters
    ----------
    avl : DataFrame
        From `read_avl` (time order).
    feed : Feed
        The schedule: its stops bound the default service area.
    config : TelematicsSettings, optional
        ``max_speed_mps``, ``gps_noise_m``, ``reanchor_fixes``, ``service_area`` and its
        margin (default: the live service's settings).

    Returns
    -------
    PlausiblePositions
    """
    cfg = config or TelematicsSettings()
    repeated = avl.duplicated(["vehicle_id", "time_s"], keep="first").to_numpy()
    kept = avl[~repeated]
    area = service_area(cfg, feed.stops["stop_lat"].tolist(), feed.stops["stop_lon"].tolist())
    flags = plausibility_flags(kept["vehicle_id"].to_numpy(), kept["time_s"].to_numpy(np.float64),
                               kept["lat"].to_numpy(np.float64), kept["lon"].to_numpy(np.float64),
                               max_speed_mps=cfg.max_speed_mps, area=area, gps_noise_m=cfg.gps_noise_m,
                               reanchor_fixes=cfg.reanchor_fixes)
    return PlausiblePositions(kept[flags == 0].reset_index(drop=True), int(repeated.sum()),
                              int(((flags & AREA) > 0).sum()), int(((flags & (SPEED | AREA)) == SPEED).sum()))

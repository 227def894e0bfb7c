"""Cleaning of occupancy readings: clamping, duplicates, counter drift.

The live path and the evaluation share these functions, so a history file is cleaned
exactly as messages are when they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "FLAG_CLAMPED_NEGATIVE",
    "FLAG_CLAMPED_OVER_CAPACITY",
    "FLAG_DRIFT_CORRECTED",
    "HISTORY_COLUMNS",
    "CleaningReport",
    "CounterTracker",
    "HistoryFormatError",
    "clamp_occupancy",
    "clean_history",
    "correct_counter_drift",
    "read_history_csv",
]

FLAG_CLAMPED_OVER_CAPACITY = "clamped_over_capacity"
FLAG_CLAMPED_NEGATIVE = "clamped_negative"
FLAG_DRIFT_CORRECTED = "counter_drift_corrected"
HISTORY_COLUMNS = ("site_id", "timestamp", "capacity", "occupied")


class HistoryFormatError(ValueError):
    """A parking history CSV is malformed; the message names file, line and field."""


@dataclass(frozen=True)
class CleaningReport:
    """What cleaning changed.

    Attributes
    ----------
    over_capacity, negative : int
        Readings clamped to capacity / to zero.
    duplicates : int
        Readings dropped because the same site and time was already seen.
    """

    over_capacity: int = 0
    negative: int = 0
    duplicates: int = 0

    @property
    def clamped(self) -> int:
        """Readings clamped either way."""
        return self.over_capacity + self.negative

    def as_dict(self) -> dict[str, int]:
        return {
            "clamped": self.clamped,
            "duplicates": self.duplicates,
            "over_capacity": self.over_capacity,
            "negative": self.negative,
        }


def clamp_occupancy(
    occupied: npt.ArrayLike, capacity: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Clamp occupancy into ``[0, capacity]``.

    Parameters
    ----------
    occupied, capacity : array_like of int
        Occupied spaces and capacity (spaces), broadcastable.

    Returns
    -------
    clamped : ndarray of int64
        Occupancy in ``[0, capacity]`` (spaces).
    over, negative : ndarray of bool
        Where the input was above capacity / below zero.
    """
    occ = np.asarray(occupied, dtype=np.int64)
    cap = np.asarray(capacity, dtype=np.int64)
    over = occ > cap
    negative = occ < 0
    return np.clip(occ, 0, np.maximum(cap, 0)), over, negative


def read_history_csv(path: str | Path) -> pd.DataFrame:
    """Read a parking history CSV (``site_id,timestamp,capacity,occupied``).

    Returns
    -------
    DataFrame
        Columns ``site_id`` (str), ``time`` (UTC datetime64), ``local_min`` (minutes since
        local midnight, from the timestamp's own offset), ``weekday`` (0 = Monday, local),
        ``local_date`` (local calendar day as datetime64), ``capacity``, ``occupied`` (int64),
        ``line`` (1-based line number in the file).

    Raises
    ------
    HistoryFormatError
        Missing column or unparsable value, naming file, line and field.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise HistoryFormatError(f"{path}: cannot read CSV: {exc}") from None
    missing = [c for c in HISTORY_COLUMNS if c not in raw.columns]
    if missing:
        raise HistoryFormatError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    line = np.arange(len(raw), dtype=np.int64) + 2
    stamps = raw["timestamp"].str.strip()
    time = pd.to_datetime(stamps, utc=True, errors="coerce", format="ISO8601")
    _fail_where(path, line, time.isna().to_numpy(), "timestamp", raw["timestamp"])
    offset_min = _utc_offset_minutes(stamps)
    _fail_where(path, line, np.isnan(offset_min), "timestamp", raw["timestamp"])
    numbers = {}
    for name in ("capacity", "occupied"):
        values = pd.to_numeric(raw[name].str.strip(), errors="coerce")
        bad = values.isna().to_numpy() | (values.to_numpy() % 1 != 0)
        _fail_where(path, line, bad, name, raw[name])
        numbers[name] = values.to_numpy().astype(np.int64)
    _fail_where(path, line, numbers["capacity"] <= 0, "capacity", raw["capacity"])
    sites = raw["site_id"].str.strip()
    _fail_where(path, line, (sites == "").to_numpy(), "site_id", raw["site_id"])
    local = time.dt.tz_localize(None) + pd.to_timedelta(offset_min, unit="min")
    return pd.DataFrame(
        {
            "site_id": sites.to_numpy(),
            "time": time.to_numpy(),
            "local_min": (local.dt.hour * 60 + local.dt.minute + local.dt.second / 60.0).to_numpy(),
            "weekday": local.dt.day_of_week.to_numpy(),
            "local_date": local.dt.normalize().to_numpy(),
            "capacity": numbers["capacity"],
            "occupied": numbers["occupied"],
            "line": line,
        }
    )


def _utc_offset_minutes(stamps: pd.Series) -> npt.NDArray[np.float64]:
    """UTC offset of each ISO 8601 string in minutes (``Z`` = 0); NaN where none is given."""
    parts = stamps.str.extract(r"(?:(Z)|([+-])(\d{2}):?(\d{2}))$")
    sign = np.where(parts[1] == "-", -1.0, 1.0)
    minutes = pd.to_numeric(parts[2], errors="coerce").to_numpy() * 60 + pd.to_numeric(
        parts[3], errors="coerce"
    ).to_numpy()
    out = np.where(parts[0].notna().to_numpy(), 0.0, sign * minutes)
    return out.astype(np.float64)


def _fail_where(path: Path, line: npt.NDArray[np.int64], bad: npt.NDArray[np.bool_], field_name: str, values: pd.Series) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise HistoryFormatError(
            f"{path}: line {int(line[i])}: field {field_name!r}: invalid value {values.iloc[i]!r}"
            f" ({int(bad.sum())} bad row(s) in total)"
        )


def clean_history(history: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean readings as the live path does: drop duplicates, clamp into ``[0, capacity]``.

    Parameters
    ----------
    history : DataFrame
        As returned by :func:`read_history_csv` (at least ``site_id``, ``time``,
        ``capacity``, ``occupied``).

    Returns
    -------
    cleaned : DataFrame
        Sorted by site and time, one row per (site, time), ``occupied`` clamped, with bool
        columns ``over_capacity``, ``negative`` and int ``free`` (spaces).
    report : CleaningReport
    """
    ordered = history.sort_values(["site_id", "time"], kind="stable")
    dup = ordered.duplicated(["site_id", "time"], keep="first").to_numpy()
    kept = ordered.loc[~dup].reset_index(drop=True)
    occ, over, negative = clamp_occupancy(kept["occupied"].to_numpy(), kept["capacity"].to_numpy())
    kept = kept.assign(
        occupied=occ,
        over_capacity=over,
        negative=negative,
        free=kept["capacity"].to_numpy() - occ,
    )
    report = CleaningReport(
        over_capacity=int(over.sum()), negative=int(negative.sum()), duplicates=int(dup.sum())
    )
    return kept, report


def correct_counter_drift(
    times_s: npt.ArrayLike,
    net_flow: npt.ArrayLike,
    absolute_times_s: npt.ArrayLike,
    absolute_occupied: npt.ArrayLike,
) -> npt.NDArray[np.float64]:
    """Occupancy from entry/exit deltas, drift-corrected against absolute readings.

    Integrating counter deltas drifts (missed or double counts). At each absolute reading
    the integrated estimate is compared with the truth; the difference (drift) is spread
    linearly over the time since the previous absolute reading, and held after the last.

    Parameters
    ----------
    times_s : array_like of float
        Sorted times of the delta messages (s).
    net_flow : array_like of float
        ``entries - exits`` of each message (vehicles).
    absolute_times_s, absolute_occupied : array_like of float
        Sorted times (s) and values (spaces) of absolute readings; at least one.

    Returns
    -------
    ndarray of float64
        Corrected occupancy at each ``times_s`` (spaces).
    """
    t = np.asarray(times_s, dtype=np.float64)
    cum = np.cumsum(np.asarray(net_flow, dtype=np.float64))
    at = np.asarray(absolute_times_s, dtype=np.float64)
    av = np.asarray(absolute_occupied, dtype=np.float64)
    if at.size == 0:
        raise ValueError("drift correction needs at least one absolute reading")
    if t.size == 0:
        return np.empty(0, dtype=np.float64)
    # integrated estimate at the absolute times (deltas up to and including that time)
    idx = np.searchsorted(t, at, side="right") - 1
    cum_at = np.where(idx >= 0, cum[np.clip(idx, 0, None)], 0.0)
    offset = av - cum_at  # what must be added to the running sum to match each reading
    return cum + np.interp(t, at, offset)


@dataclass
class CounterTracker:
    """Live occupancy of a counter-equipped site from absolute and delta messages.

    Attributes
    ----------
    occupied : float or None
        Current estimate (spaces), None before the first message.
    last_drift : float
        Last correction applied at an absolute reading (spaces; positive = counters undercounted).
    """

    occupied: float | None = None
    last_drift: float = 0.0
    drift_corrections: int = 0
    flags: set[str] = field(default_factory=set)

    def absolute(self, occupied: int) -> float:
        """Apply an absolute reading; return the drift it corrected (spaces)."""
        drift = 0.0 if self.occupied is None else occupied - self.occupied
        if drift != 0:
            self.drift_corrections += 1
            self.flags.add(FLAG_DRIFT_CORRECTED)
        self.last_drift = drift
        self.occupied = float(occupied)
        return drift

    def delta(self, entries: int, exits: int) -> float:
        """Apply entry/exit counts; return the new estimate (spaces, may be unclamped)."""
        self.occupied = (self.occupied or 0.0) + entries - exits
        return self.occupied

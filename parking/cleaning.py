"""Cleaning of occupancy readings: clamping, duplicates, counter drift.

The live path and the evaluation share these functions, so a history file is cleaned
exactly as messages are when they arrive.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd

from its.timeutil import EPOCH_MS_ABOVE

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
    "parse_history",
    "read_history_csv",
]

FLAG_CLAMPED_OVER_CAPACITY = "clamped_over_capacity"
FLAG_CLAMPED_NEGATIVE = "clamped_negative"
FLAG_DRIFT_CORRECTED = "counter_drift_corrected"
HISTORY_COLUMNS = ("site_id", "timestamp", "capacity", "occupied")
#: Field separators tried after the comma (a header split by one of them into the required names).
SEPARATORS = (",", ";", "\t", "|")
#: Readings are accepted from the start of this year to the start of :data:`MAX_YEAR` (UTC).
MIN_YEAR = 1990
MAX_YEAR = 2100
#: Largest capacity or occupancy accepted (spaces); larger is a corrupt field.
MAX_SPACES = 1_000_000


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
    zero_capacity : int
        Readings dropped because the site reported a capacity of 0 spaces then (no space to
        forecast or to send a driver to).
    """

    over_capacity: int = 0
    negative: int = 0
    duplicates: int = 0
    zero_capacity: int = 0

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
            "zero_capacity": self.zero_capacity,
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


def read_history_csv(path: str | Path, timezone: str | None = None) -> pd.DataFrame:
    """Read a parking history CSV (``site_id,timestamp,capacity,occupied``).

    The I/O half of :func:`parse_history`: reads the file as UTF-8 (a byte-order mark is
    ignored) and parses it. See :func:`parse_history` for the accepted layouts and timestamps.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    timezone : str, optional
        IANA time zone of the readings (see :func:`parse_history`).

    Returns
    -------
    DataFrame
        As :func:`parse_history`.

    Raises
    ------
    HistoryFormatError
        Missing or unreadable file, text that is not UTF-8, missing column or unparsable
        value, naming file, line and field.
    """
    path = Path(path)
    _zone(timezone)  # a bad zone is told before the file is read
    if not path.exists():
        raise HistoryFormatError(f"{path}: no such file")
    if not path.is_file():
        raise HistoryFormatError(f"{path}: not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HistoryFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise HistoryFormatError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None
    return parse_history(text, str(path), timezone)


def parse_history(text: str, source: str = "<history>", timezone: str | None = None) -> pd.DataFrame:
    """Parse the text of a parking history CSV (pure; no I/O).

    Layout: a header line naming at least ``site_id``, ``timestamp``, ``capacity`` and
    ``occupied`` (any order, any case, surrounding spaces ignored; other columns ignored),
    separated by commas (or, when the header splits into the required names only that way,
    semicolons, tabs or ``|``). Blank lines are skipped. ``site_id`` is kept as text
    (``007`` stays ``007``).

    Timestamps (UTC instants between :data:`MIN_YEAR` and :data:`MAX_YEAR`):

    - ISO 8601 with a UTC offset (``+01:00``, ``+0100``, ``+01``) or ``Z``: the local time of
      day, weekday and date of a reading are those of its own offset;
    - ISO 8601 without an offset (local wall-clock time) or epoch seconds (epoch milliseconds
      above :data:`its.timeutil.EPOCH_MS_ABOVE`): accepted only with ``timezone``, refused
      otherwise (the daily profiles need each reading's local time, which such a timestamp
      does not carry, and no zone is assumed silently).

    With ``timezone`` every reading's local time is taken in that IANA zone (instants with an
    offset are converted to it); a wall-clock time repeated when the clocks go back is taken
    as the first (summer-time) one, a wall-clock time skipped when they go forward is moved
    forward by the gap.

    Parameters
    ----------
    text : str
        The file's text (without byte-order mark).
    source : str
        Name of the file, for messages.
    timezone : str, optional
        IANA time zone of the readings (e.g. ``Europe/London``).

    Returns
    -------
    DataFrame
        Columns ``site_id`` (str), ``time`` (UTC datetime64), ``local_min`` (minutes since
        local midnight), ``weekday`` (0 = Monday, local), ``local_date`` (local calendar day
        as datetime64), ``capacity``, ``occupied`` (int64, spaces), ``line`` (1-based line
        number in the file). Empty (with these columns) for a file with a header only.

    Raises
    ------
    HistoryFormatError
        Empty file, missing column or unparsable value, naming file, line and field.
    """
    zone = _zone(timezone)
    if not text.strip():
        raise HistoryFormatError(f"{source}: line 1: empty file (expected a header {','.join(HISTORY_COLUMNS)})")
    body = text.lstrip("\r\n\t ")
    lead = text[:len(text) - len(body)].count("\n")  # blank lines before the header
    sep = _separator(body)
    try:
        with warnings.catch_warnings():
            # a first data row longer than the header would silently become the index (or be cut)
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(io.StringIO(body), sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=False,
                              index_col=False)
    except pd.errors.ParserWarning:
        fields = len(body.split("\n", 1)[0].split(sep))
        raise HistoryFormatError(f"{source}: line {lead + 2}: more fields than the {fields} of the header") from None
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found:
            want, line, saw = found.groups()
            raise HistoryFormatError(f"{source}: line {int(line) + lead}: {saw} fields, the header has {want}") from None
        raise HistoryFormatError(f"{source}: not a readable CSV file: {str(exc).strip()}") from None
    names = [str(c).strip().lower() for c in raw.columns]
    dup = sorted({n for n in names if n in HISTORY_COLUMNS and names.count(n) > 1})
    if dup:
        raise HistoryFormatError(f"{source}: line {lead + 1}: column(s) {', '.join(dup)} given more than once")
    raw.columns = pd.Index(names)
    missing = [c for c in HISTORY_COLUMNS if c not in names]
    if missing:
        raise HistoryFormatError(
            f"{source}: line {lead + 1}: missing column(s) {', '.join(missing)} (header {', '.join(map(repr, names))}; "
            f"expected {','.join(HISTORY_COLUMNS)}, comma-separated)")
    line = np.arange(len(raw), dtype=np.int64) + 2 + lead
    raw = raw[list(HISTORY_COLUMNS)]
    blank = (raw.apply(lambda col: col.str.strip()) == "").all(axis=1).to_numpy()
    raw, line = raw.loc[~blank].reset_index(drop=True), line[~blank]
    time, local = _parse_timestamps(raw["timestamp"].str.strip(), zone, source, line)
    numbers = {}
    for name in ("capacity", "occupied"):
        values = pd.to_numeric(raw[name].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (values % 1 != 0)
        _fail_where(source, line, bad, name, raw[name], "not a whole number")
        _fail_where(source, line, np.abs(values) > MAX_SPACES, name, raw[name], f"out of range (over {MAX_SPACES:,})")
        numbers[name] = values.astype(np.int64)
    _fail_where(source, line, numbers["capacity"] < 0, "capacity", raw["capacity"], "negative capacity")
    sites = raw["site_id"].str.strip()
    _fail_where(source, line, (sites == "").to_numpy(), "site_id", raw["site_id"], "empty")
    return pd.DataFrame(
        {
            "site_id": sites.to_numpy(dtype=object).astype(str),
            "time": time,
            "local_min": (local.dt.hour * 60 + local.dt.minute + local.dt.second / 60.0).to_numpy(np.float64),
            "weekday": local.dt.day_of_week.to_numpy(np.int64),
            "local_date": local.dt.normalize().to_numpy(),
            "capacity": numbers["capacity"],
            "occupied": numbers["occupied"],
            "line": line,
        }
    )


def _zone(timezone: str | None) -> ZoneInfo | None:
    if timezone is None:
        return None
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise HistoryFormatError(f"unknown IANA time zone {timezone!r} (e.g. Europe/London)") from None


def _separator(text: str) -> str:
    """The field separator: ``,`` unless only another of :data:`SEPARATORS` splits the header
    into the required column names."""
    header = text.split("\n", 1)[0]
    for sep in SEPARATORS:
        names = {c.strip().strip('"').strip().lower() for c in header.split(sep)}
        if set(HISTORY_COLUMNS) <= names:
            return sep
    return ","


def _parse_timestamps(stamps: pd.Series, zone: ZoneInfo | None, source: str,
                      line: npt.NDArray[np.int64]) -> tuple[pd.Series, pd.Series]:
    """UTC instants and local wall-clock times (naive) of timestamps; see :func:`parse_history`."""
    stamps = stamps.str.replace(r"z$", "Z", regex=True)
    epoch = stamps.str.fullmatch(r"[+-]?\d+(?:\.\d*)?").to_numpy(dtype=bool)
    offset_min = _utc_offset_minutes(stamps)
    has_offset = ~np.isnan(offset_min)
    iso = pd.to_datetime(stamps.where(~epoch, ""), utc=True, errors="coerce", format="ISO8601")
    seconds = pd.to_numeric(stamps.where(epoch, ""), errors="coerce").to_numpy(dtype=np.float64)
    seconds = np.where(np.abs(seconds) > EPOCH_MS_ABOVE, seconds / 1000.0, seconds)
    _fail_where(source, line, ~epoch & iso.isna().to_numpy(), "timestamp", stamps,
                "not ISO 8601 (e.g. 2016-10-04T07:59:42+01:00) nor epoch seconds")
    year = iso.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        out_of_range = np.where(epoch, (seconds < _epoch_s(MIN_YEAR)) | (seconds >= _epoch_s(MAX_YEAR)),
                                (year < MIN_YEAR) | (year >= MAX_YEAR))
    _fail_where(source, line, out_of_range, "timestamp", stamps, f"outside {MIN_YEAR}-{MAX_YEAR - 1}")
    naive = ~epoch & ~has_offset
    if zone is None:
        _fail_where(source, line, epoch | naive, "timestamp", stamps,
                    "no UTC offset, so the local time of day is unknown: give ISO 8601 with an offset or Z,"
                    " or the IANA time zone of the readings (its eval ... --timezone ZONE)")
        time = iso
        local = time.dt.tz_localize(None) + pd.to_timedelta(offset_min, unit="min")
        return time, local
    instant = pd.Series(pd.to_datetime(np.where(epoch, seconds, np.nan), unit="s", utc=True), index=stamps.index)
    instant = instant.where(epoch, iso)
    wall = iso.dt.tz_localize(None).where(naive)
    if naive.any():
        localised = wall[naive].dt.tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
        instant = instant.where(~naive, localised.dt.tz_convert("UTC").reindex(stamps.index))
    time = pd.to_datetime(instant, utc=True)
    local = time.dt.tz_convert(zone).dt.tz_localize(None)
    return time, local


def _epoch_s(year: int) -> float:
    return float((pd.Timestamp(year=year, month=1, day=1, tz="UTC") - pd.Timestamp(0, tz="UTC")).total_seconds())


def _utc_offset_minutes(stamps: pd.Series) -> npt.NDArray[np.float64]:
    """UTC offset of each ISO 8601 string in minutes (``Z`` = 0; ``+hh``, ``+hhmm``, ``+hh:mm``);
    NaN where none is given."""
    parts = stamps.str.extract(r"(?:\d{2}:\d{2}(?::\d{2})?|T\d{2,6})(?:[.,]\d+)?(?:(Z|z)|([+-])(\d{2})(?::?(\d{2}))?)$")
    sign = np.where(parts[1] == "-", -1.0, 1.0)
    hours = pd.to_numeric(parts[2], errors="coerce").to_numpy(dtype=np.float64)
    minutes = pd.to_numeric(parts[3], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
    out = np.where(parts[0].notna().to_numpy(), 0.0, sign * (hours * 60 + minutes))
    return out.astype(np.float64)


def _fail_where(source: str, line: npt.NDArray[np.int64], bad: npt.NDArray[np.bool_], field_name: str,
                values: pd.Series, why: str = "") -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise HistoryFormatError(
            f"{source}: line {int(line[i])}: field {field_name!r}: invalid value {values.iloc[i]!r}"
            + (f": {why}" if why else "") + f" ({int(bad.sum())} bad row(s) in total)"
        )


def clean_history(history: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean readings as the live path does: drop duplicates, clamp into ``[0, capacity]``;
    drop readings with a capacity of 0 (spaces).

    Parameters
    ----------
    history : DataFrame
        As returned by :func:`read_history_csv` (at least ``site_id``, ``time``,
        ``capacity``, ``occupied``).

    Returns
    -------
    cleaned : DataFrame
        Sorted by site and time, one row per (site, time), capacity above 0, ``occupied``
        clamped, with bool columns ``over_capacity``, ``negative`` and int ``free`` (spaces).
    report : CleaningReport
    """
    ordered = history.sort_values(["site_id", "time"], kind="stable")
    dup = ordered.duplicated(["site_id", "time"], keep="first").to_numpy()
    no_capacity = ~dup & (ordered["capacity"].to_numpy() <= 0)
    kept = ordered.loc[~dup & ~no_capacity].reset_index(drop=True)
    occ, over, negative = clamp_occupancy(kept["occupied"].to_numpy(), kept["capacity"].to_numpy())
    kept = kept.assign(
        occupied=occ,
        over_capacity=over,
        negative=negative,
        free=kept["capacity"].to_numpy() - occ,
    )
    report = CleaningReport(
        over_capacity=int(over.sum()), negative=int(negative.sum()), duplicates=int(dup.sum()),
        zero_capacity=int(no_capacity.sum()),
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

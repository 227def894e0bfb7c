"""Time parsing for telemetry (ISO 8601 or epoch seconds/milliseconds, always UTC) and the
collector's plausibility window (how far ahead of the clock, how long before receipt)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH_MS_ABOVE", "MAX_FUTURE", "MIN_TIME", "TimeError", "TimePolicy", "TimeWindow", "parse_time", "utcnow"]

#: A numeric timestamp above this (in absolute value) is epoch milliseconds (1e11 s is the year 5138).
EPOCH_MS_ABOVE = 1e11
#: Timestamps further than this in the future are refused.
MAX_FUTURE = timedelta(days=1)
#: Timestamps before this are refused (no ITS telemetry predates it).
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)


class TimeError(ValueError):
    """A timestamp could not be parsed or is implausible."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: object, *, now: datetime | None = None) -> datetime:
    """Parse a telemetry timestamp into an aware UTC datetime.

    Parameters
    ----------
    value : str, int or float
        ISO 8601 (with offset or ``Z``; naive is taken as UTC) or epoch seconds; numbers
        above 1e11 are epoch milliseconds.
    now : datetime, optional
        Reference for the future bound (default: current time).

    Raises
    ------
    TimeError
        Unparsable, non-finite, before 2000 or more than a day in the future.
    """
    if isinstance(value, bool):
        raise TimeError("timestamp must be ISO 8601 or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise TimeError("timestamp is not finite")
        seconds = value / 1000.0 if abs(value) > EPOCH_MS_ABOVE else float(value)
        try:
            ts = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise TimeError(f"timestamp {value!r} out of range") from None
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise TimeError("timestamp string too long")
        try:
            ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            try:
                return parse_time(float(text), now=now)
            except (ValueError, TimeError):
                raise TimeError(f"unparsable timestamp {value!r}") from None
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    else:
        raise TimeError(f"timestamp must be a string or number, got {type(value).__name__}")
    if ts < MIN_TIME:
        raise TimeError(f"timestamp {ts.isoformat()} is before {MIN_TIME.date()}")
    if ts > (now or utcnow()) + MAX_FUTURE:
        raise TimeError(f"timestamp {ts.isoformat()} is in the future")
    return ts


@dataclass(frozen=True)
class TimeWindow:
    """Plausible times of a live message.

    Attributes
    ----------
    max_future_s : float
        Largest lead over the clock at the time of the check, s (device clock skew).
    max_age_s : float
        Largest delay between the message's time and its receipt, s. Measured from receipt,
        so messages spooled during a database outage are judged by when they arrived.
    """

    max_future_s: float = 60.0
    max_age_s: float = 7 * 86400.0

    def problem(self, t_s: float, received_s: float, now_s: float) -> str | None:
        """Why epoch time ``t_s`` (s) is implausible, or None when it is plausible.

        ``received_s`` and ``now_s`` are the receipt time and the current time, epoch s.
        """
        if t_s > now_s + self.max_future_s:
            return (f"implausible time: {_iso(t_s)} is {t_s - now_s:.0f} s in the future"
                    f" (limit {self.max_future_s:g} s)")
        if t_s < received_s - self.max_age_s:
            return (f"implausible time: {_iso(t_s)} is {(received_s - t_s) / 86400.0:.1f} days before receipt"
                    f" (limit {self.max_age_s / 86400.0:g} days; older data goes through an import)")
        return None


class TimePolicy:
    """The :class:`TimeWindow` of each feed: a default with per-feed overrides (s)."""

    def __init__(self, default: TimeWindow | None = None, max_future_s_by_feed: Mapping[str, float] | None = None,
                 max_age_s_by_feed: Mapping[str, float] | None = None) -> None:
        self.default = default or TimeWindow()
        self._future = dict(max_future_s_by_feed or {})
        self._age = dict(max_age_s_by_feed or {})
        self._windows: dict[str, TimeWindow] = {}

    def window(self, feed: str) -> TimeWindow:
        found = self._windows.get(feed)
        if found is None:
            found = TimeWindow(self._future.get(feed, self.default.max_future_s),
                               self._age.get(feed, self.default.max_age_s))
            self._windows[feed] = found
        return found


def _iso(t_s: float) -> str:
    try:
        return datetime.fromtimestamp(t_s, tz=UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return repr(t_s)

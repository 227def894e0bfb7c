"""Time parsing for telemetry: ISO 8601 or epoch seconds/milliseconds, always UTC."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

__all__ = ["MAX_FUTURE", "MIN_TIME", "TimeError", "parse_time", "utcnow"]

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
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
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

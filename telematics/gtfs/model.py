"""The GTFS static feed as normalised DataFrames, and its service-day calendar.

Pure logic, no I/O: `Feed` holds the tables `telematics.gtfs.reader.read_feed` (or
`telematics.gtfs.database.load_feed`) produced, `FeedError` names the file, line and field of an
invalid value, `service_ids_on` resolves the services running on a date and
`service_day_start` places GTFS times of day (seconds since service-day midnight, which
may exceed 86,400) on the epoch clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

__all__ = [
    "REQUIRED_COLUMNS",
    "REQUIRED_FILES",
    "WEEKDAYS",
    "Feed",
    "FeedError",
    "busiest_day",
    "rebase_calendar",
    "service_day_start",
    "service_ids_on",
    "trips_running_at",
]

#: Required columns per file; files not listed in `REQUIRED_FILES` are optional.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "agency.txt": ("agency_name", "agency_url", "agency_timezone"),
    "routes.txt": ("route_id", "route_type"),
    "stops.txt": ("stop_id", "stop_lat", "stop_lon"),
    "trips.txt": ("route_id", "service_id", "trip_id"),
    "stop_times.txt": ("trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"),
    "shapes.txt": ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"),
    "calendar.txt": (
        "service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
        "sunday", "start_date", "end_date",
    ),
    "calendar_dates.txt": ("service_id", "date", "exception_type"),
    "frequencies.txt": ("trip_id", "start_time", "end_time", "headway_secs"),
}
REQUIRED_FILES = ("agency.txt", "routes.txt", "stops.txt", "trips.txt", "stop_times.txt")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class FeedError(ValueError):
    """A GTFS feed is unreadable or invalid; the message names file, line and field.

    Parameters
    ----------
    file : str
        The GTFS file (``stop_times.txt``) or archive concerned.
    message : str
        What is wrong.
    line : int, optional
        1-based line in ``file`` (the header is line 1).
    field : str, optional
        The column.
    """

    def __init__(self, file: str, message: str, line: int | None = None, field: str | None = None):
        where = file
        if line is not None:
            where += f" line {line}"
        if field is not None:
            where += f" field {field}"
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.field = field


@dataclass(frozen=True)
class Feed:
    """A validated GTFS feed as normalised DataFrames.

    * ids (``agency_id``, ``route_id``, ``trip_id``, ``stop_id``, ``service_id``,
      ``shape_id``, ``block_id``) are ``str`` (missing optional ids are ``""``);
    * times (``arrival_time``, ``departure_time``, ``start_time``, ``end_time``) are
      ``int64`` seconds since service-day midnight (``25:10:00`` is 90,600 s); empty
      ``arrival_time``/``departure_time`` of intermediate stops are interpolated linearly
      in stop order and flagged in ``stop_times.time_interpolated``;
    * dates are `datetime.date`; coordinates ``float64`` degrees; ``stop_sequence`` and
      the other integer fields ``int64``; ``shape_dist_traveled`` ``float64`` (NaN when
      empty).

    ``shapes`` and ``frequencies`` are None when the feed has no such file; ``calendar``
    and ``calendar_dates`` are empty frames with the right columns when absent.
    ``stop_times`` is sorted by ``trip_id, stop_sequence``; ``shapes`` by
    ``shape_id, shape_pt_sequence``.
    """

    agency: pd.DataFrame
    routes: pd.DataFrame
    stops: pd.DataFrame
    trips: pd.DataFrame
    stop_times: pd.DataFrame
    calendar: pd.DataFrame
    calendar_dates: pd.DataFrame
    shapes: pd.DataFrame | None = None
    frequencies: pd.DataFrame | None = None

    @property
    def timezone(self) -> str:
        """IANA time zone of the (first) agency, in which service days are counted."""
        return str(self.agency["agency_timezone"].iloc[0])


def service_ids_on(feed: Feed, day: date) -> set[str]:
    """Service ids running on a service day.

    Parameters
    ----------
    feed : Feed
        The feed.
    day : datetime.date
        The service date (the day the trips' times count from).

    Returns
    -------
    set of str
        Services whose ``calendar.txt`` covers ``day``'s weekday and date range, plus the
        ``calendar_dates.txt`` additions (type 1), minus its removals (type 2).
    """
    cal = feed.calendar
    running: set[str] = set()
    if not cal.empty:
        weekday = WEEKDAYS[day.weekday()]
        mask = cal[weekday].astype(bool) & (cal["start_date"] <= day) & (cal["end_date"] >= day)
        running = set(cal.loc[mask, "service_id"])
    exc = feed.calendar_dates
    if not exc.empty:
        today = exc[exc["date"] == day]
        running |= set(today.loc[today["exception_type"] == 1, "service_id"])
        running -= set(today.loc[today["exception_type"] == 2, "service_id"])
    return running


def service_day_start(day: date, timezone: str) -> float:
    """Epoch seconds of GTFS time 00:00:00 on ``day`` (noon minus 12 h, local time).

    Parameters
    ----------
    day : datetime.date
        The service date.
    timezone : str
        IANA zone of the agency.

    Returns
    -------
    float
        Epoch seconds (s); a GTFS time of day ``t`` (s) happens at this plus ``t``, also
        across a daylight-saving change.
    """
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(timezone))
    return noon.timestamp() - 43200.0


def busiest_day(feed: Feed) -> date:
    """The date with the most trips in the first week of the feed's calendar."""
    cal = feed.calendar
    first = min(cal["start_date"]) if not cal.empty else min(feed.calendar_dates["date"])
    days = [first + timedelta(days=k) for k in range(7)]
    counts = [feed.trips["service_id"].isin(service_ids_on(feed, d)).sum() for d in days]
    return days[int(np.argmax(counts))]


def trips_running_at(feed: Feed, at_s: float) -> int:
    """How many trips the timetable runs at one moment.

    Parameters
    ----------
    feed : Feed
        The feed (its calendar must cover the moment: see `rebase_calendar`).
    at_s : float
        The moment (epoch s).

    Returns
    -------
    int
        Trips of the local service day of ``at_s``, or of the day before (times past
        24:00), scheduled between their first departure and their last arrival at ``at_s``.
    """
    st = feed.stop_times
    if st.empty:
        return 0
    times = st.groupby("trip_id", sort=False).agg(first_s=("departure_time", "min"), last_s=("arrival_time", "max"))
    trips = feed.trips.set_index("trip_id")["service_id"].reindex(times.index)
    today = datetime.fromtimestamp(at_s, ZoneInfo(feed.timezone)).date()
    count = 0
    for day in (today - timedelta(days=1), today):
        clock_s = at_s - service_day_start(day, feed.timezone)
        runs = trips.isin(list(service_ids_on(feed, day))).to_numpy()
        count += int((runs & (times["first_s"].to_numpy() <= clock_s) & (times["last_s"].to_numpy() >= clock_s)).sum())
    return count


def rebase_calendar(feed: Feed, today: date) -> Feed:
    """Shift every service date by whole weeks so the feed's calendar covers ``today``.

    For demo feeds whose calendar has ended: weekdays and exceptions keep their pattern.
    A feed already covering ``today`` is returned unchanged.

    Parameters
    ----------
    feed : Feed
        The feed.
    today : datetime.date
        The date the calendar must cover.

    Returns
    -------
    Feed
        ``feed`` with ``calendar`` and ``calendar_dates`` moved by the same whole weeks.
    """
    dates = [*feed.calendar["start_date"], *feed.calendar["end_date"], *feed.calendar_dates["date"]]
    if not dates:
        return feed
    first, last = min(dates), max(dates)
    if first <= today <= last:
        return feed
    weeks = (today - first).days // 7 if today > last else -((first - today).days // 7 + 1)
    shift = timedelta(weeks=weeks)
    calendar = feed.calendar.copy()
    for column in ("start_date", "end_date"):
        calendar[column] = [d + shift for d in calendar[column]]
    calendar_dates = feed.calendar_dates.copy()
    calendar_dates["date"] = [d + shift for d in calendar_dates["date"]]
    return replace(feed, calendar=calendar, calendar_dates=calendar_dates)

"""GTFS validation: raw text tables to the normalised `telematics.gtfs.model.Feed`.

Pure logic over DataFrames of strings (no file access): `build_feed` takes any
`TableSource` (the zip/folder reader of `telematics.gtfs.reader`, or a dict of frames in
tests), checks each file's header, parses ids, numbers, times and dates, checks the
references between files and interpolates missing stop times. The first invalid value
raises `telematics.gtfs.model.FeedError` naming the file, the line (1-based, header is
line 1) and the field; files are checked in a fixed order (agency, routes, stops, shapes,
trips, stop_times, calendar, calendar_dates, frequencies).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.gtfs.model import REQUIRED_COLUMNS, REQUIRED_FILES, WEEKDAYS, Feed, FeedError

__all__ = ["ID_COLUMNS", "TableSource", "build_feed", "check_header"]

FloatArray = npt.NDArray[np.float64]
#: Id columns: surrounding blanks are stripped.
ID_COLUMNS = ("agency_id", "route_id", "trip_id", "stop_id", "service_id", "shape_id", "block_id")


class TableSource(Protocol):
    """The files of a feed as frames of strings (empty cells ``""``), header checked."""

    def has(self, name: str) -> bool:
        """Whether the feed has the file ``name`` (``stops.txt``)."""
        ...

    def read(self, name: str) -> pd.DataFrame:
        """The file ``name`` (`check_header` applied); raises `FeedError` when unreadable."""
        ...


def check_header(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Strip column names and id values; raise `FeedError` for a missing required column.

    Parameters
    ----------
    name : str
        GTFS file name, selecting its required columns.
    frame : DataFrame
        The file's cells as strings.

    Returns
    -------
    DataFrame
        ``frame``, changed in place.
    """
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in REQUIRED_COLUMNS.get(name, ()):
        if column not in frame.columns:
            raise FeedError(name, "required column missing from header", line=1, field=column)
    for column in ID_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].str.strip()
    return frame


def _first_bad(file: str, frame: pd.DataFrame, column: str, bad: pd.Series, what: str) -> None:
    """Raise `FeedError` at the first row where ``bad`` is true."""
    if bool(bad.any()):
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = frame[column].iloc[row]
        raise FeedError(file, f"{what}, got {value!r}", line=row + 2, field=column)


def _numbers(file: str, frame: pd.DataFrame, column: str, *, integer: bool = False,
             required: bool = True) -> pd.Series:
    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & ((text != "") | required)
    kind = "an integer" if integer else "a number"
    _first_bad(file, frame, column, bad, f"expected {kind}")
    if integer:
        _first_bad(file, frame, column, values.notna() & (values % 1 != 0), "expected an integer")
        return values.astype("int64")
    return values.astype("float64")


def _times(file: str, frame: pd.DataFrame, column: str, *, required: bool = True) -> pd.Series:
    """Parse ``H:MM:SS`` (hours may exceed 24) into float seconds, NaN where empty."""
    text = frame[column].str.strip()
    parts = text.str.extract(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$")
    seconds = (
        parts[0].astype("float64") * 3600 + parts[1].astype("float64") * 60
        + parts[2].astype("float64")
    )
    bad = seconds.isna() & ((text != "") | required)
    _first_bad(file, frame, column, bad, "expected a time HH:MM:SS")
    return seconds


def _dates(file: str, frame: pd.DataFrame, column: str) -> pd.Series:
    text = frame[column].str.strip()
    parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    _first_bad(file, frame, column, parsed.isna(), "expected a date YYYYMMDD")
    return pd.Series(parsed.dt.date, index=frame.index, dtype=object)


def _check_keys(file: str, frame: pd.DataFrame, column: str, known: Iterable[str], target: str) -> None:
    bad = ~frame[column].isin(pd.Index(known))
    _first_bad(file, frame, column, bad, f"unknown {column} (not in {target})")


def _interpolate_missing(trip_ids: npt.NDArray[np.object_], seconds: FloatArray, file: str,
                         frame: pd.DataFrame, column: str) -> FloatArray:
    """Fill NaN times linearly by stop index between the trip's known times."""
    missing = np.isnan(seconds)
    if not missing.any():
        return seconds
    starts = np.r_[True, trip_ids[1:] != trip_ids[:-1]]
    ends = np.r_[trip_ids[1:] != trip_ids[:-1], True]
    _first_bad(file, frame, column, pd.Series(missing & (starts | ends)),
               "first and last stop of a trip need a time")
    idx = np.arange(len(seconds), dtype=np.float64)
    known = ~missing
    known_idx = idx[known]
    # trips are contiguous and bounded by known times, so plain interpolation stays inside a trip
    filled = seconds.copy()
    filled[missing] = np.interp(idx[missing], known_idx, seconds[known])
    return filled


def _stop_times(frame: pd.DataFrame, trip_ids: pd.Index, stop_ids: pd.Index) -> pd.DataFrame:
    name = "stop_times.txt"
    frame["stop_sequence"] = _numbers(name, frame, "stop_sequence", integer=True)
    arrival = _times(name, frame, "arrival_time", required=False)
    departure = _times(name, frame, "departure_time", required=False)
    arrival = arrival.fillna(departure)
    departure = departure.fillna(arrival)
    if "shape_dist_traveled" in frame.columns:
        frame["shape_dist_traveled"] = _numbers(name, frame, "shape_dist_traveled", required=False)
    _check_keys(name, frame, "trip_id", trip_ids, "trips.txt")
    _check_keys(name, frame, "stop_id", stop_ids, "stops.txt")
    frame["_line"] = np.arange(len(frame)) + 2
    frame["arrival_time"] = arrival
    frame["departure_time"] = departure
    frame = frame.sort_values(["trip_id", "stop_sequence"], kind="stable").reset_index(drop=True)
    dup = frame.duplicated(["trip_id", "stop_sequence"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise FeedError(name, "duplicate stop_sequence in trip", line=int(frame["_line"].iloc[row]),
                        field="stop_sequence")
    trips = frame["trip_id"].to_numpy(dtype=object)
    missing = frame["arrival_time"].isna().to_numpy()
    for column in ("arrival_time", "departure_time"):
        seconds = frame[column].to_numpy(dtype=np.float64)
        try:
            seconds = _interpolate_missing(trips, seconds, name, frame, column)
        except FeedError as exc:
            line = int(frame["_line"].iloc[(exc.line or 2) - 2])
            raise FeedError(name, str(exc).split(": ", 1)[1], line=line, field=column) from exc
        frame[column] = np.rint(seconds).astype(np.int64)
    frame["time_interpolated"] = missing
    back = frame["arrival_time"].to_numpy()
    same_trip = trips[1:] == trips[:-1]
    backwards = np.r_[False, same_trip & (back[1:] < frame["departure_time"].to_numpy()[:-1])]
    if backwards.any():
        row = int(np.flatnonzero(backwards)[0])
        raise FeedError(name, "arrival_time earlier than the previous stop's departure_time",
                        line=int(frame["_line"].iloc[row]), field="arrival_time")
    return frame.drop(columns="_line")


def _shapes(shapes: pd.DataFrame) -> pd.DataFrame:
    for column in ("shape_pt_lat", "shape_pt_lon"):
        shapes[column] = _numbers("shapes.txt", shapes, column)
    shapes["shape_pt_sequence"] = _numbers("shapes.txt", shapes, "shape_pt_sequence", integer=True)
    if "shape_dist_traveled" in shapes.columns:
        shapes["shape_dist_traveled"] = _numbers("shapes.txt", shapes, "shape_dist_traveled", required=False)
    return shapes.sort_values(["shape_id", "shape_pt_sequence"], kind="stable").reset_index(drop=True)


def _trips(trips: pd.DataFrame, routes: pd.DataFrame, shapes: pd.DataFrame | None) -> pd.DataFrame:
    _check_keys("trips.txt", trips, "route_id", routes["route_id"], "routes.txt")
    for column in ("shape_id", "block_id", "trip_headsign"):
        if column not in trips.columns:
            trips[column] = ""
    if "direction_id" in trips.columns:
        trips["direction_id"] = _numbers("trips.txt", trips, "direction_id", integer=False, required=False)
    if shapes is not None:
        has_shape = trips["shape_id"] != ""
        bad = has_shape & ~trips["shape_id"].isin(pd.Index(shapes["shape_id"].unique()))
        _first_bad("trips.txt", trips, "shape_id", bad, "unknown shape_id (not in shapes.txt)")
    else:
        trips["shape_id"] = ""
    _first_bad("trips.txt", trips, "trip_id", trips["trip_id"].duplicated(), "duplicate trip_id")
    return trips


def _calendars(source: TableSource) -> tuple[pd.DataFrame, pd.DataFrame]:
    calendar = pd.DataFrame({c: pd.Series(dtype=object) for c in REQUIRED_COLUMNS["calendar.txt"]})
    if source.has("calendar.txt"):
        calendar = source.read("calendar.txt")
        for day in WEEKDAYS:
            calendar[day] = _numbers("calendar.txt", calendar, day, integer=True).astype(bool)
        calendar["start_date"] = _dates("calendar.txt", calendar, "start_date")
        calendar["end_date"] = _dates("calendar.txt", calendar, "end_date")
    calendar_dates = pd.DataFrame({c: pd.Series(dtype=object) for c in REQUIRED_COLUMNS["calendar_dates.txt"]})
    if source.has("calendar_dates.txt"):
        calendar_dates = source.read("calendar_dates.txt")
        calendar_dates["date"] = _dates("calendar_dates.txt", calendar_dates, "date")
        kind = _numbers("calendar_dates.txt", calendar_dates, "exception_type", integer=True)
        _first_bad("calendar_dates.txt", calendar_dates, "exception_type", ~kind.isin([1, 2]),
                   "exception_type must be 1 (added) or 2 (removed)")
        calendar_dates["exception_type"] = kind
    return calendar, calendar_dates


def _frequencies(frequencies: pd.DataFrame, trip_ids: pd.Series) -> pd.DataFrame:
    name = "frequencies.txt"
    _check_keys(name, frequencies, "trip_id", trip_ids, "trips.txt")
    frequencies["start_time"] = _times(name, frequencies, "start_time").astype("int64")
    frequencies["end_time"] = _times(name, frequencies, "end_time").astype("int64")
    frequencies["headway_secs"] = _numbers(name, frequencies, "headway_secs", integer=True)
    if "exact_times" in frequencies.columns:
        frequencies["exact_times"] = _numbers(name, frequencies, "exact_times", integer=True, required=False)
    return frequencies


def build_feed(source: TableSource) -> Feed:
    """Validate and normalise the files of a GTFS feed.

    Parameters
    ----------
    source : TableSource
        The feed's files as frames of strings.

    Returns
    -------
    Feed
        Normalised tables (times in seconds since service-day midnight, dates as
        `datetime.date`, coordinates in degrees).

    Raises
    ------
    FeedError
        Missing required file or column, unparsable value, or a dangling reference
        (trip → route, stop_time → trip/stop, trip → shape); the message names the file,
        the 1-based line (header = 1) and the field.
    """
    for name in REQUIRED_FILES:
        if not source.has(name):
            raise FeedError(name, "required file missing from feed")
    if not source.has("calendar.txt") and not source.has("calendar_dates.txt"):
        raise FeedError("calendar.txt", "feed needs calendar.txt or calendar_dates.txt")

    agency = source.read("agency.txt")
    if agency.empty:
        raise FeedError("agency.txt", "no agency", line=2, field="agency_name")
    routes = source.read("routes.txt")
    routes["route_type"] = _numbers("routes.txt", routes, "route_type", integer=True)
    if "agency_id" not in routes.columns:
        routes["agency_id"] = agency["agency_id"].iloc[0] if "agency_id" in agency.columns else ""

    stops = source.read("stops.txt")
    stops["stop_lat"] = _numbers("stops.txt", stops, "stop_lat")
    stops["stop_lon"] = _numbers("stops.txt", stops, "stop_lon")
    _first_bad("stops.txt", stops, "stop_lat", stops["stop_lat"].abs() > 90, "latitude out of range")
    _first_bad("stops.txt", stops, "stop_lon", stops["stop_lon"].abs() > 180, "longitude out of range")

    shapes = _shapes(source.read("shapes.txt")) if source.has("shapes.txt") else None
    trips = _trips(source.read("trips.txt"), routes, shapes)
    stop_times = _stop_times(source.read("stop_times.txt"), pd.Index(trips["trip_id"]),
                             pd.Index(stops["stop_id"]))
    calendar, calendar_dates = _calendars(source)
    frequencies = (_frequencies(source.read("frequencies.txt"), trips["trip_id"])
                   if source.has("frequencies.txt") else None)
    return Feed(agency=agency, routes=routes, stops=stops, trips=trips, stop_times=stop_times,
                calendar=calendar, calendar_dates=calendar_dates, shapes=shapes,
                frequencies=frequencies)

"""GTFS static feeds: reading, validation and normalised tables.

`read_feed` reads a GTFS zip (or a folder of ``.txt`` files) with pandas and returns a
frozen `Feed` of DataFrames with normalised dtypes:

* ids (``agency_id``, ``route_id``, ``trip_id``, ``stop_id``, ``service_id``,
  ``shape_id``, ``block_id``) are ``str`` (missing optional ids are ``""``);
* times (``arrival_time``, ``departure_time``, ``start_time``, ``end_time``) are
  ``int64`` seconds since service-day midnight (``25:10:00`` is 90,600 s); empty
  ``arrival_time``/``departure_time`` of intermediate stops are interpolated linearly in
  stop order and flagged in ``stop_times.time_interpolated``;
* dates are `datetime.date`; coordinates ``float64`` degrees; ``stop_sequence`` and the
  other integer fields ``int64``; ``shape_dist_traveled`` ``float64`` (NaN when empty).

Validation raises `FeedError` naming the file, the line (1-based, header is line 1) and
the field. `service_ids_on` resolves the services running on a date and `trip_paths`
builds every trip's projected path with each stop's distance along it.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.matching import (
    LocalProjection,
    Polyline,
    match_monotone,
    projection_candidates,
)

__all__ = [
    "Feed",
    "FeedError",
    "TripPaths",
    "read_feed",
    "service_day_start",
    "service_ids_on",
    "trip_paths",
]

FloatArray = npt.NDArray[np.float64]

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
#: A stop farther than this (m) from its trip's shape is placed by its neighbours.
OFF_SHAPE_M = 150.0
_ID_COLUMNS = ("agency_id", "route_id", "trip_id", "stop_id", "service_id", "shape_id", "block_id")


class FeedError(ValueError):
    """A GTFS feed is unreadable or invalid; the message names file, line and field."""

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
    """A validated GTFS feed as normalised DataFrames (see the module docstring).

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


class _Source:
    """The files of a feed, from a zip archive or a directory."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._names: dict[str, str] = {}
        if path.is_dir():
            self._names = {p.name: p.name for p in path.iterdir() if p.suffix == ".txt"}
            return
        if not path.exists():
            raise FeedError(str(path), "no such file or directory")
        try:
            self._zip = zipfile.ZipFile(path)
            bad = self._zip.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FeedError(path.name, f"not a readable zip archive ({exc})") from exc
        if bad is not None:
            raise FeedError(bad, f"corrupt member in {path.name} (CRC mismatch)")
        for info in self._zip.infolist():
            name = info.filename.rsplit("/", 1)[-1]
            if name.endswith(".txt"):
                self._names.setdefault(name, info.filename)

    def has(self, name: str) -> bool:
        return name in self._names

    def read(self, name: str) -> pd.DataFrame:
        """Read one file as strings (empty cells are ``""``), checking required columns."""
        try:
            if self._zip is not None:
                raw = self._zip.read(self._names[name])
            else:
                raw = (self.path / self._names[name]).read_bytes()
            frame = pd.read_csv(
                io.BytesIO(raw), dtype=str, keep_default_na=False, encoding="utf-8-sig",
                skipinitialspace=True,
            )
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FeedError(name, f"cannot read file ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise FeedError(name, f"not UTF-8 ({exc})") from exc
        except pd.errors.EmptyDataError as exc:
            raise FeedError(name, "empty file (no header)", line=1) from exc
        except pd.errors.ParserError as exc:
            raise FeedError(name, f"malformed CSV ({exc})") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
        for column in REQUIRED_COLUMNS.get(name, ()):
            if column not in frame.columns:
                raise FeedError(name, "required column missing from header", line=1, field=column)
        for column in _ID_COLUMNS:
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


def _read_stop_times(source: _Source, trip_ids: pd.Index, stop_ids: pd.Index) -> pd.DataFrame:
    name = "stop_times.txt"
    frame = source.read(name)
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


def read_feed(path: str | Path) -> Feed:
    """Read and validate a GTFS feed.

    Parameters
    ----------
    path : str or Path
        A GTFS ``.zip`` archive or a directory of GTFS ``.txt`` files.

    Returns
    -------
    Feed
        Normalised tables (times in seconds since service-day midnight, dates as
        `datetime.date`, coordinates in degrees).

    Raises
    ------
    FeedError
        Unreadable/truncated archive, missing required file or column, unparsable value,
        or a dangling reference (trip → route, stop_time → trip/stop, trip → shape);
        the message names the file, the 1-based line (header = 1) and the field.
    """
    source = _Source(Path(path))
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

    shapes: pd.DataFrame | None = None
    if source.has("shapes.txt"):
        shapes = source.read("shapes.txt")
        for column in ("shape_pt_lat", "shape_pt_lon"):
            shapes[column] = _numbers("shapes.txt", shapes, column)
        shapes["shape_pt_sequence"] = _numbers("shapes.txt", shapes, "shape_pt_sequence", integer=True)
        if "shape_dist_traveled" in shapes.columns:
            shapes["shape_dist_traveled"] = _numbers(
                "shapes.txt", shapes, "shape_dist_traveled", required=False)
        shapes = shapes.sort_values(["shape_id", "shape_pt_sequence"], kind="stable")
        shapes = shapes.reset_index(drop=True)

    trips = source.read("trips.txt")
    _check_keys("trips.txt", trips, "route_id", routes["route_id"], "routes.txt")
    for column in ("shape_id", "block_id", "trip_headsign"):
        if column not in trips.columns:
            trips[column] = ""
    if "direction_id" in trips.columns:
        trips["direction_id"] = _numbers("trips.txt", trips, "direction_id", integer=False,
                                         required=False)
    if shapes is not None:
        has_shape = trips["shape_id"] != ""
        bad = has_shape & ~trips["shape_id"].isin(pd.Index(shapes["shape_id"].unique()))
        _first_bad("trips.txt", trips, "shape_id", bad, "unknown shape_id (not in shapes.txt)")
    else:
        trips["shape_id"] = ""
    dup = trips["trip_id"].duplicated()
    _first_bad("trips.txt", trips, "trip_id", dup, "duplicate trip_id")

    stop_times = _read_stop_times(source, pd.Index(trips["trip_id"]), pd.Index(stops["stop_id"]))

    calendar = pd.DataFrame({c: pd.Series(dtype=object) for c in REQUIRED_COLUMNS["calendar.txt"]})
    if source.has("calendar.txt"):
        calendar = source.read("calendar.txt")
        for day in WEEKDAYS:
            calendar[day] = _numbers("calendar.txt", calendar, day, integer=True).astype(bool)
        calendar["start_date"] = _dates("calendar.txt", calendar, "start_date")
        calendar["end_date"] = _dates("calendar.txt", calendar, "end_date")
    calendar_dates = pd.DataFrame(
        {c: pd.Series(dtype=object) for c in REQUIRED_COLUMNS["calendar_dates.txt"]})
    if source.has("calendar_dates.txt"):
        calendar_dates = source.read("calendar_dates.txt")
        calendar_dates["date"] = _dates("calendar_dates.txt", calendar_dates, "date")
        kind = _numbers("calendar_dates.txt", calendar_dates, "exception_type", integer=True)
        _first_bad("calendar_dates.txt", calendar_dates, "exception_type", ~kind.isin([1, 2]),
                   "exception_type must be 1 (added) or 2 (removed)")
        calendar_dates["exception_type"] = kind

    frequencies: pd.DataFrame | None = None
    if source.has("frequencies.txt"):
        name = "frequencies.txt"
        frequencies = source.read(name)
        _check_keys(name, frequencies, "trip_id", trips["trip_id"], "trips.txt")
        frequencies["start_time"] = _times(name, frequencies, "start_time").astype("int64")
        frequencies["end_time"] = _times(name, frequencies, "end_time").astype("int64")
        frequencies["headway_secs"] = _numbers(name, frequencies, "headway_secs", integer=True)
        if "exact_times" in frequencies.columns:
            frequencies["exact_times"] = _numbers(name, frequencies, "exact_times", integer=True,
                                                  required=False)

    return Feed(agency=agency, routes=routes, stops=stops, trips=trips, stop_times=stop_times,
                calendar=calendar, calendar_dates=calendar_dates, shapes=shapes,
                frequencies=frequencies)


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


@dataclass(frozen=True)
class TripPaths:
    """Every trip's path and its stops' distances along it.

    Attributes
    ----------
    projection : LocalProjection
        The planar CRS (metres) of all paths, centred on the feed's stops.
    paths : dict of str to Polyline
        Paths keyed by ``shape_id``, or ``"trip:<trip_id>"`` for trips without a shape
        (their stop sequence is then the path; trips with the same stops share the key of
        the first of them).
    trip_path : dict of str to str
        ``trip_id`` to its key in ``paths``.
    stop_dist_m : dict of str to ndarray
        ``trip_id`` to the distance (m) along its path of each stop, in ``stop_sequence``
        order, non-decreasing (trips with the same stop pattern share one array).
    """

    projection: LocalProjection
    paths: dict[str, Polyline]
    trip_path: dict[str, str]
    stop_dist_m: dict[str, FloatArray]

    def __getitem__(self, trip_id: str) -> Polyline:
        return self.paths[self.trip_path[trip_id]]


def _shape_stop_distances(line: Polyline, stop_xy: FloatArray, shape_sdt: FloatArray | None,
                          stop_sdt: FloatArray | None) -> FloatArray:
    """Stop distances from ``shape_dist_traveled`` when consistent, else monotone projection."""
    usable = (
        shape_sdt is not None and stop_sdt is not None
        and not (np.isnan(shape_sdt).any() or np.isnan(stop_sdt).any())
        and bool(np.all(np.diff(shape_sdt) >= 0)) and bool(np.all(np.diff(stop_sdt) >= 0))
        and shape_sdt[-1] > shape_sdt[0]
    )
    if usable and shape_sdt is not None and stop_sdt is not None:
        dist = np.interp(stop_sdt, shape_sdt, line.cum_m)
        if np.all(np.hypot(*(line.point_at(dist) - stop_xy).T) < 100.0):
            return dist
    along, offset = projection_candidates(line, stop_xy, k=6, max_offset_m=300.0)
    # stops far off the shape (e.g. before its start) must not pull the others along:
    # match the rest, then place those at their neighbours' distance
    near = np.nanmin(offset, axis=1) <= OFF_SHAPE_M
    if not near.any():
        return np.maximum.accumulate(match_monotone(along, offset, backtrack_m=5.0).along_m)
    dist = np.full(len(stop_xy), np.nan)
    dist[near] = match_monotone(along[near], offset[near], backtrack_m=5.0).along_m
    # leading off-shape stops go to the path's start, later ones to the stop before them
    filled = np.asarray(pd.Series(dist).ffill().fillna(0.0), dtype=np.float64)
    return np.maximum.accumulate(filled)


def trip_paths(feed: Feed) -> TripPaths:
    """Build every trip's projected path with its stops' distances along it.

    Parameters
    ----------
    feed : Feed
        A feed from `read_feed`.

    Returns
    -------
    TripPaths
        Paths in metres in a local azimuthal equidistant projection. A stop's distance
        comes from ``shape_dist_traveled`` when the stop and shape both carry it and it is
        consistent (monotone, within 100 m of the stop); otherwise from a monotone
        projection of the stop sequence onto the shape. Without a shape the stop sequence
        is the path.
    """
    stops = feed.stops.set_index("stop_id")
    projection = LocalProjection(float(stops["stop_lat"].mean()), float(stops["stop_lon"].mean()))
    stop_xy_all = projection.to_xy(stops["stop_lat"].to_numpy(), stops["stop_lon"].to_numpy())
    stop_row = pd.Series(np.arange(len(stops)), index=stops.index)

    st = feed.stop_times
    has_sdt = "shape_dist_traveled" in st.columns
    trip_ids = st["trip_id"].to_numpy(dtype=object)
    bounds = np.flatnonzero(np.r_[True, trip_ids[1:] != trip_ids[:-1], True])
    rows = stop_row.reindex(st["stop_id"]).to_numpy()
    pattern_text = st["stop_id"].groupby(st["trip_id"], sort=False).agg(" ".join)
    shape_of = feed.trips.set_index("trip_id")["shape_id"]

    paths: dict[str, Polyline] = {}
    shape_sdt: dict[str, FloatArray | None] = {}
    if feed.shapes is not None:
        shp = feed.shapes
        xy = projection.to_xy(shp["shape_pt_lat"].to_numpy(), shp["shape_pt_lon"].to_numpy())
        sid = shp["shape_id"].to_numpy(dtype=object)
        cuts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1], True])
        sdt_col = shp["shape_dist_traveled"].to_numpy() if "shape_dist_traveled" in shp else None
        for lo, hi in itertools.pairwise(cuts):
            pts = xy[lo:hi]
            step = np.hypot(*np.diff(pts, axis=0).T) if hi - lo > 1 else np.zeros(0)
            if hi - lo == 1:
                pts = np.vstack([pts, pts + 1e-3])
                step = np.array([1e-3])
            paths[str(sid[lo])] = Polyline(xy=pts, cum_m=np.r_[0.0, np.cumsum(step)])
            shape_sdt[str(sid[lo])] = None if sdt_col is None or hi - lo == 1 else sdt_col[lo:hi]

    trip_path: dict[str, str] = {}
    stop_dist: dict[str, FloatArray] = {}
    cache: dict[tuple[str, str], FloatArray] = {}
    shared: dict[tuple[str, str], str] = {}
    for lo, hi in itertools.pairwise(bounds):
        trip = str(trip_ids[lo])
        stop_xy = stop_xy_all[rows[lo:hi]]
        shape = str(shape_of.get(trip, ""))
        if shape and shape in paths:
            sdt = st["shape_dist_traveled"].to_numpy()[lo:hi] if has_sdt else None
            key = (shape, pattern_text[trip] + ("" if sdt is None else str(sdt.tolist())))
            if key not in cache:
                cache[key] = _shape_stop_distances(paths[shape], stop_xy, shape_sdt[shape], sdt)
            trip_path[trip] = shape
            stop_dist[trip] = cache[key]
        else:  # trips with the same stops share one path (e.g. frequency-based instances)
            key = ("", pattern_text[trip])
            name = shared.setdefault(key, f"trip:{trip}")
            if name not in paths:
                line = Polyline(xy=stop_xy, cum_m=np.r_[0.0, np.cumsum(np.hypot(*np.diff(stop_xy, axis=0).T))])
                if len(stop_xy) == 1:
                    line = Polyline(xy=np.vstack([stop_xy, stop_xy + 1e-3]), cum_m=np.array([0.0, 1e-3]))
                paths[name] = line
            trip_path[trip] = name
            stop_dist[trip] = cache.setdefault(key, paths[name].cum_m[:len(stop_xy)].copy())
    return TripPaths(projection=projection, paths=paths, trip_path=trip_path, stop_dist_m=stop_dist)


def service_day_start(day: date, timezone: str) -> float:
    """Epoch seconds of GTFS time 00:00:00 on ``day`` (noon minus 12 h, local time)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(timezone))
    return noon.timestamp() - 43200.0

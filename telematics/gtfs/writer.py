"""A `Feed` written back as a GTFS zip: what realtime consumers join the GTFS-rt feeds with.

Pure (bytes in memory, no I/O): `feed_tables` turns the normalised frames back into GTFS
text columns (times ``HH:MM:SS``, past midnight as ``25:10:00``; dates ``YYYYMMDD``;
booleans ``0``/``1``; missing values empty; times the reader interpolated left empty, as
the source had them), `feed_zip` merges the feeds of several agencies into one archive.
The archive is deterministic (fixed member order and dates): the same feeds give the same
bytes, so its hash is a stable ``ETag``. `read_feed` reads it back to the same tables.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from telematics.gtfs.model import Feed

__all__ = ["TIME_COLUMNS", "feed_tables", "feed_zip", "gtfs_time"]

#: Columns holding seconds since service-day midnight, written ``HH:MM:SS``.
TIME_COLUMNS = ("arrival_time", "departure_time", "start_time", "end_time")
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # zip member dates: none, so equal feeds give equal bytes
_DATE_COLUMNS = ("start_date", "end_date", "date")
_INTEGER_COLUMNS = ("direction_id", "location_type", "route_type", "exact_times", "headway_secs",
                    "exception_type", "stop_sequence", "shape_pt_sequence", "timepoint")


def gtfs_time(seconds: int) -> str:
    """Seconds since service-day midnight as GTFS ``HH:MM:SS`` (hours may exceed 23)."""
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _column(values: pd.Series, name: str) -> pd.Series:
    """One column in a form ``to_csv`` writes as GTFS text (missing values become empty)."""
    if name in TIME_COLUMNS:
        num = pd.to_numeric(values, errors="coerce")
        known = num.notna()
        unique, inverse = np.unique(num[known].to_numpy(dtype=np.int64), return_inverse=True)
        out = np.full(len(values), "", dtype=object)
        out[known.to_numpy()] = np.array([gtfs_time(v) for v in unique.tolist()], dtype=object)[inverse]
        return pd.Series(out, index=values.index)
    if name in _DATE_COLUMNS:
        return values.map(lambda v: v.strftime("%Y%m%d") if isinstance(v, date) else "")
    if values.dtype == bool:
        return values.astype("int64")
    if name in _INTEGER_COLUMNS:
        return pd.to_numeric(values, errors="coerce").round().astype("Int64")
    return values


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({name: _column(frame[name], name) for name in frame.columns}, index=frame.index)


def feed_tables(feed: Feed, agency_key: str = "") -> dict[str, pd.DataFrame]:
    """The GTFS files of ``feed`` as text frames, keyed by file name.

    Parameters
    ----------
    feed : Feed
        Normalised tables (`telematics.gtfs.read_feed` or `telematics.gtfs.database.load_feed`).
    agency_key : str
        Used as ``agency_id`` where the feed leaves it empty (several agencies in one
        archive must name theirs; the routes follow).
    """
    agency = feed.agency.copy()
    routes = feed.routes.copy()
    if agency_key:
        for frame in (agency, routes):
            if "agency_id" not in frame.columns:
                frame["agency_id"] = ""
        agency.loc[agency["agency_id"].astype(str) == "", "agency_id"] = agency_key
        if len(agency) == 1:
            routes.loc[routes["agency_id"].astype(str) == "", "agency_id"] = str(agency["agency_id"].iloc[0])
    stop_times = feed.stop_times.copy()
    if "time_interpolated" in stop_times.columns:
        interpolated = stop_times["time_interpolated"].astype(bool)
        stop_times = stop_times.drop(columns="time_interpolated").astype({"arrival_time": object,
                                                                           "departure_time": object})
        stop_times.loc[interpolated, ["arrival_time", "departure_time"]] = None
    tables = {"agency.txt": agency, "routes.txt": routes, "stops.txt": feed.stops, "trips.txt": feed.trips,
              "stop_times.txt": stop_times}
    if not feed.calendar.empty:
        tables["calendar.txt"] = feed.calendar
    if not feed.calendar_dates.empty:
        tables["calendar_dates.txt"] = feed.calendar_dates
    if feed.shapes is not None and not feed.shapes.empty:
        tables["shapes.txt"] = feed.shapes
    if feed.frequencies is not None and not feed.frequencies.empty:
        tables["frequencies.txt"] = feed.frequencies
    return {name: _text_frame(frame) for name, frame in tables.items()}


def feed_zip(feeds: Mapping[str, Feed]) -> bytes:
    """One GTFS zip holding the feeds of every agency (``{agency key: Feed}``), tables concatenated.

    Several agencies share one archive as GTFS allows it (one ``agency.txt`` row each, routes
    naming theirs); their ids must not collide, as the platform already requires.
    """
    merged: dict[str, list[pd.DataFrame]] = {}
    for key in sorted(feeds):
        for name, frame in feed_tables(feeds[key], key if len(feeds) > 1 else "").items():
            merged.setdefault(name, []).append(frame)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(merged):
            frame = pd.concat(merged[name], ignore_index=True)
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, frame.to_csv(index=False, lineterminator="\n", na_rep=""))
    return out.getvalue()

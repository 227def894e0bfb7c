"""The GTFS static feeds in the database: versioned atomic import and read-back.

A feed is imported under a new ``feed_version`` inside one transaction (COPY through
`its.db.copy_rows`), then ``gtfs_active`` is switched to it and the previous version is
deleted, so readers see the whole old feed or the whole new one, never half of either.
`load_feed` reads the active version back inside one REPEATABLE READ snapshot, with the
dtypes `telematics.gtfs.read_feed` gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg2.extensions

from its.console import progress
from its.db import Database, copy_rows
from telematics.gtfs.model import Feed, FeedError, rebase_calendar
from telematics.gtfs.reader import read_feed

__all__ = [
    "ImportResult",
    "active_feed_version",
    "agencies",
    "import_feed",
    "import_feed_file",
    "load_feed",
]


@dataclass(frozen=True)
class ImportResult:
    """Outcome of a GTFS import: the new active version and rows per table."""

    agency: str
    feed_version: int
    replaced_version: int | None
    rows: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- import

def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), "").astype(str)


def _nullable(values: pd.Series) -> list[Any]:
    """Python values with NaN/NA as None (COPY NULL)."""
    obj = values.astype(object)
    return list(obj.where(values.notna(), None))


def _int_or(frame: pd.DataFrame, column: str, default: int) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.full(len(frame), default), index=frame.index)
    num = pd.to_numeric(frame[column], errors="coerce")
    return num.fillna(default).astype("int64")


def _table_rows(feed: Feed, version: int) -> list[tuple[str, str, tuple[str, ...], list[tuple[Any, ...]]]]:
    """(GTFS file, table, columns, rows) for every table of the feed, parents first."""
    n = len
    agency = feed.agency
    routes, stops, trips, st = feed.routes, feed.stops, feed.trips, feed.stop_times
    out: list[tuple[str, str, tuple[str, ...], list[tuple[Any, ...]]]] = []
    out.append(("agency.txt", "gtfs_agency",
                ("feed_version", "agency_id", "agency_name", "agency_url", "agency_timezone",
                 "agency_lang", "agency_phone"),
                list(zip([version] * n(agency), _text(agency, "agency_id"), _text(agency, "agency_name"),
                         _text(agency, "agency_url"), _text(agency, "agency_timezone"),
                         _text(agency, "agency_lang"), _text(agency, "agency_phone"), strict=True))))
    out.append(("routes.txt", "gtfs_routes",
                ("feed_version", "route_id", "agency_id", "route_short_name", "route_long_name",
                 "route_type", "route_color", "route_text_color"),
                list(zip([version] * n(routes), _text(routes, "route_id"), _text(routes, "agency_id"),
                         _text(routes, "route_short_name"), _text(routes, "route_long_name"),
                         routes["route_type"].astype("int64").tolist(), _text(routes, "route_color"),
                         _text(routes, "route_text_color"), strict=True))))
    out.append(("stops.txt", "gtfs_stops",
                ("feed_version", "stop_id", "stop_code", "stop_name", "stop_lat", "stop_lon",
                 "location_type", "parent_station"),
                list(zip([version] * n(stops), _text(stops, "stop_id"), _text(stops, "stop_code"),
                         _text(stops, "stop_name"), stops["stop_lat"].tolist(), stops["stop_lon"].tolist(),
                         _int_or(stops, "location_type", 0).tolist(), _text(stops, "parent_station"),
                         strict=True))))
    direction = (pd.to_numeric(trips["direction_id"], errors="coerce") if "direction_id" in trips.columns
                 else pd.Series([np.nan] * n(trips), index=trips.index))
    out.append(("trips.txt", "gtfs_trips",
                ("feed_version", "trip_id", "route_id", "service_id", "trip_headsign", "direction_id",
                 "block_id", "shape_id"),
                list(zip([version] * n(trips), _text(trips, "trip_id"), _text(trips, "route_id"),
                         _text(trips, "service_id"), _text(trips, "trip_headsign"),
                         _nullable(direction.round().astype("Int64")), _text(trips, "block_id"),
                         _text(trips, "shape_id"), strict=True))))
    sdt = (st["shape_dist_traveled"] if "shape_dist_traveled" in st.columns
           else pd.Series([np.nan] * n(st), index=st.index))
    timepoint = (pd.to_numeric(st["timepoint"], errors="coerce").where(lambda t: t.isin((0, 1)))
                 if "timepoint" in st.columns else pd.Series([np.nan] * n(st), index=st.index))
    out.append(("stop_times.txt", "gtfs_stop_times",
                ("feed_version", "trip_id", "stop_sequence", "stop_id", "arrival_s", "departure_s",
                 "shape_dist_traveled", "time_interpolated", "timepoint"),
                list(zip([version] * n(st), _text(st, "trip_id"), st["stop_sequence"].tolist(),
                         _text(st, "stop_id"), st["arrival_time"].tolist(), st["departure_time"].tolist(),
                         _nullable(sdt), st["time_interpolated"].astype(bool).tolist(),
                         _nullable(timepoint.round().astype("Int64")), strict=True))))
    if feed.shapes is not None:
        sh = feed.shapes
        ssdt = (sh["shape_dist_traveled"] if "shape_dist_traveled" in sh.columns
                else pd.Series([np.nan] * n(sh), index=sh.index))
        out.append(("shapes.txt", "gtfs_shapes",
                    ("feed_version", "shape_id", "shape_pt_sequence", "shape_pt_lat", "shape_pt_lon",
                     "shape_dist_traveled"),
                    list(zip([version] * n(sh), _text(sh, "shape_id"), sh["shape_pt_sequence"].tolist(),
                             sh["shape_pt_lat"].tolist(), sh["shape_pt_lon"].tolist(), _nullable(ssdt),
                             strict=True))))
    cal = feed.calendar
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    out.append(("calendar.txt", "gtfs_calendar", ("feed_version", "service_id", *days, "start_date", "end_date"),
                [(version, *row) for row in zip(_text(cal, "service_id"),
                                                *(cal[d].astype(bool).tolist() for d in days),
                                                cal["start_date"].tolist(), cal["end_date"].tolist(),
                                                strict=True)]))
    cd = feed.calendar_dates
    out.append(("calendar_dates.txt", "gtfs_calendar_dates",
                ("feed_version", "service_id", "date", "exception_type"),
                list(zip([version] * n(cd), _text(cd, "service_id"), cd["date"].tolist(),
                         cd["exception_type"].astype("int64").tolist() if n(cd) else [], strict=True))))
    if feed.frequencies is not None:
        fr = feed.frequencies
        out.append(("frequencies.txt", "gtfs_frequencies",
                    ("feed_version", "trip_id", "start_s", "end_s", "headway_s", "exact_times"),
                    list(zip([version] * n(fr), _text(fr, "trip_id"), fr["start_time"].tolist(),
                             fr["end_time"].tolist(), fr["headway_secs"].tolist(),
                             _int_or(fr, "exact_times", 0).tolist(), strict=True))))
    return out


_KEYS = {
    "agency.txt": ("agency_id",), "routes.txt": ("route_id",), "stops.txt": ("stop_id",),
    "calendar.txt": ("service_id",), "calendar_dates.txt": ("service_id", "date"),
    "shapes.txt": ("shape_id", "shape_pt_sequence"), "frequencies.txt": ("trip_id", "start_time"),
}


def _check_unique(feed: Feed) -> None:
    """Raise `FeedError` at the first duplicated primary key (file order = line order)."""
    frames = {"agency.txt": feed.agency, "routes.txt": feed.routes, "stops.txt": feed.stops,
              "calendar.txt": feed.calendar, "calendar_dates.txt": feed.calendar_dates,
              "shapes.txt": feed.shapes, "frequencies.txt": feed.frequencies}
    for name, frame in frames.items():
        if frame is None or frame.empty:
            continue
        keys = [k for k in _KEYS[name] if k in frame.columns]
        if not keys:
            continue
        dup = frame.duplicated(keys).to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            line = int(frame.index[row]) + 2 if name != "shapes.txt" else None
            raise FeedError(name, f"duplicate {', '.join(keys)} {tuple(frame[keys].iloc[row])!r}",
                            line=line, field=keys[-1])


def import_feed(db: Database, feed: Feed, agency_id: str, *, source: str = "",
                sha256: str = "") -> ImportResult:
    """Load a validated feed as the new active version for ``agency_id``, atomically.

    Parameters
    ----------
    db : Database
        Target database (migrated).
    feed : Feed
        From `telematics.gtfs.read_feed`.
    agency_id : str
        Platform agency id, the ``{agency}`` level of the vehicle topics.
    source, sha256 : str
        Provenance recorded in ``gtfs_feeds``.

    Returns
    -------
    ImportResult
        New version, the version it replaced and the rows loaded per table.

    Raises
    ------
    FeedError
        A duplicated key (naming the file, line and field); nothing is kept.
    """
    if not agency_id or len(agency_id) > 64 or "/" in agency_id or "+" in agency_id or "#" in agency_id:
        raise ValueError("agency id must be 1-64 characters without '/', '+' or '#'")
    _check_unique(feed)
    counts: dict[str, int] = {}
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('gtfs:' || %s))", (agency_id,))
        cur.execute("INSERT INTO gtfs_feeds (agency, source, sha256, timezone) VALUES (%s, %s, %s, %s)"
                    " RETURNING feed_version", (agency_id, source, sha256, feed.timezone))
        version = int(cur.fetchone()[0])
        tables = _table_rows(feed, version)
        with progress() as bar:
            task = bar.add_task(f"GTFS {agency_id}", total=sum(len(t[3]) for t in tables))
            for file, table, columns, rows in tables:
                inserted = _copy_chunks(conn, table, columns, rows, lambda k: bar.advance(task, k))
                if inserted != len(rows):
                    raise FeedError(file, f"{len(rows) - inserted} duplicate rows (same key) in {table}")
                counts[table] = inserted
        cur.execute("SELECT feed_version FROM gtfs_active WHERE agency = %s", (agency_id,))
        row = cur.fetchone()
        old = int(row[0]) if row else None
        cur.execute("INSERT INTO gtfs_active (agency, feed_version) VALUES (%s, %s) ON CONFLICT (agency)"
                    " DO UPDATE SET feed_version = EXCLUDED.feed_version, activated_at = now()",
                    (agency_id, version))
        cur.execute("DELETE FROM gtfs_feeds WHERE agency = %s AND feed_version <> %s", (agency_id, version))
    return ImportResult(agency_id, version, old, counts)


def _copy_chunks(conn: psycopg2.extensions.connection, table: str, columns: Sequence[str],
                 rows: list[tuple[Any, ...]], advance: Any, chunk: int = 50_000) -> int:
    inserted = 0
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        inserted += copy_rows(conn, table, columns, part)
        advance(len(part))
    return inserted


def import_feed_file(db: Database, path: str | Path, agency_id: str | None = None, *,
                     rebase_to: date | None = None) -> ImportResult:
    """Read, validate and import a GTFS zip or folder (see `import_feed`).

    ``agency_id`` defaults to the feed's first ``agency_id`` or, failing that, the file stem.
    With ``rebase_to`` the calendar is shifted by whole weeks to cover that date
    (`rebase_calendar`).
    """
    path = Path(path)
    feed = read_feed(path)
    if rebase_to is not None:
        feed = rebase_calendar(feed, rebase_to)
    if agency_id is None:
        ids = _text(feed.agency, "agency_id")
        agency_id = ids.iloc[0] if len(ids) and ids.iloc[0] else path.stem
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return import_feed(db, feed, agency_id, source=path.name, sha256=digest)


# --------------------------------------------------------------------------- readers

def agencies(db: Database) -> list[str]:
    """Agencies that have an active feed."""
    return [r[0] for r in db.fetchall("SELECT agency FROM gtfs_active ORDER BY agency")]


def active_feed_version(db: Database, agency_id: str) -> int | None:
    """The version readers of ``agency_id`` see, or None when no feed was imported."""
    rows = db.fetchall("SELECT feed_version FROM gtfs_active WHERE agency = %s", (agency_id,))
    return int(rows[0][0]) if rows else None


_READ = {
    "agency": "SELECT agency_id, agency_name, agency_url, agency_timezone, agency_lang, agency_phone"
              " FROM gtfs_agency WHERE feed_version = %s ORDER BY agency_id",
    "routes": "SELECT route_id, agency_id, route_short_name, route_long_name, route_type, route_color,"
              " route_text_color FROM gtfs_routes WHERE feed_version = %s ORDER BY route_id",
    "stops": "SELECT stop_id, stop_code, stop_name, stop_lat, stop_lon, location_type, parent_station"
             " FROM gtfs_stops WHERE feed_version = %s ORDER BY stop_id",
    "trips": "SELECT route_id, service_id, trip_id, trip_headsign, direction_id, block_id, shape_id"
             " FROM gtfs_trips WHERE feed_version = %s ORDER BY trip_id",
    "stop_times": "SELECT trip_id, arrival_s AS arrival_time, departure_s AS departure_time, stop_id,"
                  " stop_sequence, shape_dist_traveled, time_interpolated, timepoint FROM gtfs_stop_times"
                  " WHERE feed_version = %s ORDER BY trip_id, stop_sequence",
    "shapes": "SELECT shape_id, shape_pt_lat, shape_pt_lon, shape_pt_sequence, shape_dist_traveled"
              " FROM gtfs_shapes WHERE feed_version = %s ORDER BY shape_id, shape_pt_sequence",
    "calendar": "SELECT service_id, monday, tuesday, wednesday, thursday, friday, saturday, sunday,"
                " start_date, end_date FROM gtfs_calendar WHERE feed_version = %s ORDER BY service_id",
    "calendar_dates": "SELECT service_id, date, exception_type FROM gtfs_calendar_dates"
                      " WHERE feed_version = %s ORDER BY date, service_id",
    "frequencies": "SELECT trip_id, start_s AS start_time, end_s AS end_time, headway_s AS headway_secs,"
                   " exact_times FROM gtfs_frequencies WHERE feed_version = %s ORDER BY trip_id, start_s",
}


def _frame(cur: psycopg2.extensions.cursor, query: str, version: int) -> pd.DataFrame:
    cur.execute(query, (version,))
    columns = [d[0] for d in cur.description]
    return pd.DataFrame.from_records(cur.fetchall(), columns=columns)


def load_feed(db: Database, agency_id: str) -> Feed:
    """The active feed of ``agency_id`` as a `Feed` with the dtypes `read_feed` gives.

    All tables are read in one REPEATABLE READ snapshot, so a concurrent re-import is
    seen entirely or not at all.

    Raises
    ------
    LookupError
        No feed imported for this agency.
    """
    with db.connection() as conn:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT feed_version FROM gtfs_active WHERE agency = %s", (agency_id,))
                row = cur.fetchone()
                if row is None:
                    raise LookupError(f"no GTFS feed imported for agency {agency_id!r}")
                frames = {name: _frame(cur, query, int(row[0])) for name, query in _READ.items()}
            conn.commit()
        finally:
            conn.set_session(isolation_level="DEFAULT", readonly=False)
    st = frames["stop_times"]
    for column in ("arrival_time", "departure_time", "stop_sequence"):
        st[column] = st[column].astype("int64")
    st["shape_dist_traveled"] = st["shape_dist_traveled"].astype("float64")
    st["time_interpolated"] = st["time_interpolated"].astype(bool)
    if st["timepoint"].isna().all():  # the feed marked no timepoints (or was imported before 0103)
        st = st.drop(columns="timepoint")
    else:
        st["timepoint"] = st["timepoint"].astype("float64")
    stops = frames["stops"]
    for column in ("stop_lat", "stop_lon"):
        stops[column] = stops[column].astype("float64")
    frames["routes"]["route_type"] = frames["routes"]["route_type"].astype("int64")
    frames["trips"]["direction_id"] = frames["trips"]["direction_id"].astype("float64")
    shapes = frames["shapes"]
    if shapes.empty:
        shapes_out: pd.DataFrame | None = None
    else:
        shapes["shape_pt_sequence"] = shapes["shape_pt_sequence"].astype("int64")
        for column in ("shape_pt_lat", "shape_pt_lon", "shape_dist_traveled"):
            shapes[column] = shapes[column].astype("float64")
        shapes_out = shapes
    freq = frames["frequencies"]
    if not freq.empty:
        for column in ("start_time", "end_time", "headway_secs", "exact_times"):
            freq[column] = freq[column].astype("int64")
    cd = frames["calendar_dates"]
    if not cd.empty:
        cd["exception_type"] = cd["exception_type"].astype("int64")
    return Feed(agency=frames["agency"], routes=frames["routes"], stops=stops, trips=frames["trips"],
                stop_times=st, calendar=frames["calendar"], calendar_dates=cd, shapes=shapes_out,
                frequencies=None if freq.empty else freq)

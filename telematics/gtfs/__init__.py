"""GTFS static feeds: reading, validation, the normalised tables and their calendar, trip paths.

`read_feed` reads a GTFS zip (or a folder of ``.txt`` files) and returns a frozen `Feed`
of DataFrames with normalised dtypes (ids ``str``; times ``int64`` seconds since
service-day midnight, ``25:10:00`` is 90,600 s; dates `datetime.date`; coordinates
``float64`` degrees). Validation raises `FeedError` naming the file, the line (1-based,
header is line 1) and the field. `service_ids_on` resolves the services running on a
date, `service_day_start` places a service day on the epoch clock and `trip_paths`
builds every trip's projected path with each stop's distance along it.

Modules: `telematics.gtfs.model` (the `Feed`, `FeedError`, calendar; pure),
`telematics.gtfs.validate` (text tables to a `Feed`; pure), `telematics.gtfs.reader`
(zip/folder I/O), `telematics.gtfs.paths` (trip geometry; pure) and
`telematics.gtfs.database` (versioned import into PostgreSQL and read-back; not imported
by this package, so that reading a feed needs no database driver).
"""

from telematics.gtfs.model import (
    Feed,
    FeedError,
    busiest_day,
    rebase_calendar,
    service_day_start,
    service_ids_on,
    trips_running_at,
)
from telematics.gtfs.paths import TripPaths, trip_paths
from telematics.gtfs.reader import read_feed

__all__ = [
    "Feed",
    "FeedError",
    "TripPaths",
    "busiest_day",
    "read_feed",
    "rebase_calendar",
    "service_day_start",
    "service_ids_on",
    "trip_paths",
    "trips_running_at",
]

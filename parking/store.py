"""SQL of the parking domain: sites and spaces, latest sensor/counter state, occupancy history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from its.db import Database, copy_rows, upsert_rows
from parking.sites import Site, Space

__all__ = [
    "FORECAST_COLUMNS",
    "OCCUPANCY_COLUMNS",
    "ImportResult",
    "latest_counts",
    "latest_device_status",
    "latest_space_events",
    "load_sites",
    "occupancy_history",
    "save_forecasts",
    "save_occupancy",
    "upsert_sites",
]

SITE_COLUMNS = (
    "site_id", "name", "kind", "lat", "lon", "geometry", "capacity", "capacity_car", "capacity_disabled",
    "capacity_ev", "capacity_motorcycle", "opening_hours", "tariff", "timezone", "updated_at",
)
SPACE_COLUMNS = ("site_id", "space_id", "lat", "lon", "vehicle_type", "sensor_id")
OCCUPANCY_COLUMNS = ("site_id", "time", "capacity", "occupied", "free", "unknown", "status")
FORECAST_COLUMNS = ("issued_at", "site_id", "horizon_min", "observed_at", "target_time", "capacity", "occupied_now",
                    "free_predicted", "free_low", "free_high")


@dataclass(frozen=True)
class ImportResult:
    """Outcome of a sites import: new and updated sites, spaces written."""

    inserted: int
    updated: int
    spaces: int


def upsert_sites(db: Database, sites: Sequence[Site], now: datetime) -> ImportResult:
    """Insert or update sites and replace the spaces of each imported site (one transaction)."""
    ids = [s.site_id for s in sites]
    existing = {r[0] for r in db.fetchall("SELECT site_id FROM parking_sites WHERE site_id = ANY(%s)", (ids,))}
    site_rows = [
        (s.site_id, s.name, s.kind, s.lat, s.lon, orjson.dumps(s.geometry).decode(), s.capacity, s.capacity_car,
         s.capacity_disabled, s.capacity_ev, s.capacity_motorcycle, s.opening_hours, s.tariff, s.timezone, now)
        for s in sites
    ]
    space_rows = [
        (s.site_id, sp.space_id, sp.lat, sp.lon, sp.vehicle_type, s.sensor_of(sp)) for s in sites for sp in s.spaces
    ]
    with db.connection() as conn:
        upsert_rows(conn, "parking_sites", SITE_COLUMNS, site_rows, ("site_id",))
        with conn.cursor() as cur:
            cur.execute("DELETE FROM parking_spaces WHERE site_id = ANY(%s)", (ids,))
        if space_rows:
            copy_rows(conn, "parking_spaces", SPACE_COLUMNS, space_rows)
    return ImportResult(len(ids) - len(existing), len(existing), len(space_rows))


def load_sites(db: Database) -> list[Site]:
    """Every site with its spaces."""
    spaces: dict[str, list[Space]] = {}
    for site_id, space_id, lat, lon, vtype, sensor in db.fetchall(
        "SELECT site_id, space_id, lat, lon, vehicle_type, sensor_id FROM parking_spaces ORDER BY site_id, space_id"
    ):
        spaces.setdefault(site_id, []).append(
            Space.model_validate({"id": space_id, "lat": lat, "lon": lon, "vehicle_type": vtype, "sensor_id": sensor})
        )
    out = []
    for row in db.fetchall(f"SELECT {', '.join(SITE_COLUMNS[:-1])} FROM parking_sites ORDER BY site_id"):
        record: dict[str, Any] = dict(zip(SITE_COLUMNS[:-1], row, strict=True))
        record["id"] = record.pop("site_id")
        record["spaces"] = tuple(spaces.get(record["id"], ()))
        out.append(Site.model_validate(record))
    return out


def latest_counts(db: Database, since: datetime) -> list[tuple[str, datetime, int | None, int | None, int | None]]:
    """Counter messages per site from its last absolute reading on (or ``since``), in time order."""
    return [
        (r[0], r[1], r[2], r[3], r[4])
        for r in db.fetchall(
            """
            WITH last_abs AS (
                SELECT site_id, max(time) AS t FROM parking_counts
                WHERE occupied IS NOT NULL AND time >= %(since)s GROUP BY site_id)
            SELECT c.site_id, c.time, c.occupied, c.entries, c.exits
            FROM parking_counts c LEFT JOIN last_abs a USING (site_id)
            WHERE c.time >= coalesce(a.t, %(since)s)
            ORDER BY c.site_id, c.time
            """,
            {"since": since},
        )
    ]


def latest_space_events(db: Database, since: datetime) -> list[tuple[str, str, datetime, bool]]:
    """Last sensor message of each space since ``since``."""
    return [
        (r[0], r[1], r[2], r[3])
        for r in db.fetchall(
            "SELECT DISTINCT ON (site_id, space_id) site_id, space_id, time, occupied FROM parking_space_events"
            " WHERE time >= %s ORDER BY site_id, space_id, time DESC",
            (since,),
        )
    ]


def latest_device_status(db: Database, kind: str, since: datetime) -> list[tuple[str, datetime, bool]]:
    """Last status of each device of a kind since ``since``."""
    return [
        (r[0], r[1], r[2])
        for r in db.fetchall(
            "SELECT DISTINCT ON (device_id) device_id, time, online FROM device_status"
            " WHERE kind = %s AND time >= %s ORDER BY device_id, time DESC",
            (kind, since),
        )
    ]


def save_occupancy(db: Database, rows: Sequence[tuple[Any, ...]]) -> int:
    """Append site availability records (``OCCUPANCY_COLUMNS`` order); duplicates are skipped."""
    if not rows:
        return 0
    with db.connection() as conn:
        return copy_rows(conn, "parking_occupancy", OCCUPANCY_COLUMNS, rows)


def save_forecasts(db: Database, rows: Sequence[tuple[Any, ...]]) -> int:
    """Append issued forecasts to ``parking_forecasts`` (``FORECAST_COLUMNS`` order) in one COPY;
    a forecast already stored (same site, horizon and issue time) is skipped."""
    if not rows:
        return 0
    with db.connection() as conn:
        return copy_rows(conn, "parking_forecasts", FORECAST_COLUMNS, rows)


def occupancy_history(
    db: Database, site_id: str, start: datetime, end: datetime, interval_s: int | None
) -> list[dict[str, Any]]:
    """Occupancy of a site in ``[start, end)``: raw records, or means per ``interval_s`` bucket.

    ``interval_s == 900`` reads the ``parking_occupancy_15m`` rollup.
    """
    if interval_s is None:
        rows = db.fetchall(
            "SELECT time, capacity, occupied, free, unknown, status FROM parking_occupancy"
            " WHERE site_id = %s AND time >= %s AND time < %s ORDER BY time LIMIT 10000",
            (site_id, start, end),
        )
        return [
            {"time": t.isoformat(), "capacity": c, "occupied": o, "free": f, "unknown": u, "status": s}
            for t, c, o, f, u, s in rows
        ]
    if interval_s == 900:
        rows = db.fetchall(
            "SELECT bucket, capacity, mean_occupied, mean_free, min_free, max_free, readings"
            " FROM parking_occupancy_15m WHERE site_id = %s AND bucket >= %s AND bucket < %s ORDER BY bucket LIMIT 10000",
            (site_id, start, end),
        )
    else:
        rows = db.fetchall(
            "SELECT date_bin(make_interval(secs => %s), time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,"
            " max(capacity), avg(occupied)::float8, avg(free)::float8, min(free), max(free), count(*)"
            " FROM parking_occupancy WHERE site_id = %s AND time >= %s AND time < %s"
            " GROUP BY 1 ORDER BY 1 LIMIT 10000",
            (interval_s, site_id, start, end),
        )
    return [
        {"time": b.isoformat(), "capacity": c, "mean_occupied": None if mo is None else round(mo, 2),
         "mean_free": None if mf is None else round(mf, 2), "min_free": lo, "max_free": hi, "readings": n}
        for b, c, mo, mf, lo, hi, n in rows
    ]

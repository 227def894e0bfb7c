"""SQL of the video domain: latest counts per camera from ``traffic_counts`` (vehicles) and
``people_counts`` (pedestrians)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from its.db import Database

__all__ = ["latest_counts", "latest_people"]


def latest_counts(db: Database, since: datetime) -> list[dict[str, Any]]:
    """The most recent interval of every camera/line/direction/class since ``since`` (UTC).

    Returns
    -------
    list of dict
        Keys ``camera_id, line_id, direction, vehicle_class, interval_start, interval_s,
        count, mean_speed_kmh, occupancy`` (speed converted from stored m/s to km/h).
    """
    rows = db.fetchall(
        "SELECT DISTINCT ON (camera_id, line_id, direction, vehicle_class)"
        " camera_id, line_id, direction, vehicle_class, interval_start, interval_s, count,"
        " mean_speed_mps, occupancy FROM traffic_counts WHERE interval_start >= %s"
        " ORDER BY camera_id, line_id, direction, vehicle_class, interval_start DESC",
        (since,),
    )
    keys = ("camera_id", "line_id", "direction", "vehicle_class", "interval_start", "interval_s", "count", "mean_speed_mps", "occupancy")
    out = []
    for row in rows:
        rec = dict(zip(keys, row, strict=True))
        mps = rec.pop("mean_speed_mps")
        rec["mean_speed_kmh"] = None if mps is None else float(mps) * 3.6
        out.append(rec)
    return out


def latest_people(db: Database, since: datetime) -> list[dict[str, Any]]:
    """The most recent interval of every camera/place/measure of ``people_counts`` since ``since``.

    Returns
    -------
    list of dict
        Keys ``camera_id, place_id, measure, interval_start, interval_s, people_mean,
        people_max, samples, crossings`` (people; see :class:`video.ingest.PeopleRow`).
    """
    keys = ("camera_id", "place_id", "measure", "interval_start", "interval_s", "people_mean", "people_max",
            "samples", "crossings")
    rows = db.fetchall(
        f"SELECT DISTINCT ON (camera_id, place_id, measure) {', '.join(keys)} FROM people_counts"
        " WHERE interval_start >= %s ORDER BY camera_id, place_id, measure, interval_start DESC",
        (since,),
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]

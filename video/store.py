"""SQL of the video domain: latest counts per camera from ``traffic_counts``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from its.db import Database

__all__ = ["latest_counts"]


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

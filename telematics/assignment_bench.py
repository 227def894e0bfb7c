"""``its bench assignment``: trip assignment's geometry against a bare broadcast, in one run.

Trip assignment measures every ping against the paths of the trips running at its time;
on a day of shapes that projection was most of the work. `telematics.matching.project_points`
now asks each path's spatial index (`telematics.nearest`) for a few candidate segments per
point. The bench projects all of a recorded day's pings onto every path twice in one run:
through the index (its build included) and by the bare broadcast of every point x segment
distance (`telematics.matching.CHUNK_CELLS` at a time) that gives the same answer, checks that
both agree bit for bit, and times the whole assignment of the day with the trip ids hidden.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from telematics.gtfs import Feed, trip_paths
from telematics.matching import broadcast_projection, project_points
from telematics.position_assignment import assign_positions

__all__ = ["run_assignment_bench"]


def run_assignment_bench(feed: Feed, avl: pd.DataFrame) -> dict[str, Any]:
    """Time the projection of ``avl``'s pings onto every path of ``feed`` (index vs broadcast)
    and the day's assignment with the trip ids hidden.

    Parameters
    ----------
    feed : Feed
        The schedule.
    avl : DataFrame
        Positions from `telematics.avl.read_avl`.

    Returns
    -------
    dict
        ``pings``, ``paths``, ``segments``, ``index_s`` and ``broadcast_s`` (projection of every
        ping onto every path, s), ``ratio`` (broadcast / index: how many times faster),
        ``identical`` (bit-for-bit the same along and offset), ``assignment_s`` (the whole
        assignment with the trip ids hidden, s) and ``assignment_pings_per_s``.
    """
    started = time.perf_counter()
    paths = trip_paths(feed)
    paths_s = time.perf_counter() - started
    xy = paths.projection.to_xy(avl["lat"].to_numpy(dtype=np.float64), avl["lon"].to_numpy(dtype=np.float64))
    lines = list(paths.paths.values())
    started = time.perf_counter()
    bare = [broadcast_projection(line, xy) for line in lines]
    broadcast_s = time.perf_counter() - started
    started = time.perf_counter()
    indexed = [project_points(line, xy) for line in lines]
    index_s = time.perf_counter() - started
    identical = all(np.array_equal(a[k], b[k], equal_nan=True) for a, b in zip(bare, indexed, strict=True)
                    for k in (0, 1))
    started = time.perf_counter()
    assign_positions(feed, paths, avl.assign(trip_id="", route_id="", start_date=""))
    assignment_s = time.perf_counter() - started
    return {"pings": len(avl), "paths": len(lines), "segments": int(sum(len(line.xy) - 1 for line in lines)),
            "paths_s": round(paths_s, 3), "index_s": round(index_s, 3), "broadcast_s": round(broadcast_s, 3),
            "ratio": round(broadcast_s / max(index_s, 1e-9), 2), "identical": identical,
            "assignment_s": round(assignment_s, 3),
            "assignment_pings_per_s": round(len(avl) / max(assignment_s, 1e-9), 1)}

"""Every trip's path in a local metric projection, with its stops' distances along it.

Pure geometry over a `telematics.gtfs.model.Feed`: `trip_paths` projects the shapes (or,
without a shape, the stop sequence) to metres and places each stop on its trip's path,
from ``shape_dist_traveled`` when consistent, else by a monotone projection
(`telematics.matching.match_monotone`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.gtfs.model import Feed
from telematics.matching import (
    LocalProjection,
    Polyline,
    match_monotone,
    projection_candidates,
)

__all__ = ["OFF_SHAPE_M", "TripPaths", "trip_paths"]

FloatArray = npt.NDArray[np.float64]
#: A stop farther than this (m) from its trip's shape is placed by its neighbours.
OFF_SHAPE_M = 150.0


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

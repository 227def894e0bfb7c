"""Every trip's path in a local metric projection, with its stops' distances along it.

Pure geometry over a `telematics.gtfs.model.Feed`: `trip_paths` projects the shapes to
metres and places each stop on its trip's path, from ``shape_dist_traveled`` when consistent,
else by a monotone projection (`telematics.matching.match_monotone`). A trip without a shape
takes the path a ``stop_path`` callable builds from its stop sequence (the road network's
shortest paths between consecutive stops, `telematics.road_paths`), else the straight lines
between its stops; ``TripPaths.source`` says which each path is.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

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

__all__ = ["OFF_SHAPE_M", "PATH_SOURCES", "StopPath", "StopPathFn", "TripPaths", "trip_paths"]

FloatArray = npt.NDArray[np.float64]
#: A stop farther than this (m) from its trip's shape is placed by its neighbours.
OFF_SHAPE_M = 150.0
#: Where a path comes from: the feed's shape, the road network between every two consecutive
#: stops, the road network for some legs and straight lines for the others, straight lines.
PATH_SOURCES = ("shape", "road", "road+straight", "straight")


class StopPath(NamedTuple):
    """A path built from a stop sequence.

    Attributes
    ----------
    lat, lon : ndarray
        The path's vertices (degrees), in travel order.
    stop_vertex : ndarray of int
        Index of the vertex at each stop (non-decreasing, one per stop).
    source : str
        ``road``, ``road+straight`` or ``straight`` (`PATH_SOURCES`).
    """

    lat: FloatArray
    lon: FloatArray
    stop_vertex: npt.NDArray[np.int64]
    source: str


#: Builds a trip's path from its stops' latitudes and longitudes (degrees), or None.
StopPathFn = Callable[[FloatArray, FloatArray], StopPath | None]


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
    source : dict of str to str
        Key in ``paths`` to where that path comes from (`PATH_SOURCES`; a path not listed is
        a shape).
    """

    projection: LocalProjection
    paths: dict[str, Polyline]
    trip_path: dict[str, str]
    stop_dist_m: dict[str, FloatArray]
    source: dict[str, str] = field(default_factory=dict)

    def source_of(self, trip_id: str) -> str:
        """Where ``trip_id``'s path comes from (`PATH_SOURCES`)."""
        return self.source.get(self.trip_path[trip_id], "shape")

    def source_counts(self) -> dict[str, int]:
        """Number of trips per path source (every `PATH_SOURCES` entry, 0 included)."""
        got = Counter(self.source.get(key, "shape") for key in self.trip_path.values())
        return {name: int(got.get(name, 0)) for name in PATH_SOURCES}

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


def trip_paths(feed: Feed, stop_path: StopPathFn | None = None) -> TripPaths:
    """Build every trip's projected path with its stops' distances along it.

    Parameters
    ----------
    feed : Feed
        A feed from `read_feed`.
    stop_path : callable, optional
        Builds the path of a trip without a shape from its stops (`StopPath`; e.g. a loaded
        road network's, `telematics.road_paths.RoadStopPaths`); None (or its None) gives
        straight lines between the stops.

    Returns
    -------
    TripPaths
        Paths in metres in a local azimuthal equidistant projection. A stop's distance
        comes from ``shape_dist_traveled`` when the stop and shape both carry it and it is
        consistent (monotone, within 100 m of the stop); otherwise from a monotone
        projection of the stop sequence onto the shape. Without a shape, ``stop_path``'s
        path with the stops at its stop vertices, else the stop sequence itself.
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
    source: dict[str, str] = {}
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
                built = None
                if stop_path is not None and len(stop_xy) > 1:
                    srow = rows[lo:hi]
                    built = stop_path(stops["stop_lat"].to_numpy()[srow], stops["stop_lon"].to_numpy()[srow])
                if built is not None:
                    xy = projection.to_xy(built.lat, built.lon)
                    line = Polyline(xy=xy, cum_m=np.r_[0.0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
                    cache[key] = line.cum_m[np.asarray(built.stop_vertex, dtype=np.int64)].copy()
                    source[name] = built.source
                else:
                    line = Polyline(xy=stop_xy, cum_m=np.r_[0.0, np.cumsum(np.hypot(*np.diff(stop_xy, axis=0).T))])
                    if len(stop_xy) == 1:
                        line = Polyline(xy=np.vstack([stop_xy, stop_xy + 1e-3]), cum_m=np.array([0.0, 1e-3]))
                    cache[key] = line.cum_m[:len(stop_xy)].copy()
                    source[name] = "straight"
                paths[name] = line
            trip_path[trip] = name
            stop_dist[trip] = cache[key]
    return TripPaths(projection=projection, paths=paths, trip_path=trip_path, stop_dist_m=stop_dist, source=source)

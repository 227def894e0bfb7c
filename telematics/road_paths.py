"""Trip paths without shapes: the stop sequence snapped to a loaded road network.

A feed without ``shapes.txt`` gives each trip only its stop sequence. With a road network
loaded (an OSM extract, `maps`), `RoadStopPaths` builds the path a bus drives: each stop is
snapped to its nearest road (within ``max_snap_m``) and consecutive stops are joined by the
network's fastest path at free-flow speeds (`maps.routing.Router`), the stops' edges chosen
together (a Viterbi pass: a stop beside a divided road goes on the carriageway the bus
drives). A leg falls back to the straight line between its two stops when a stop is off the
network, no path joins them, or the path is more than ``max_detour`` times the straight
distance (plus 200 m: a one-way loop around a block); the path then says ``road+straight``
(``straight`` when no leg could be routed). `telematics.gtfs.trip_paths` takes it as its ``stop_path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import shapely
from shapely.ops import substring

from maps.geometry import haversine_m
from maps.network import RoadNetwork
from maps.routing import NoRouteError, Route, Router
from maps.spatial import EdgeSnapper
from telematics.gtfs.model import Feed
from telematics.gtfs.paths import StopPath

__all__ = ["RoadStopPaths", "load_roads", "shapeless_trips"]

FloatArray = npt.NDArray[np.float64]
DETOUR_SLACK_M = 200.0
SNAP_S_PER_M = 0.5  # cost (s) of each metre between a stop and the edge it is placed on


class RoadStopPaths:
    """Builds a trip's path from its stops on a road network (a `telematics.gtfs.paths.StopPathFn`).

    Each stop's candidates are the directed road edges within ``max_snap_m`` (both directions
    of a two-way street, each carriageway of a divided road); the chosen sequence minimises
    the free-flow travel time between consecutive stops plus ``SNAP_S_PER_M`` s per metre of
    each stop's distance to its edge (a Viterbi pass), so a stop on the far carriageway
    does not send the bus round the block. A leg no path joins (within the detour bound)
    breaks the chain and is drawn straight.

    Parameters
    ----------
    network : RoadNetwork
        The loaded road network.
    max_snap_m : float
        Farthest a stop may be from a road to be routed (m).
    max_detour : float
        Longest routed leg, as a multiple of the straight distance between its stops (plus
        200 m); longer legs are drawn straight.
    max_candidates : int
        Nearest edges considered per stop.
    """

    def __init__(self, network: RoadNetwork, max_snap_m: float = 80.0, max_detour: float = 3.0,
                 max_candidates: int = 6) -> None:
        self.network = network
        self.router = Router(network)
        self.snapper = EdgeSnapper(network)
        self.max_snap_m = max_snap_m
        self.max_detour = max_detour
        self.max_candidates = max_candidates
        self._slowest = float(np.min(network.freeflow_mps)) if network.n_edges else 1.0
        self._geometry_of: dict[tuple[int, float, int, float], FloatArray | None] = {}
        self.routed_legs = 0
        self.straight_legs = 0

    def __call__(self, lat: FloatArray, lon: FloatArray) -> StopPath | None:
        """The path through stops at ``lat``, ``lon`` (degrees, in order); None for < 2 stops."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        n = len(lat)
        if n < 2:
            return None
        legs = self._legs(lat, lon)
        path: list[FloatArray] = []  # vertices (lon, lat)
        stop_vertex = [0]
        for i, leg in enumerate(legs):
            if leg is None:  # straight from where the path is (the stop, or its road point) to the next stop
                if not path:
                    path.append(np.array([lon[i], lat[i]]))
                path.append(np.array([lon[i + 1], lat[i + 1]]))
            else:  # from the stop's road point to the next stop's
                start = 1 if path and np.array_equal(path[-1], leg[0]) else 0
                path.extend(leg[start:])
            stop_vertex.append(len(path) - 1)
        routed = sum(leg is not None for leg in legs)
        self.routed_legs += routed
        self.straight_legs += len(legs) - routed
        coords = np.vstack(path)
        # no zero-length steps: a repeated vertex is dropped, the stops keep their place
        keep = np.r_[True, np.any(np.diff(coords, axis=0) != 0.0, axis=1)]
        new_index = np.cumsum(keep) - 1
        coords = coords[keep]
        if len(coords) < 2:
            return None
        source = "road" if routed == len(legs) else "road+straight" if routed else "straight"
        return StopPath(coords[:, 1], coords[:, 0], new_index[np.asarray(stop_vertex, dtype=np.int64)], source)

    def _legs(self, lat: FloatArray, lon: FloatArray) -> list[FloatArray | None]:
        """Each leg's road geometry (lon/lat) or None (straight): Viterbi over the stops' edges."""
        n = len(lat)
        found = self.snapper.candidates(lon, lat, self.max_snap_m, max_per_point=self.max_candidates)
        cands: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        penalty: list[list[float]] = [[] for _ in range(n)]
        for p, e, f, d in zip(found.point.tolist(), found.edge.tolist(), found.fraction.tolist(),
                              found.distance_m.tolist(), strict=True):
            cands[p].append((int(e), float(f)))
            penalty[p].append(SNAP_S_PER_M * float(d))
        legs: list[FloatArray | None] = [None] * (n - 1)
        first = 0  # first stop of the chain being built
        cost = np.asarray(penalty[0], dtype=np.float64)
        back: list[npt.NDArray[np.int64]] = []
        for i in range(n - 1):
            longest = self._longest(lat, lon, i)
            step = self.router.edge_costs(cands[i], cands[i + 1], limit_s=longest / max(self._slowest, 0.5)) \
                if cands[i] and cands[i + 1] else np.full((len(cands[i]), len(cands[i + 1])), np.inf)
            total = cost[:, None] + step + np.asarray(penalty[i + 1], dtype=np.float64)[None, :]
            if total.size and np.isfinite(total).any():
                back.append(np.argmin(total, axis=0).astype(np.int64))
                cost = total.min(axis=0)
                continue
            self._close(first, i, cost, back, cands, legs, lat, lon)  # leg i cannot be routed: straight
            first, cost, back = i + 1, np.asarray(penalty[i + 1], dtype=np.float64), []
        self._close(first, n - 1, cost, back, cands, legs, lat, lon)
        return legs

    def _longest(self, lat: FloatArray, lon: FloatArray, i: int) -> float:
        """Longest road leg (m) allowed between stops ``i`` and ``i + 1``."""
        return self.max_detour * float(haversine_m(lon[i], lat[i], lon[i + 1], lat[i + 1])) + DETOUR_SLACK_M

    def _close(self, first: int, last: int, cost: FloatArray, back: list[npt.NDArray[np.int64]],
               cands: list[list[tuple[int, float]]], legs: list[FloatArray | None], lat: FloatArray,
               lon: FloatArray) -> None:
        """Backtrack the chain of stops ``first..last`` and fill its legs' geometries."""
        if last <= first or not np.isfinite(cost).any():
            return
        chosen = [int(np.argmin(cost))]
        for pointer in reversed(back):
            chosen.append(int(pointer[chosen[-1]]))
        chosen.reverse()
        for k in range(first, last):
            legs[k] = self._leg_geometry(cands[k][chosen[k - first]], cands[k + 1][chosen[k + 1 - first]],
                                         self._longest(lat, lon, k))

    def _leg_geometry(self, a: tuple[int, float], b: tuple[int, float], longest_m: float) -> FloatArray | None:
        key = (a[0], a[1], b[0], b[1])
        if key not in self._geometry_of:
            try:
                route = self.router.edge_route([a], [b])
            except NoRouteError:
                route = None
            self._geometry_of[key] = None if route is None or route.length_m > longest_m else self._geometry(route)
        return self._geometry_of[key]

    def _geometry(self, route: Route) -> FloatArray:
        """Vertices (lon/lat, degrees) of a route, its first and last edges cut at the fractions."""
        net = self.network
        parts = []
        last = len(route.edges) - 1
        for k, e in enumerate(route.edges):
            geom = net.geometries_xy[int(e)]
            a = route.start_fraction if k == 0 else 0.0
            b = route.end_fraction if k == last else 1.0
            if a > 0.0 or b < 1.0:
                geom = substring(geom, a, b, normalized=True)
            xy = np.asarray(shapely.get_coordinates(geom), dtype=np.float64)
            parts.append(xy if k == 0 else xy[1:])
        xy = np.vstack(parts) if parts else np.zeros((0, 2))
        lon, lat = net.projector.to_lonlat(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])


def load_roads(path: str | Path) -> RoadNetwork:
    """A road network from an OSM extract (``.osm.pbf``, `maps.osm.import_osm`) or a network
    saved by ``its maps import`` (``.npz``, `maps.network.RoadNetwork.load`).

    Raises
    ------
    FileNotFoundError, ValueError
        No such file, or not a readable extract or network.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"road network not found: {p}")
    if p.suffix == ".npz":
        return RoadNetwork.load(p)
    from maps.osm import import_osm

    return import_osm(p)


def shapeless_trips(feed: Feed) -> int:
    """Number of ``feed``'s trips without a shape (no ``shape_id``, or one ``shapes.txt`` lacks)."""
    known = set() if feed.shapes is None else set(feed.shapes["shape_id"].astype(str))
    shape = feed.trips["shape_id"].fillna("").astype(str) if "shape_id" in feed.trips else None
    return len(feed.trips) if shape is None else int((~shape.isin(known)).sum())


"""Fleet simulator: vehicles driven along a feed's paths on its schedule, or an AVL replay.

`FleetSimulation` is pure: for a service day it draws, per trip, realised stop times
(a random-walk delay, dwell at stops) once, and `FleetSimulation.positions` gives every
active vehicle's position at a moment (interpolated along its path, GPS noise added).
`run_fleet` and `run_replay` are the publishing loops (paho via `its.mqtt`, QoS 1),
bounded by a duration.

Message times: a simulation of today at real speed stamps each position with its simulated
time, which is the wall clock. Run faster (``speedup`` > 1) or on another service day
(``--day``), simulated time is not the wall clock, and the collector refuses positions
stamped more than ``ITS_INGEST_MAX_FUTURE_S`` ahead of it or older than
``ITS_INGEST_MAX_AGE_S``: the positions are then stamped with the (compressed) wall-clock
time of their publication, and name their trip without a service date (as a retimed AVL
replay does), so the platform stores and shows every one of them. The platform's clock does
not run faster: arrivals against the timetable of a sped-up run are not meaningful.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import pyproj

from telematics.gtfs import Feed, service_day_start, service_ids_on, trip_paths

__all__ = ["FleetSimulation", "avl_messages", "fleet_messages", "run_fleet", "run_replay", "same_time_on", "simulated_avl"]

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
MAX_SPEED_MPS = 22.0  # realised segment times never imply more than ~80 km/h


@dataclass(frozen=True)
class _Run:
    """One simulated trip: knots of (time, distance) and its identity."""

    vehicle_id: str
    trip_id: str
    route_id: str
    path_key: str
    t_knots: FloatArray  # epoch s, non-decreasing: arrival, departure per stop
    d_knots: FloatArray  # m along the path


class FleetSimulation:
    """Vehicles running the trips of one service day with realistic delays and dwell.

    Parameters
    ----------
    feed : Feed
        The schedule and paths.
    day : datetime.date
        Service date to simulate.
    seed : int
        Random seed (the same seed gives the same day).
    gps_noise_m : float
        Standard deviation of the GPS error per axis (m).
    delay_step_s : float
        Standard deviation of the delay change over a 5-minute segment (s).
    mean_dwell_s : float
        Mean extra dwell at a stop (s, exponential).
    max_vehicles : int, optional
        Simulate only the first trips of the day (by departure) up to this many vehicles.
    start_delay_s : tuple of float
        Mean and standard deviation (s) of a trip's delay where its random walk starts
        (normal; the bus still never leaves its first stop before the timetable).
    max_early_s : float
        Most a bus runs ahead of its timetable (s): the delay is clipped at ``-max_early_s``
        (drivers "running hot" on a padded schedule make it larger).
    """

    def __init__(self, feed: Feed, day: date, *, seed: int = 0, gps_noise_m: float = 8.0,
                 delay_step_s: float = 45.0, mean_dwell_s: float = 12.0, max_vehicles: int | None = None,
                 start_delay_s: tuple[float, float] = (30.0, 60.0), max_early_s: float = 90.0) -> None:
        self.feed = feed
        self.day = day
        self.day0 = service_day_start(day, feed.timezone)
        self.paths = trip_paths(feed)
        self.gps_noise_m = gps_noise_m
        self.delay_step_s = delay_step_s
        self.mean_dwell_s = mean_dwell_s
        self.start_delay_s = start_delay_s
        self.max_early_s = max_early_s
        self.rng = np.random.default_rng(seed)
        proj = self.paths.projection
        crs = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={proj.lat0} +lon_0={proj.lon0} +datum=WGS84 +units=m +no_defs")
        self._inverse = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        running = service_ids_on(feed, day)
        trips = feed.trips[feed.trips["service_id"].isin(list(running))]
        st = feed.stop_times[feed.stop_times["trip_id"].isin(trips["trip_id"])]
        ids = st["trip_id"].to_numpy(dtype=str)
        # one cut per trip start and one at the end (a day without trips: no cut, no run)
        cuts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True]) if len(ids) else np.zeros(1, dtype=np.int64)
        arr = st["arrival_time"].to_numpy(dtype=np.float64)
        dep = st["departure_time"].to_numpy(dtype=np.float64)
        info = trips.set_index("trip_id")
        stop_ids = st["stop_id"].to_numpy(dtype=str)
        order = np.argsort(arr[cuts[:-1]], kind="stable")
        runs: list[_Run] = []
        free: dict[str, list[tuple[float, str]]] = {}  # terminal stop -> (free from, vehicle)
        vehicles = 0
        for i in order.tolist():  # per trip of the day: chain trips into vehicle duties
            lo, hi = int(cuts[i]), int(cuts[i + 1])
            trip = str(ids[lo])
            block = str(info.at[trip, "block_id"] or "")
            first_departure = self.day0 + dep[lo]
            waiting = free.get(stop_ids[lo], [])
            pick = next((k for k, (t_free, _v) in enumerate(waiting) if t_free <= first_departure + 300.0), None)
            if block:
                vehicle, not_before = f"sim-{block}", -math.inf
            elif pick is not None:
                not_before, vehicle = waiting.pop(pick)
            else:
                if max_vehicles is not None and vehicles >= max_vehicles:
                    continue
                vehicles += 1
                vehicle, not_before = f"sim-{vehicles:04d}", -math.inf
            run = self._realise(trip, str(info.at[trip, "route_id"]), vehicle, arr[lo:hi], dep[lo:hi], not_before)
            runs.append(run)
            free.setdefault(stop_ids[hi - 1], []).append((float(run.t_knots[-1]) + 60.0, vehicle))
        self.runs = runs
        self._t_start = np.array([r.t_knots[0] for r in runs])
        self._t_end = np.array([r.t_knots[-1] for r in runs])

    def _realise(self, trip: str, route: str, vehicle: str, arr: FloatArray, dep: FloatArray,
                 not_before: float) -> _Run:
        """Draw actual stop times: delay random walk, dwell, speed cap."""
        dist = self.paths.stop_dist_m[trip]
        n = len(arr)
        seg = np.diff(arr, prepend=arr[0])
        steps = self.rng.normal(0.0, self.delay_step_s * np.sqrt(np.maximum(seg, 0.0) / 300.0))
        start = self.rng.normal(*self.start_delay_s)
        delay = np.clip(start + np.cumsum(steps), -self.max_early_s, 1500.0)
        dwell = np.maximum(dep - arr, 0.0) + self.rng.exponential(self.mean_dwell_s, n) * (np.arange(n) > 0)
        a = self.day0 + arr + delay
        d = a + dwell
        a[0] = max(a[0], not_before)  # the vehicle's previous trip may run late
        d[0] = max(a[0], self.day0 + dep[0])  # never leave the origin before the timetable
        for j in range(1, n):  # per stop of one trip (tens): keep order and a plausible speed
            earliest = d[j - 1] + (dist[j] - dist[j - 1]) / MAX_SPEED_MPS
            a[j] = max(a[j], earliest)
            d[j] = a[j] + dwell[j]
        t_knots = np.column_stack([a, d]).ravel()
        d_knots = np.repeat(dist, 2)
        return _Run(vehicle, trip, route, self.paths.trip_path[trip], t_knots, d_knots)

    def active(self, t_s: float) -> npt.NDArray[np.int64]:
        """Indices of the runs on the road at ``t_s`` (one run per vehicle: the earliest)."""
        idx = np.flatnonzero((self._t_start <= t_s) & (self._t_end >= t_s))
        seen: set[str] = set()
        keep = []
        for i in idx.tolist():
            if self.runs[i].vehicle_id not in seen:
                seen.add(self.runs[i].vehicle_id)
                keep.append(i)
        return np.array(keep, dtype=np.int64)

    def positions(self, t_s: float, *, include_trip: bool = True,
                  stamp_s: float | None = None) -> list[tuple[str, dict[str, Any]]]:
        """``(vehicle_id, JSON payload)`` of every active vehicle at ``t_s`` (epoch s).

        Payload fields follow the position topic: ``ts`` (ISO 8601; ``stamp_s`` when given,
        epoch s, else ``t_s``), ``lat``, ``lon`` (degrees), ``speed_mps``, ``bearing``
        (degrees), and ``trip_id``, ``route_id`` unless ``include_trip`` is false, with
        ``start_date`` when the message is stamped with its simulated time.
        """
        idx = self.active(t_s)
        if len(idx) == 0:
            return []
        along = np.array([np.interp(t_s, self.runs[i].t_knots, self.runs[i].d_knots) for i in idx])
        ahead = np.array([np.interp(t_s + 5.0, self.runs[i].t_knots, self.runs[i].d_knots) for i in idx])
        xy = np.zeros((len(idx), 2))
        heading = np.zeros(len(idx))
        for n, i in enumerate(idx.tolist()):
            line = self.paths.paths[self.runs[i].path_key]
            xy[n] = line.point_at([along[n]])[0]
            heading[n] = float(line.heading_at(np.array([along[n]]))[0])
        xy += self.rng.normal(0.0, self.gps_noise_m, xy.shape)
        lon, lat = self._inverse.transform(xy[:, 0], xy[:, 1])
        speed = np.maximum(ahead - along, 0.0) / 5.0
        stamp = datetime.fromtimestamp(t_s if stamp_s is None else stamp_s, UTC).isoformat().replace("+00:00", "Z")
        out = []
        for n, i in enumerate(idx.tolist()):
            run = self.runs[i]
            payload: dict[str, Any] = {"ts": stamp, "lat": round(float(lat[n]), 7), "lon": round(float(lon[n]), 7),
                                       "speed_mps": round(float(speed[n]), 2), "bearing": round(float(heading[n]), 1)}
            if include_trip:
                payload.update(trip_id=run.trip_id, route_id=run.route_id)
                if stamp_s is None:  # a retimed message cannot claim the simulated service date
                    payload["start_date"] = self.day.strftime("%Y%m%d")
            out.append((run.vehicle_id, payload))
        return out


def simulated_avl(sim: FleetSimulation, interval_s: float = 30.0) -> pd.DataFrame:
    """Every active vehicle's position every ``interval_s`` (s) over the simulated day, in the
    columns `telematics.avl.read_avl` gives (trip ids recorded, ``line`` 0: no file).

    The simulator's delays are a random walk: the day tests trip assignment and robustness on
    the feed's own geometry; on its arrivals nothing beats delay propagation.
    """
    if not sim.runs:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("vehicle_id", "trip_id", "route_id", "start_date")}
                            | {c: pd.Series(dtype=np.float64) for c in ("lat", "lon", "speed_mps", "bearing", "time_s")}
                            | {"line": pd.Series(dtype=np.int64)})
    rows: list[tuple[Any, ...]] = []
    start = float(min(r.t_knots[0] for r in sim.runs))
    end = float(max(r.t_knots[-1] for r in sim.runs))
    for t in np.arange(start, end + interval_s, interval_s):
        for vehicle, p in sim.positions(float(t)):
            rows.append((vehicle, p["trip_id"], p["route_id"], p["start_date"], p["lat"], p["lon"], p["speed_mps"],
                         p["bearing"], float(t)))
    frame = pd.DataFrame(rows, columns=["vehicle_id", "trip_id", "route_id", "start_date", "lat", "lon",
                                        "speed_mps", "bearing", "time_s"])
    frame["line"] = 0
    return frame.sort_values(["time_s", "vehicle_id"], kind="stable").reset_index(drop=True)


def same_time_on(day: date, timezone: str, now_s: float | None = None) -> float:
    """Epoch seconds of the current local time of day on service date ``day``."""
    now = time.time() if now_s is None else now_s
    today = datetime.fromtimestamp(now, ZoneInfo(timezone)).date()
    return service_day_start(day, timezone) + (now - service_day_start(today, timezone))


def _publish_loop(publish: Callable[[str, bytes], None], messages: Iterator[tuple[float, str, bytes]],
                  speedup: float, duration_s: float) -> int:
    """Publish ``(sim_time, topic, payload)`` in order, pacing sim time by ``speedup``."""
    start_wall = time.monotonic()
    sim0: float | None = None
    sent = 0
    for sim_t, topic, payload in messages:
        sim0 = sim_t if sim0 is None else sim0
        due = (sim_t - sim0) / speedup
        if duration_s > 0 and due > duration_s:
            break
        wait = due - (time.monotonic() - start_wall)
        if wait > 0:
            time.sleep(wait)
        publish(topic, payload)
        sent += 1
    return sent


def fleet_messages(sim: FleetSimulation, agency: str, start_s: float, interval_s: float,
                   include_trip: bool = True,
                   stamp: Callable[[float], float] | None = None) -> Iterator[tuple[float, str, bytes]]:
    """Position messages of the simulation every ``interval_s`` of sim time from ``start_s``
    (``(sim time, topic, payload)``); ``stamp`` maps a sim time to the messages' time (epoch
    s; default: the sim time itself)."""
    t = start_s
    end = float(sim._t_end.max()) if len(sim.runs) else start_s
    while t <= end:
        stamp_s = None if stamp is None else stamp(t)
        for vehicle, payload in sim.positions(t, include_trip=include_trip, stamp_s=stamp_s):
            yield t, f"its/v1/vehicles/{agency}/{vehicle}/position", orjson.dumps(payload)
        t += interval_s


def avl_messages(path: str | Path, agency: str, shift_to_s: float | None = None,
                 speedup: float = 1.0) -> Iterator[tuple[float, str, bytes]]:
    """Position messages of an AVL CSV in time order (``(time, topic, payload)``, the time moved
    to start at ``shift_to_s``), timestamps moved likewise and compressed ``speedup`` times (the
    time of their publication by `run_replay`)."""
    from telematics.avl import read_avl

    avl = read_avl(path)
    first = float(avl["time_s"].iloc[0]) if not avl.empty else 0.0
    for row in avl.to_dict("records"):
        t = float(row["time_s"]) + (0.0 if shift_to_s is None else shift_to_s - first)
        stamp = t if shift_to_s is None else shift_to_s + (t - shift_to_s) / speedup
        payload: dict[str, Any] = {"ts": datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z"),
                                   "lat": float(row["lat"]), "lon": float(row["lon"])}
        # a retimed replay cannot claim the original service date; its trip ids stay
        for key in ("trip_id", "route_id") if shift_to_s is not None else ("trip_id", "route_id", "start_date"):
            if row[key]:
                payload[key] = row[key]
        for key in ("speed_mps", "bearing"):
            value = float(row[key])
            if math.isfinite(value):
                payload[key] = value
        yield t, f"its/v1/vehicles/{agency}/{row['vehicle_id']}/position", orjson.dumps(payload)


def _publisher(mqtt_url: str) -> tuple[Callable[[str, bytes], None], Callable[[], None]]:
    """A QoS 1 publish function and a close that first waits for the broker's acknowledgements."""
    from its.mqtt import publisher

    conn = publisher(mqtt_url, client_id="")
    pending: list[Any] = []

    def publish(topic: str, payload: bytes) -> None:
        pending.append(conn.publish(topic, payload, qos=1))
        if len(pending) > 5000:
            pending[:] = [info for info in pending if not info.is_published()]

    def close() -> None:
        deadline = time.monotonic() + 30.0
        for info in pending:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        conn.close()

    return publish, close


def run_fleet(feed: Feed, mqtt_url: str, agency: str, *, duration_s: float, interval_s: float = 10.0,
              speedup: float = 1.0, start_s: float | None = None, include_trip: bool = True,
              max_vehicles: int | None = None, seed: int = 0) -> int:
    """Simulate the service day (local to the feed) of ``start_s`` (default: now) and publish
    positions; return messages sent. Unless it runs today at real speed, the messages are
    stamped with the wall-clock time of their publication (see the module docstring)."""
    wall0 = time.time()
    now = wall0 if start_s is None else start_s
    day = datetime.fromtimestamp(now, ZoneInfo(feed.timezone)).date()
    sim = FleetSimulation(feed, day, seed=seed, max_vehicles=max_vehicles)
    realtime = start_s is None and speedup == 1.0
    stamp = None if realtime else (lambda t: wall0 + (t - now) / speedup)
    publish, close = _publisher(mqtt_url)
    try:
        return _publish_loop(publish, fleet_messages(sim, agency, now, interval_s, include_trip, stamp), speedup,
                             duration_s)
    finally:
        close()


def run_replay(path: str | Path, mqtt_url: str, agency: str, *, duration_s: float, speedup: float = 1.0,
               retime: bool = True) -> int:
    """Replay an AVL CSV as live positions (timestamps moved to now and compressed ``speedup``
    times, the time of their publication, unless ``retime`` is false)."""
    publish, close = _publisher(mqtt_url)
    try:
        return _publish_loop(publish, avl_messages(path, agency, time.time() if retime else None, speedup), speedup,
                             duration_s)
    finally:
        close()

"""The arrivals service: live fleet state in memory, fed by MQTT, rebuilt from the store.

At start every agency's active feed is loaded (`telematics.gtfs.database.load_feed`), the arrival
model learns from the stored ``stop_arrivals`` of the last days and the recent stored
positions are replayed. Live positions then arrive through ``ctx.subscribe``. A refresher
thread rebuilds the published `Snapshot` (arrival boards per stop, vehicles, GTFS-rt
bytes) at most every ``board_refresh_s`` after a change and at least every 15 s, writes
the detected stop arrivals and syncs the dispatcher alerts; requests only read the
current snapshot.

Restarts keep each vehicle on the same run of a frequency-based trip: a stored position
carries the run its message named (``vehicle_positions.start_time``), and when a message
named a frequency-based trip without a run, the run the live assignment chose is written
back to its stored position (`telematics.store.fill_start_times`), so the replay at start
maps the vehicle to that run again (`telematics.fleet.Fleet.instance_of`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import APIRouter
from scipy.spatial import cKDTree

from its.ingest import PayloadError
from its.service import Context, Service
from telematics import gtfsrt, store
from telematics.board import StopBoardJson
from telematics.config import TelematicsSettings
from telematics.dispatch import AlertSpec
from telematics.fleet import Fleet
from telematics.gtfs import database as gtfs_db
from telematics.ingest import parse_gtfsrt_position, parse_json_position
from telematics.samples import PredictionSampler

__all__ = ["ArrivalsService", "Snapshot", "StopIndex", "create_service"]

log = logging.getLogger(__name__)
FULL_REFRESH_S = 15.0
MAX_PENDING = 100_000  # rows of each kind held while the database is unreachable
RUN_FILL_RETRY_S = 120.0  # a run is written back to its position for this long (s) after the ping


@dataclass(frozen=True)
class StopIndex:
    """One agency's stops in a KD-tree over projected metres."""

    agency: str
    fleet: Fleet
    ids: list[str]
    tree: cKDTree

    def near(self, lat: float, lon: float, radius_m: float, limit: int) -> list[tuple[float, str]]:
        """``(distance_m, stop_id)`` of the stops within ``radius_m``, nearest first."""
        xy = self.fleet.paths.projection.to_xy([lat], [lon])[0]
        if not np.all(np.isfinite(xy)):
            return []
        dist, idx = self.tree.query(xy, k=min(limit, len(self.ids)), distance_upper_bound=radius_m)
        dist, idx = np.atleast_1d(dist), np.atleast_1d(idx)
        return [(float(d), self.ids[i]) for d, i in zip(dist, idx, strict=True) if np.isfinite(d)]


@dataclass(frozen=True)
class Snapshot:
    """What the API serves; replaced as a whole by the refresher."""

    now_s: float = 0.0
    arrivals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    vehicles: dict[str, dict[str, Any]] = field(default_factory=dict)
    route_vehicles: dict[str, list[str]] = field(default_factory=dict)
    trip_updates_pb: bytes = b""
    trip_updates_json: dict[str, Any] = field(default_factory=dict)
    vehicle_positions_pb: bytes = b""
    vehicle_positions_json: dict[str, Any] = field(default_factory=dict)
    stop_json: dict[str, StopBoardJson] = field(default_factory=dict, compare=False, repr=False)

    @property
    def generated_at(self) -> str:
        """``now_s`` as ISO 8601 UTC."""
        return datetime.fromtimestamp(round(self.now_s), UTC).isoformat().replace("+00:00", "Z")


    def arrivals_json(self, stop: dict[str, Any], horizon_s: float, now_s: float) -> bytes:
        """The arrivals response of ``stop`` (see `telematics.board.StopBoardJson`); each stop
        is serialised once per snapshot, on its first request."""
        stop_id = stop["stop_id"]
        board = self.stop_json.get(stop_id)
        if board is None or board.stop is not stop:
            board = StopBoardJson.of(stop, self.generated_at, self.arrivals.get(stop_id, []))
            self.stop_json[stop_id] = board
        return board.render(horizon_s, now_s)


class ArrivalsService(Service):
    """Real-time arrivals, vehicles and GTFS-realtime feeds of every imported agency.

    Parameters
    ----------
    config : TelematicsSettings, optional
        Thresholds (default: from ``ITS_TELEMATICS_*``).
    clock : callable, optional
        Current time in epoch seconds (tests replaying recorded data pass their own).
    background : bool
        Run the refresher thread; tests call `refresh` themselves.
    """

    name = "telematics"

    def __init__(self, config: TelematicsSettings | None = None, clock: Callable[[], float] = time.time,
                 background: bool = True) -> None:
        self.config = config or TelematicsSettings()
        self.clock = clock
        self.background = background
        self.fleets: dict[str, Fleet] = {}
        self.stops: dict[str, dict[str, Any]] = {}
        self.routes: dict[str, dict[str, Any]] = {}
        self.stop_index: list[StopIndex] = []
        self.snapshot = Snapshot()
        self.ctx: Context | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[Any, ...]] = []
        self._pending_predictions: list[tuple[Any, ...]] = []
        self._pending_runs: list[tuple[str, str, datetime, str, str]] = []  # agency, vehicle, time, trip, run
        self.sampler = PredictionSampler()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._ready = False
        self._thread: threading.Thread | None = None
        self._alerts: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self, ctx: Context) -> None:
        """Load feeds, history and recent positions from the store, then go live."""
        self.ctx = ctx
        for agency in gtfs_db.agencies(ctx.read_db):
            self.add_agency(agency, gtfs_db.load_feed(ctx.read_db, agency))
            now = datetime.fromtimestamp(self.clock(), UTC)
            if self.config.history_days:
                history = store.read_stop_arrivals(ctx.read_db, agency, now - timedelta(days=self.config.history_days),
                                                   now - timedelta(hours=6))
                self.fleets[agency].learn_history(history)
            if self.config.recent_positions_min:
                recent = store.read_positions(ctx.read_db, now - timedelta(minutes=self.config.recent_positions_min),
                                              agency)
                for row in recent.itertuples(index=False, name=None):
                    self._observe_row(self.fleets[agency], row)
        ctx.subscribe("its/v1/vehicles/+/+/position", self._on_json)
        ctx.subscribe("its/v1/vehicles/+/+/position/gtfsrt", self._on_gtfsrt)
        self.refresh()
        self._ready = True
        if self.background:
            self._thread = threading.Thread(target=self._run, name="arrivals-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def ready(self) -> bool:
        return self._ready

    def router(self) -> APIRouter:
        from telematics.api import build_router

        return build_router(self)

    # ------------------------------------------------------------------ state

    def add_agency(self, agency: str, feed: Any) -> None:
        """Serve ``agency`` with ``feed`` (a `telematics.gtfs.Feed`)."""
        fleet = Fleet(agency, feed, self.config)
        stops = feed.stops
        served: dict[str, set[str]] = {}
        st_routes = np.array([fleet.trip_route[t] for t in fleet.st_trip], dtype=object)
        for stop_id, route_id in set(zip(fleet.st_stop_list, st_routes.tolist(), strict=True)):
            served.setdefault(stop_id, set()).add(route_id)
        ids = stops["stop_id"].astype(str).tolist()
        xy = fleet.paths.projection.to_xy(stops["stop_lat"].to_numpy(), stops["stop_lon"].to_numpy())
        info = {}
        for sid, code, name, lat, lon in zip(ids, stops.get("stop_code", [""] * len(ids)),
                                             stops.get("stop_name", [""] * len(ids)),
                                             stops["stop_lat"].tolist(), stops["stop_lon"].tolist(), strict=True):
            info[sid] = {"stop_id": sid, "agency": agency, "code": str(code or ""), "name": str(name or ""),
                         "lat": lat, "lon": lon, "routes": sorted(served.get(sid, ()))}
        routes = {}
        for r in feed.routes.to_dict("records"):
            rid = str(r["route_id"])
            routes[rid] = {"route_id": rid, "agency": agency, "short_name": str(r.get("route_short_name") or ""),
                           "long_name": str(r.get("route_long_name") or ""), "type": int(r["route_type"]),
                           "color": str(r.get("route_color") or ""), "text_color": str(r.get("route_text_color") or "")}
        with self._lock:
            self.fleets[agency] = fleet
            self.stops.update(info)
            self.routes.update(routes)
            self.stop_index = [s for s in self.stop_index if s.agency != agency]
            self.stop_index.append(StopIndex(agency, fleet, ids, cKDTree(xy)))
        self._dirty.set()

    def observe(self, rows: list[tuple[Any, ...]]) -> int:
        """Feed parsed position rows (`telematics.ingest.POSITION_COLUMNS`); return passings detected."""
        found = 0
        with self._lock:
            for row in rows:
                fleet = self.fleets.get(row[0])
                if fleet is None:
                    continue
                passings = self._observe_row(fleet, row)
                found += len(passings)
                self._pending.extend(passings)
        self._dirty.set()
        return found

    def _observe_row(self, fleet: Fleet, row: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """`Fleet.observe` one row; remember the run it gave a frequency-based trip named
        without one (written back to the stored position by `flush`)."""
        passings = fleet.observe(row)
        trip_id, ts = row[7], row[2]
        if not isinstance(trip_id, str) or not trip_id or (len(row) > 12 and isinstance(row[12], str) and row[12]):
            return passings
        v = fleet.vehicles.get(row[1])
        if v is None or v.trip_id is None or not isinstance(ts, datetime) or v.observed_s != ts.timestamp():
            return passings
        template, run = fleet.gtfsrt_trip(v.trip_id)
        if run is not None and template == trip_id:
            self._pending_runs.append((fleet.agency, str(row[1]), ts, trip_id, run))
            del self._pending_runs[:-MAX_PENDING]
        return passings

    def _on_json(self, topic: str, payload: bytes) -> None:
        try:
            self.observe(parse_json_position(topic, payload))
        except PayloadError as exc:
            log.debug("ignoring live position on %s: %s", topic, exc)

    def _on_gtfsrt(self, topic: str, payload: bytes) -> None:
        try:
            self.observe(parse_gtfsrt_position(topic, payload))
        except PayloadError as exc:
            log.debug("ignoring live GTFS-rt position on %s: %s", topic, exc)

    def refresh(self, now_s: float | None = None) -> Snapshot:
        """Rebuild and publish the snapshot at ``now_s`` (default: the clock); sync alerts."""
        now = self.clock() if now_s is None else now_s
        arrivals: dict[str, list[dict[str, Any]]] = {}
        vehicles: dict[str, dict[str, Any]] = {}
        route_vehicles: dict[str, list[str]] = {}
        snaps: list[gtfsrt.VehicleSnapshot] = []
        updates: list[gtfsrt.TripUpdate] = []
        alerts: list[AlertSpec] = []
        with self._lock:
            for fleet in self.fleets.values():
                fleet.evict(now)
                board = fleet.board(now)
                samples = self.sampler.sample(fleet, now, board.predicted)
                self._pending_predictions.extend(samples)
                del self._pending_predictions[:-MAX_PENDING]
                for stop_id, items in board.arrivals.items():
                    arrivals.setdefault(stop_id, []).extend(items)
                vehicles.update(board.vehicles)
                snaps.extend(board.snapshots)
                updates.extend(board.trip_updates)
                alerts.extend(board.alerts)
        for view in vehicles.values():
            if view["route_id"] and not view["stale"]:
                route_vehicles.setdefault(view["route_id"], []).append(view["vehicle_id"])
        tu = gtfsrt.trip_updates_feed(updates, now)
        vp = gtfsrt.vehicle_positions_feed(snaps, now)
        self.snapshot = Snapshot(now, arrivals, vehicles, route_vehicles, gtfsrt.to_bytes(tu), gtfsrt.to_json(tu),
                                 gtfsrt.to_bytes(vp), gtfsrt.to_json(vp))
        self._sync_alerts(alerts)
        return self.snapshot

    def _sync_alerts(self, alerts: list[AlertSpec]) -> None:
        if self.ctx is None:
            return
        current = {(a.kind, a.subject): a for a in alerts}
        for key, a in current.items():
            if key not in self._alerts:
                self.ctx.alerts.raise_alert(a.kind, a.subject, a.message, severity=a.severity, lat=a.lat, lon=a.lon)
        for kind, subject in self._alerts - current.keys():
            self.ctx.alerts.clear(kind, subject)
        self._alerts = set(current)

    def flush(self) -> tuple[int, int]:
        """Store the detected stop arrivals and the sampled predictions held in memory.

        Called by the refresher thread (never on the message path). Rows that cannot be
        written are kept for the next attempt (at most `MAX_PENDING` of each).

        Returns
        -------
        tuple of int
            Stop arrivals and predictions inserted.
        """
        with self._lock:
            rows, self._pending = self._pending, []
            preds, self._pending_predictions = self._pending_predictions, []
        if self.ctx is None:
            return 0, 0
        self.flush_runs()
        done = [0, 0]
        for n, (batch, write, what) in enumerate(((rows, store.write_stop_arrivals, "stop arrivals"),
                                                  (preds, store.write_predictions, "predictions"))):
            if not batch:
                continue
            try:
                done[n] = write(self.ctx.db, batch)
            except Exception:
                log.exception("could not store %d %s; keeping them for the next attempt", len(batch), what)
                with self._lock:
                    pending = self._pending if n == 0 else self._pending_predictions
                    pending[:0] = batch[-MAX_PENDING:]
                    del pending[:-MAX_PENDING]
        return done[0], done[1]

    def flush_runs(self) -> int:
        """Write the runs the live assignment chose back to their stored positions.

        A position the collector has not stored yet is retried at the next flush, for
        `RUN_FILL_RETRY_S` after its ping.

        Returns
        -------
        int
            Positions updated.
        """
        with self._lock:
            runs, self._pending_runs = self._pending_runs, []
        if self.ctx is None or not runs:
            return 0
        try:
            done = store.fill_start_times(self.ctx.db, runs)
        except Exception:
            log.exception("could not store the runs of %d positions; keeping them for the next attempt", len(runs))
            done = set()
        cutoff = self.clock() - RUN_FILL_RETRY_S
        retry = [r for r in runs if (r[0], r[1], r[2]) not in done and r[2].timestamp() >= cutoff]
        if retry:
            with self._lock:
                self._pending_runs[:0] = retry
                del self._pending_runs[:-MAX_PENDING]
        return len(done)

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            changed = self._dirty.wait(self.config.board_refresh_s)
            if self._stop.is_set():
                break
            if changed or time.monotonic() - last >= FULL_REFRESH_S:
                self._dirty.clear()
                try:
                    self.refresh()
                    self.flush()
                except Exception:
                    log.exception("arrivals refresh failed")
                last = time.monotonic()
                self._stop.wait(self.config.board_refresh_s)


def create_service() -> ArrivalsService:
    """Factory used by `its.composition`."""
    return ArrivalsService()

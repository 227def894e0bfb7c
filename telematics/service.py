"""The arrivals service: live fleet state in memory, fed by MQTT, rebuilt from the store.

At start every agency's active feed is loaded (`telematics.gtfs.database.load_feed`), the arrival
model learns from the stored ``stop_arrivals`` of the last days and the recent stored
positions are replayed. Live positions then arrive through ``ctx.subscribe``. A refresher
thread rebuilds the published `Snapshot` (arrival boards per stop, vehicles, GTFS-rt
bytes) at most every ``board_refresh_s`` after a change and at least every 15 s, writes
the detected stop arrivals and syncs the dispatcher alerts; requests only read the
current snapshot. At each refresh the holding advice is computed from the same predictions
(`telematics.holding_live`) and each vehicle's retained advice topic follows it
(`telematics.advice`); dispatchers accept or dismiss it through `decide` (audit log in
``holding_advice_log``).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import APIRouter
from prometheus_client import Gauge
from scipy.spatial import cKDTree

from its.errors import ApiError, not_found
from its.ingest import PayloadError
from its.playbook import Action, Situation
from its.service import Context, Service
from maps.store import load_stored_network
from telematics import gtfsrt, store
from telematics.advice import ADVICE_TOPIC, AdviceBoard, Message
from telematics.advice_store import write_decision
from telematics.board import Board, StopBoardJson, build_board
from telematics.config import TelematicsSettings
from telematics.dispatch import AlertSpec
from telematics.fleet import Fleet
from telematics.gate import PositionGate, service_area
from telematics.gtfs import database as gtfs_db
from telematics.gtfs.paths import StopPathFn
from telematics.guard import CLAMPED_POSITIONS, IGNORED_POSITIONS, vehicle_failed
from telematics.holding_live import HoldAdvice, HoldingAdvisor
from telematics.ingest import (
    GTFSRT_POSITION_TOPIC,
    POSITION_TOPIC,
    PositionRow,
    as_position_row,
    parse_gtfsrt_position,
    parse_json_position,
)
from telematics.plausibility import flag_names
from telematics.road_paths import RoadStopPaths, shapeless_trips
from telematics.samples import PredictionSampler

__all__ = ["ArrivalsService", "Snapshot", "StopIndex", "create_service"]

log = logging.getLogger(__name__)
FULL_REFRESH_S = 15.0
MAX_PENDING = 100_000  # rows of each kind held while the database is unreachable
RUN_FILL_RETRY_S = 120.0  # a run is written back to its position for this long (s) after the ping
RETAINED_WINDOW_S = 10.0  # advice left retained by an earlier process is collected this long (s) after start
TRIP_PATHS = Gauge("its_telematics_trip_paths",
                   "Trips of each agency's live feed by where their path comes from (shape: shapes.txt; road: the "
                   "stored road network; road+straight: partly; straight: lines between the stops)", ["agency", "source"])


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
        self.feeds: dict[str, Any] = {}  # agency -> the static `Feed` it runs on, as imported (`/gtfs/static.zip`)
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
        self.holding = HoldingAdvisor(self.config)
        self.advice = AdviceBoard(self.config)
        self._retained_until = 0.0  # monotonic s: until then, retained advice found on the broker is collected
        self.gate = PositionGate(self.config)
        self._flagged_logged: set[tuple[str, str, str]] = set()  # (agency, vehicle, flag) logged once
        self._road_paths: RoadStopPaths | None = None  # built on the first feed with trips without a shape
        self._road_paths_read = False

    # ------------------------------------------------------------------ lifecycle

    def start(self, ctx: Context) -> None:
        """Load feeds, history and recent positions from the store, then go live.

        An agency whose history or replay fails starts without it (logged and counted in
        ``its_telematics_vehicle_failures_total`` with vehicle ``*``); a replayed position that
        fails only affects its vehicle, and the replay goes through the same plausibility gate
        as live positions (one stamped ahead of the clock, an impossible jump, a fix outside
        the service area are skipped), so no stored row can keep the service from starting.
        """
        self.ctx = ctx
        for agency in gtfs_db.agencies(ctx.read_db):
            feed = gtfs_db.load_feed(ctx.read_db, agency)
            self.add_agency(agency, feed, self._stop_paths(ctx, feed))
            now = datetime.fromtimestamp(self.clock(), UTC)
            if self.config.history_days:
                try:
                    history = store.read_stop_arrivals(ctx.read_db, agency,
                                                       now - timedelta(days=self.config.history_days),
                                                       now - timedelta(hours=6))
                    self.fleets[agency].learn_history(history)
                except Exception as exc:
                    vehicle_failed(agency, "*", "history", exc)
            if self.config.recent_positions_min:
                try:
                    recent = store.read_positions(ctx.read_db,
                                                  now - timedelta(minutes=self.config.recent_positions_min), agency)
                except Exception as exc:
                    vehicle_failed(agency, "*", "replay", exc)
                    continue
                self._apply(self.fleets[agency], list(map(PositionRow._make, recent.itertuples(index=False, name=None))))
        ctx.subscribe(POSITION_TOPIC.filter, self._on_json)
        ctx.subscribe(GTFSRT_POSITION_TOPIC.filter, self._on_gtfsrt)
        if self.config.holding_advice:  # advice an earlier process left retained: cleared unless still given
            self._retained_until = time.monotonic() + RETAINED_WINDOW_S
            ctx.subscribe(ADVICE_TOPIC.filter, self._on_retained_advice)
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
        from telematics.advice_api import build_advice_router
        from telematics.api import build_router

        router = build_router(self)
        router.include_router(build_advice_router(self))
        return router

    # ------------------------------------------------------------------ state

    def _stop_paths(self, ctx: Context, feed: Any) -> StopPathFn | None:
        """The stored road network's path builder when ``feed`` has trips without a shape
        (``road_paths`` setting; one network, ``road_network``, loaded once for every agency);
        None otherwise, or when none is stored or it cannot be read (logged: straight lines)."""
        if not self.config.road_paths or not shapeless_trips(feed):
            return None
        if not self._road_paths_read:
            self._road_paths_read = True
            try:
                network = load_stored_network(ctx.read_db, self.config.road_network)
            except Exception as exc:
                log.warning("telematics: road network %r not read (%s); trips without a shape run on "
                            "straight lines", self.config.road_network, exc)
                network = None
            self._road_paths = RoadStopPaths(network) if network is not None else None
        return self._road_paths

    def add_agency(self, agency: str, feed: Any, stop_path: StopPathFn | None = None) -> None:
        """Serve ``agency`` with ``feed`` (a `telematics.gtfs.Feed`); trips without a shape get
        ``stop_path``'s paths (`telematics.road_paths.RoadStopPaths`), else straight lines.
        Where each trip's path comes from is logged and in ``its_telematics_trip_paths``."""
        fleet = Fleet(agency, feed, self.config, stop_path)
        sources = fleet.paths.source_counts()
        for source, trips in sources.items():
            TRIP_PATHS.labels(agency, source).set(trips)
        log.info("telematics: agency %s trip paths %s", agency,
                 ", ".join(f"{n} {s}" for s, n in sources.items() if n) or "none")
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
        area = service_area(self.config, stops["stop_lat"].to_numpy(float), stops["stop_lon"].to_numpy(float))
        with self._lock:
            self.fleets[agency] = fleet
            self.feeds[agency] = feed
            self.gate.set_area(agency, area)
            self.stops.update(info)
            self.routes.update(routes)
            self.stop_index = [s for s in self.stop_index if s.agency != agency]
            self.stop_index.append(StopIndex(agency, fleet, ids, cKDTree(xy)))
        self._dirty.set()

    def observe(self, rows: Sequence[PositionRow | tuple[Any, ...]]) -> int:
        """Feed parsed position rows (`telematics.ingest.PositionRow`, or tuples in its order);
        return passings detected."""
        by_agency: dict[str, list[PositionRow]] = {}
        for row in map(as_position_row, rows):
            by_agency.setdefault(row.agency, []).append(row)
        found = 0
        with self._lock:
            for agency, agency_rows in by_agency.items():
                fleet = self.fleets.get(agency)
                if fleet is None:
                    continue
                passings = self._apply(fleet, agency_rows)
                found += len(passings)
                self._pending.extend(passings)
        self._dirty.set()
        return found

    def _apply(self, fleet: Fleet, rows: list[PositionRow]) -> list[tuple[Any, ...]]:
        """Apply the plausible ``rows`` of ``fleet``'s agency (`telematics.gate.PositionGate`);
        return the stop passings they gave.

        A position flagged ``speed``, ``area`` or ``future`` is not applied (counted in
        ``its_telematics_positions_ignored_total{reason}``, logged once per vehicle and flag); one
        stamped ahead of the clock by less than ``max_future_s`` is applied at the clock's time
        (``its_telematics_positions_clamped_total``).
        """
        try:
            verdicts = self.gate.admit(fleet.agency, rows, self.clock())
        except Exception as exc:  # the gate never fails on parsed rows; if it does, these rows are lost alone
            vehicle_failed(fleet.agency, "*", "plausibility", exc)
            return []
        passings: list[tuple[Any, ...]] = []
        for row, verdict in zip(rows, verdicts, strict=True):
            if verdict.row is None:
                self._ignored(fleet.agency, row, verdict.flags)
                continue
            if verdict.clamped:
                CLAMPED_POSITIONS.labels(fleet.agency).inc()
            passings += self._observe_row(fleet, verdict.row, row.time)
        return passings

    def _ignored(self, agency: str, row: PositionRow, flags: int) -> None:
        """Count (and log once per vehicle and flag) a position the gate did not apply."""
        for name in flag_names(flags):
            IGNORED_POSITIONS.labels(agency, name).inc()
            key = (agency, str(row.vehicle_id), name)
            if key not in self._flagged_logged:
                if len(self._flagged_logged) > MAX_PENDING:
                    self._flagged_logged.clear()
                self._flagged_logged.add(key)
                log.warning("not applying positions of vehicle %s/%s flagged %s (first at %s, %.6f, %.6f)",
                            agency, row.vehicle_id, name, row.time, row.lat, row.lon)

    def _observe_row(self, fleet: Fleet, row: PositionRow, stored_time: datetime | float) -> list[tuple[Any, ...]]:
        """`Fleet.observe` one row the gate let through; remember the run it gave a
        frequency-based trip named without one (written back to the stored position, whose
        time is ``stored_time``, by `flush`)."""
        passings = fleet.observe(row)
        try:
            self._remember_run(fleet, row, stored_time)
        except Exception as exc:
            fleet.vehicle_failed(str(row.vehicle_id), "observe", exc)
        return passings

    def _remember_run(self, fleet: Fleet, row: PositionRow, stored_time: datetime | float) -> None:
        """Keep the run the live assignment gave a frequency-based trip named without one."""
        trip_id, ts = row.trip_id, row.time
        if not isinstance(trip_id, str) or not trip_id or (isinstance(row.start_time, str) and row.start_time):
            return
        v = fleet.vehicles.get(row.vehicle_id)
        if v is None or v.trip_id is None or not isinstance(ts, datetime) or v.observed_s != ts.timestamp():
            return
        template, run = fleet.gtfsrt_trip(v.trip_id)
        if run is not None and template == trip_id:
            stored = stored_time if isinstance(stored_time, datetime) else ts
            self._pending_runs.append((fleet.agency, str(row.vehicle_id), stored, trip_id, run))
            del self._pending_runs[:-MAX_PENDING]

    def _on_json(self, topic: str, payload: bytes) -> None:
        try:
            self.observe(parse_json_position(topic, payload))
        except PayloadError as exc:
            log.debug("ignoring live position on %s: %s", topic, exc)
        except Exception:  # never let one message break the subscription
            log.exception("live position on %s not applied", topic)

    def _on_gtfsrt(self, topic: str, payload: bytes) -> None:
        try:
            self.observe(parse_gtfsrt_position(topic, payload))
        except PayloadError as exc:
            log.debug("ignoring live GTFS-rt position on %s: %s", topic, exc)
        except Exception:
            log.exception("live GTFS-rt position on %s not applied", topic)

    def refresh(self, now_s: float | None = None) -> Snapshot:
        """Rebuild and publish the snapshot at ``now_s`` (default: the clock); sync alerts."""
        now = self.clock() if now_s is None else now_s
        arrivals: dict[str, list[dict[str, Any]]] = {}
        vehicles: dict[str, dict[str, Any]] = {}
        route_vehicles: dict[str, list[str]] = {}
        snaps: list[gtfsrt.VehicleSnapshot] = []
        updates: list[gtfsrt.TripUpdate] = []
        alerts: list[AlertSpec] = []
        advice: list[HoldAdvice] = []
        with self._lock:
            self.gate.forget(now - 7200.0)  # as the fleets forget vehicles silent for 2 h
            for fleet in self.fleets.values():
                board = self._board(fleet, now)
                if board is None:
                    continue
                advice.extend(self._advise(fleet, now, board.predicted))
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
        if self.config.holding_advice:
            self._publish(self.advice.update(advice, now))
        return self.snapshot

    # ------------------------------------------------------------------ holding advice

    def _advise(self, fleet: Fleet, now_s: float, predicted: Any) -> list[HoldAdvice]:
        """``fleet``'s holding advice (none when it fails: reported, the board is unaffected)."""
        if not self.config.holding_advice:
            return []
        try:
            return self.holding.advise(fleet, now_s, predicted)
        except Exception as exc:
            vehicle_failed(fleet.agency, "*", "holding", exc)
            return []

    def _publish(self, messages: list[Message]) -> None:
        """Publish advice messages retained on the vehicles' topics (no-op without a broker)."""
        if self.ctx is None:
            return
        for topic, payload in messages:
            try:
                self.ctx.publish(topic, payload, retain=True)
            except Exception:
                log.exception("could not publish the holding advice on %s", topic)

    def _on_retained_advice(self, topic: str, payload: bytes) -> None:
        if payload and time.monotonic() < self._retained_until:
            self.advice.retained(topic)

    def decide(self, advice_id: str, action: str, user: str) -> dict[str, Any]:
        """A dispatcher's decision (``accept`` or ``dismiss``) on a current advice: written to the
        audit log, then applied (the vehicle's advice topic follows). Returns the advice as listed.

        Raises
        ------
        ApiError
            404 unknown advice, 422 unknown action, 409 the advice was superseded meanwhile
            (the decision stays logged), 503 the audit log cannot be written.
        """
        from telematics.advice import ACTIONS

        if action not in ACTIONS:
            raise ApiError(422, "invalid_parameter", f"action must be one of {sorted(ACTIONS)}")
        found = self.advice.get(advice_id)
        if found is None:
            raise not_found("holding advice", advice_id)
        if self.ctx is None:
            raise ApiError(503, "unavailable", "no database for the audit log")
        now = datetime.fromtimestamp(self.clock(), UTC)
        try:
            write_decision(self.ctx.db, found, ACTIONS[action], user, now, self.advice.issued_at(advice_id) or now.timestamp())
        except Exception as exc:
            log.exception("could not log the decision on advice %s", advice_id)
            raise ApiError(503, "unavailable", "the audit log cannot be written") from exc
        try:
            entry, messages = self.advice.decide(advice_id, action, user, now)
        except KeyError as exc:
            raise ApiError(409, "conflict", f"advice {advice_id!r} was superseded; the decision is logged") from exc
        self._publish(messages)
        return entry

    def _board(self, fleet: Fleet, now_s: float) -> Board | None:
        """``fleet``'s board at ``now_s`` with its prediction samples queued; if building it
        fails outside any one vehicle (each is guarded inside), the schedule alone."""
        try:
            fleet.evict(now_s)
            board = fleet.board(now_s)
        except Exception as exc:
            vehicle_failed(fleet.agency, "*", "board", exc)
            try:
                board = build_board(fleet, now_s, live=False)
            except Exception as again:
                vehicle_failed(fleet.agency, "*", "board", again)
                return None
        samples = self.sampler.sample(fleet, now_s, board.predicted)
        self._pending_predictions.extend(samples)
        del self._pending_predictions[:-MAX_PENDING]
        return board

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


    def recommend(self, situation: Situation) -> list[Action]:
        """Holding actions on the routes the situation affects (`telematics.playbook.headway_actions`)."""
        from telematics.playbook import headway_actions

        return headway_actions(self, situation)

    def carry_out(self, action: Action, actor: str) -> list[str]:
        """A headway action applied by ``actor``: each of its holds still advised is accepted in
        their name (audit log and the vehicle's advice topic, as `decide`); superseded ones are skipped."""
        if action.kind != "headway":
            return []
        done: list[str] = []
        for hold in action.details.get("holds", []):
            try:
                got = self.decide(str(hold["advice_id"]), "accept", actor)
            except ApiError:
                continue  # superseded or gone since the playbook was computed
            done.append(f"accepted hold {got['advice_id']}: {got['vehicle_id']} {round(got['hold_s'])} s at {got['stop_id']}")
        return done


def create_service() -> ArrivalsService:
    """Factory used by `its.app.registry`."""
    return ArrivalsService()

"""Live congestion state: the estimator fed by probes and camera flows, routing, incidents.

At start the service loads the road network (``ITS_TRAFFIC_NETWORK`` or the first stored),
builds the line-graph estimator, the router and the probe matcher once, takes the
historical profile from stored probe speeds, replays the last hour of probe speeds and
camera counts and the last week of network travel time index samples, then subscribes to
vehicle positions and camera counts. Every ``update_interval_s`` it map-matches the
positions received since the last update, stores the new probe speeds, updates the
estimate, swaps the router's weights (no graph rebuild), raises/clears incident alerts and
stores the travel time index samples (network every update, areas and corridors every
``tti_group_sample_s``) in one batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
from fastapi import APIRouter

from its import metrics
from its.db import Database
from its.ingest import PayloadError
from its.playbook import Action, Situation
from its.service import Context, Service
from maps.network import RoadNetwork
from maps.routing import Route, Router
from maps.spatial import EdgeSnapper
from telematics.ingest import (
    GTFSRT_POSITION_TOPIC,
    POSITION_TOPIC,
    PositionRow,
    parse_gtfsrt_position,
    parse_json_position,
)
from traffic.config import TrafficSettings
from traffic.congestion import CongestionEstimator, CongestionState
from traffic.edge_graph import line_graph_similarity
from traffic.flows import CameraLinks, flow_observations
from traffic.indices import (
    GroupIndex,
    Incident,
    area_ids,
    corridor_ids,
    incident_candidates,
    travel_time_index,
)
from traffic.ingest import (
    INCIDENTS_TOPIC,
    CountMessage,
    PositionMessage,
    count_message,
    position_message,
)
from traffic.probes import Pings, ProbeMatcher, ProbeObservations, Traversals, aggregate_traversals
from traffic.tti_history import TtiSeries
from video.ingest import COUNTS_TOPIC, parse_counts

__all__ = ["TrafficService", "create_service"]

log = logging.getLogger(__name__)
ALERT_KIND = "traffic_incident"
AREA_CELL_M = 1000.0  # side (m) of the square areas of the area travel time index
TTI_HISTORY_MAX_H = 168  # hours of network TTI samples kept in memory (the history route's longest window)


@dataclass(frozen=True)
class _Snapshot:
    state: CongestionState
    incidents: list[Incident]
    updated_at: float
    network_tti: float
    areas: GroupIndex
    corridors: GroupIndex


class TrafficService(Service):
    """In-memory congestion estimate answering ``/v1/traffic/...``."""

    name = "traffic"

    def __init__(self, settings: TrafficSettings | None = None, network: RoadNetwork | None = None) -> None:
        self.settings = settings or TrafficSettings()
        self.network: RoadNetwork | None = None
        self.estimator: CongestionEstimator | None = None
        self.router_: Router | None = None
        self.matcher: ProbeMatcher | None = None
        self.corridor_index: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros(0, str))
        self.area_index: np.ndarray = np.zeros(0, np.int64)
        self.links = CameraLinks(np.zeros(0, str), np.zeros(0, str), np.zeros(0, str), np.zeros(0, np.int64))
        self.snapshot: _Snapshot | None = None
        self.ctx: Context | None = None
        self._pings: list[PositionMessage] = []
        self._last_ping: dict[str, PositionMessage] = {}
        self._counts: list[CountMessage] = []
        self._pending: list[Traversals] = []
        self._lock = threading.Lock()
        self._route_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = False
        self._alerted: set[str] = set()
        self.tti_history = TtiSeries(TTI_HISTORY_MAX_H * 3600.0)
        self._last_group_sample = -np.inf
        if network is not None:
            self.use_network(network)

    # ------------------------------------------------------------------ setup
    def use_network(self, network: RoadNetwork) -> None:
        """Build the per-network machinery once (estimator, router, matcher)."""
        self.network = network
        snapper = EdgeSnapper(network)
        self.estimator = CongestionEstimator(line_graph_similarity(network, self.settings), network.freeflow_mps,
                                             length_m=network.length_m, settings=self.settings)
        self.router_ = Router(network, snapper=snapper)
        self.matcher = ProbeMatcher(network, self.settings, snapper=snapper)
        self.corridor_index = corridor_ids(network)
        self.area_index = area_ids(network, AREA_CELL_M)

    def start(self, ctx: Context) -> None:
        from maps.store import NetworkNotFoundError, load_stored_network
        from traffic.store import (
            load_camera_links,
            load_probe_observations,
            load_profile,
            load_tti_samples,
            recent_counts,
        )

        self.ctx = ctx
        s = self.settings
        if self.network is None:
            try:
                network = load_stored_network(ctx.read_db, s.network)
                if network is not None:
                    self.use_network(network)
            except NetworkNotFoundError:
                log.warning("traffic: road network %r not stored; congestion disabled", s.network)
        if self.network is not None and self.estimator is not None:
            now = datetime.now(UTC)
            self.estimator.profile = load_profile(ctx.read_db, self.network.name, self.network.n_edges,
                                                  now - timedelta(days=s.history_days), s.profile_slot_s)
            recent = load_probe_observations(ctx.read_db, self.network.name, now - timedelta(seconds=s.max_age_s))
            self.add_probe_observations(recent)
            self.links = load_camera_links(ctx.read_db, self.network.name)
            counts = recent_counts(ctx.read_db, now - timedelta(seconds=s.max_age_s))
            self._add_flows(counts.camera_id, counts.line_id, counts.direction, counts.interval_start_s,
                            counts.interval_s, counts.count, counts.mean_speed_mps)
            self.tti_history.extend(*load_tti_samples(ctx.read_db, self.network.name, "network", "",
                                                      now - timedelta(hours=TTI_HISTORY_MAX_H)))
            self.step(persist=False)
        ctx.subscribe(POSITION_TOPIC.filter, self.on_position)
        ctx.subscribe(GTFSRT_POSITION_TOPIC.filter, self.on_gtfsrt_position)
        ctx.subscribe(COUNTS_TOPIC.filter, self.on_counts)
        self._thread = threading.Thread(target=self._loop, name="traffic-update", daemon=True)
        self._thread.start()
        self._ready = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.network is not None and self._pending:
            try:
                self.step(flush=True)
            except Exception:
                log.exception("traffic: final flush failed")

    def ready(self) -> bool:
        return self._ready

    def router(self) -> APIRouter:
        from traffic.api import build_router

        return build_router(self)

    # ------------------------------------------------------------------ live input
    def on_position(self, topic: str, payload: bytes) -> None:
        """MQTT callback: queue a vehicle position (JSON) for the next update."""
        self._queue_positions(topic, payload, parse_json_position)

    def on_gtfsrt_position(self, topic: str, payload: bytes) -> None:
        """MQTT callback: queue the positions of a GTFS-realtime message for the next update."""
        self._queue_positions(topic, payload, parse_gtfsrt_position)

    def _queue_positions(self, topic: str, payload: bytes,
                         parse: Callable[[str, bytes], list[PositionRow]]) -> None:
        try:
            msgs = [position_message(row) for row in parse(topic, payload)]
        except PayloadError as exc:
            log.debug("traffic: ignoring position on %s: %s", topic, exc)
            return
        with self._lock:
            self._pings.extend(msgs)

    def on_counts(self, topic: str, payload: bytes) -> None:
        """MQTT callback: queue a camera count interval for the next update."""
        try:
            (row,) = parse_counts(topic, payload)
            msg = count_message(row)
        except PayloadError as exc:
            log.debug("traffic: ignoring counts on %s: %s", topic, exc)
            return
        with self._lock:
            self._counts.append(msg)

    def add_probe_observations(self, obs: ProbeObservations) -> None:
        if self.estimator is not None and len(obs):
            self.estimator.observe(obs.edge, obs.time_s + obs.bin_s / 2, obs.speed_mps,
                                   weight=obs.samples, source="probe")

    def _add_flows(self, camera_id: np.ndarray, line_id: np.ndarray, direction: np.ndarray, start_s: np.ndarray,
                   interval_s: np.ndarray, count: np.ndarray, speed_mps: np.ndarray) -> None:
        if self.network is None or self.estimator is None or not len(camera_id):
            return
        edge = self.links.lookup(camera_id, line_id, direction)
        flows = flow_observations(self.network, edge, start_s, interval_s, count, speed_mps, self.settings)
        self.estimator.observe(flows.edge, flows.time_s, flows.speed_mps, weight=self.settings.flow_weight,
                               source="flow")

    def _drain(self) -> tuple[list[PositionMessage], list[CountMessage]]:
        with self._lock:
            pings, counts = self._pings, self._counts
            self._pings, self._counts = [], []
        return pings, counts

    def _match_pings(self, pings: list[PositionMessage]) -> Traversals | None:
        if self.matcher is None or not pings:
            return None
        vehicles = {p.vehicle for p in pings}
        allp = [self._last_ping[v] for v in vehicles if v in self._last_ping] + pings
        for p in pings:
            last = self._last_ping.get(p.vehicle)
            if last is None or p.time_s >= last.time_s:
                self._last_ping[p.vehicle] = p
        arr = Pings(np.array([p.vehicle for p in allp]), np.array([p.time_s for p in allp]),
                    np.array([p.lon for p in allp]), np.array([p.lat for p in allp]),
                    np.array([p.heading_deg for p in allp]))
        return self.matcher.traversals(arr, self.matcher.match(arr))

    def _complete_bins(self, trav: Traversals | None, now: float, flush: bool = False) -> ProbeObservations | None:
        """Add new traversals to the pending ones; return the bins that can no longer change.

        A bin is complete once its end is more than ``probe_max_gap_s`` ago (no later ping
        can add to it), so each stored row holds the whole bin.
        """
        if trav is not None and len(trav.edge):
            self._pending.append(trav)
        if not self._pending:
            return None
        allt = Traversals(*(np.concatenate([getattr(t, f) for t in self._pending])
                            for f in ("edge", "time_s", "covered_m", "travel_s", "interval")))
        bin_s = self.settings.probe_bin_s
        bin_end = (np.floor(allt.time_s / bin_s) + 1) * bin_s
        done = np.ones(len(allt.edge), bool) if flush else bin_end <= now - self.settings.probe_max_gap_s
        keep = ~done
        self._pending = [Traversals(allt.edge[keep], allt.time_s[keep], allt.covered_m[keep],
                                    allt.travel_s[keep], allt.interval[keep])] if keep.any() else []
        if not done.any():
            return None
        return aggregate_traversals(Traversals(allt.edge[done], allt.time_s[done], allt.covered_m[done],
                                               allt.travel_s[done], allt.interval[done]), bin_s)

    # ------------------------------------------------------------------ update
    def step(self, now: float | None = None, persist: bool = True, flush: bool = False) -> _Snapshot | None:
        """Fold queued evidence in and recompute the estimate, weights and incidents.

        New probe traversals feed the estimate at once; their per-edge bins are stored
        when complete (``flush`` stores the incomplete ones too, e.g. at shutdown).
        """
        if self.network is None or self.estimator is None or self.router_ is None:
            return None
        now = time.time() if now is None else now
        pings, counts = self._drain()
        trav = self._match_pings(pings)
        if trav is not None and len(trav.edge):
            self.add_probe_observations(aggregate_traversals(trav, self.settings.probe_bin_s))
        complete = self._complete_bins(trav, now, flush=flush)
        if complete is not None and len(complete) and persist and self.ctx is not None:
            from traffic.store import write_probe_observations

            try:
                write_probe_observations(self.ctx.db, self.network.name, complete)
            except Exception as exc:  # the estimate goes on without the database
                log.warning("traffic: could not store probe speeds: %s", exc)
        if counts:
            self._add_flows(np.array([c.camera_id for c in counts]), np.array([c.line_id for c in counts]),
                            np.array([c.direction for c in counts]), np.array([c.interval_start_s for c in counts]),
                            np.array([c.interval_s for c in counts]), np.array([c.count for c in counts]),
                            np.array([c.mean_speed_mps for c in counts]))
        state = self.estimator.update(now)
        with self._route_lock:
            self.router_.set_weights(state.travel_time_s)
        incidents = incident_candidates(self.network, state, self.settings, self.corridor_index)
        length = self.network.length_m
        network_tti = float((length / state.speed_mps).sum() / max((length / state.freeflow_mps).sum(), 1e-9))
        snap = _Snapshot(state, incidents, now, network_tti, travel_time_index(state, length, self.area_index),
                         travel_time_index(state, length, self.corridor_index[0]))
        self.snapshot = snap
        self._publish_alerts(incidents)
        self._record_tti(snap, persist)
        return snap

    def _record_tti(self, snap: _Snapshot, persist: bool) -> None:
        """Keep the network TTI in memory; store it (and every area's and corridor's, when due) in one batch."""
        self.tti_history.append(snap.updated_at, snap.network_tti)
        if not persist or self.ctx is None or self.network is None:
            return
        from traffic.store import write_tti_samples

        scope, subject, tti = ["network"], [""], [snap.network_tti]
        if snap.updated_at - self._last_group_sample >= self.settings.tti_group_sample_s:
            names = self.corridor_index[1]
            scope += ["area"] * len(snap.areas.group) + ["corridor"] * len(snap.corridors.group)
            subject += snap.areas.group.astype(str).tolist() + names[snap.corridors.group].astype(str).tolist()
            tti += snap.areas.tti.tolist() + snap.corridors.tti.tolist()
        try:
            write_tti_samples(self.ctx.db, self.network.name, snap.updated_at, scope, subject, tti)
        except Exception as exc:  # the estimate goes on without the database
            log.warning("traffic: could not store travel time index samples: %s", exc)
            return
        if len(scope) > 1:
            self._last_group_sample = snap.updated_at

    def _publish_alerts(self, incidents: list[Incident]) -> None:
        if self.ctx is None:
            return
        worst = sorted(incidents, key=lambda i: (i.kind != "corridor", i.ratio))[:self.settings.incident_max_alerts]
        current = {i.subject: i for i in worst}
        for subject, inc in current.items():
            self.ctx.alerts.raise_alert(
                ALERT_KIND, subject,
                f"{inc.kind} {subject}: {inc.speed_mps * 3.6:.0f} km/h, usually {inc.usual_mps * 3.6:.0f} km/h",
                severity="critical" if inc.ratio < 0.25 else "warning", lat=inc.lat, lon=inc.lon)
        for subject in self._alerted - set(current):
            self.ctx.alerts.clear(ALERT_KIND, subject)
        self._alerted = set(current)
        if current:
            self.ctx.publish(INCIDENTS_TOPIC.filter, orjson.dumps(
                [{"subject": i.subject, "kind": i.kind, "ratio": round(i.ratio, 3)} for i in incidents]), retain=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.update_interval_s):
            try:
                with metrics.ESTIMATOR_SECONDS.labels("traffic").time():
                    self.step()
            except Exception:
                log.exception("traffic: update failed")

    # ------------------------------------------------------------------ queries
    def read_db(self) -> Database:
        """The database reads go to (the replica when configured); RuntimeError before start."""
        if self.ctx is None:
            raise RuntimeError("traffic service not started")
        return self.ctx.read_db

    def route(self, origin_lonlat: tuple[float, float], dest_lonlat: tuple[float, float]) -> Route:
        """Congestion-aware fastest route (weights of the last update)."""
        if self.router_ is None:
            raise RuntimeError("no road network")
        with self._route_lock:
            return self.router_.route(origin_lonlat, dest_lonlat)


    # ------------------------------------------------------------------ playbook (its.playbook)
    def situation(self, now_s: float, peak_tti: float) -> Situation | None:
        """The network's operating mode now (`traffic.playbook.live_situation`)."""
        from traffic.playbook import live_situation

        return live_situation(self, now_s, peak_tti)

    def recommend(self, situation: Situation) -> list[Action]:
        """Detours around the active edge incidents (`traffic.playbook.detours`)."""
        from traffic.playbook import detours

        return detours(self, situation)


def create_service() -> TrafficService:
    """The service instance the platform's composition root starts."""
    return TrafficService()

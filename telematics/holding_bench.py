"""``its bench holding``: the live holding advice for a large fleet on real GTFS routes, per update.

A real feed (default: the shared WMATA feed cut to its recorded day) is made large enough
for the fleet size asked: every route is copied ``copies`` times with its day's trips, each
copy ``COPY_OFFSET_S`` later than the previous (ids ``route~k``, ``trip~k``; blocks dropped,
so each trip is its own vehicle duty): the real paths, stops, timepoints and headways, on
``copies`` times as many routes. `telematics.simulator.FleetSimulation` drives the buses along the
real paths with random delays and dwells; at the moment of the day with the most buses on
the road, the first ``vehicles`` of them are fed to a `telematics.fleet.Fleet` for
``warmup_s`` (a ping every ``interval_s``), as the live service receives them. Then, per
update (a ping of every bus, then the board's predictions, as ``ArrivalsService.refresh``
does), `telematics.holding_live.HoldingAdvisor.advise` is timed: the time the live service
adds to each refresh for the advice (the target: under 100 ms for 500 buses).
"""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import date
from typing import Any

import numpy as np
import orjson
import pandas as pd

from telematics.config import TelematicsSettings
from telematics.fleet import Fleet
from telematics.gtfs import Feed, service_ids_on
from telematics.holding_live import HoldingAdvisor
from telematics.ingest import parse_json_position
from telematics.simulator import FleetSimulation

__all__ = ["COPY_OFFSET_S", "dense_feed", "run_holding_bench"]

#: Each copy of a trip departs this much (s) after the previous copy.
COPY_OFFSET_S = 97.0


def dense_feed(feed: Feed, day: date, copies: int, offset_s: float = COPY_OFFSET_S) -> Feed:
    """``feed`` with every route and its trips running on ``day`` copied ``copies`` times: copy
    ``k`` is route ``route~k`` with trips ``trip~k`` shifted by ``k * offset_s`` (s), so each
    copy keeps the real route's path, stops, timepoints and headways; trips of other days are
    dropped."""
    running = service_ids_on(feed, day)
    trips = feed.trips[feed.trips["service_id"].isin(list(running))]
    st = feed.stop_times[feed.stop_times["trip_id"].isin(trips["trip_id"])]
    all_routes, all_trips, all_st = [], [], []
    for k in range(copies):
        r = feed.routes.copy()
        r["route_id"] = r["route_id"] + f"~{k}"
        t = trips.copy()
        t["trip_id"] = t["trip_id"] + f"~{k}"
        t["route_id"] = t["route_id"] + f"~{k}"
        if "block_id" in t.columns:
            t["block_id"] = ""
        s = st.copy()
        s["trip_id"] = s["trip_id"] + f"~{k}"
        shift = round(k * offset_s)
        s["arrival_time"] = s["arrival_time"] + shift
        s["departure_time"] = s["departure_time"] + shift
        all_routes.append(r)
        all_trips.append(t)
        all_st.append(s)
    stop_times = pd.concat(all_st, ignore_index=True).sort_values(["trip_id", "stop_sequence"], kind="stable")
    return dataclasses.replace(feed, routes=pd.concat(all_routes, ignore_index=True),
                               trips=pd.concat(all_trips, ignore_index=True),
                               stop_times=stop_times.reset_index(drop=True))


def _busiest(sim: FleetSimulation, step_s: float = 300.0) -> tuple[float, int]:
    """The moment of the simulated day with the most buses on the road, and how many."""
    t0, t1 = float(sim._t_start.min()), float(sim._t_end.max())
    best = (t0, 0)
    for t in np.arange(t0, t1, step_s):
        n = int(((sim._t_start <= t) & (sim._t_end >= t)).sum())
        if n > best[1]:
            best = (float(t), n)
    return best


def _feed_pings(fleet: Fleet, sim: FleetSimulation, t: float, keep: set[str], agency: str) -> int:
    n = 0
    for vehicle, payload in sim.positions(t):
        if vehicle in keep:
            for row in parse_json_position(f"its/v1/vehicles/{agency}/{vehicle}/position", orjson.dumps(payload)):
                fleet.observe(row)
                n += 1
    return n


def run_holding_bench(feed: Feed, day: date, *, vehicles: int = 500, updates: int = 30, interval_s: float = 10.0,
                      warmup_s: float = 600.0, seed: int = 0, agency: str = "bench") -> dict[str, Any]:
    """Time the live holding advice of a ``vehicles``-bus fleet over ``updates`` updates.

    Returns
    -------
    dict
        ``vehicles`` (fresh buses with a trip), ``copies``, ``routes``, ``predictions`` and
        ``control_predictions`` (per update, median), ``advice`` (median per update),
        ``advise_ms`` (wall clock, median), ``advise_p95_ms``, ``advise_max_ms``,
        ``advise_cpu_ms`` and ``advise_cpu_p95_ms`` (CPU time of the process: what the
        advice costs when other processes share the cores), ``first_update_ms`` (includes
        the once-per-fleet control stops), ``board_ms`` (the predictions the advice starts
        from, median; context, not part of the advice) and ``updates``. The first update
        is excluded from the medians and percentiles.
    """
    base = FleetSimulation(feed, day, seed=seed)
    _t, base_n = _busiest(base)
    copies = max(1, math.ceil(1.6 * vehicles / max(base_n, 1)))
    dense = dense_feed(feed, day, copies)
    sim = FleetSimulation(dense, day, seed=seed)
    t_star, _on_road = _busiest(sim)
    # buses on the road from before the warm-up to after the last update
    whole = [sim.runs[i].vehicle_id for i in sim.active(t_star).tolist()
             if sim.runs[i].t_knots[0] <= t_star - warmup_s and sim.runs[i].t_knots[-1] >= t_star + updates * interval_s]
    if len(whole) < vehicles:
        raise ValueError(f"only {len(whole)} buses on the road throughout at the busiest moment "
                         f"({copies} copies of the feed's routes)")
    keep = set(whole[:vehicles])
    config = TelematicsSettings(history_days=0, recent_positions_min=0)
    fleet = Fleet(agency, dense, config)
    for t in np.arange(t_star - warmup_s, t_star, interval_s):
        _feed_pings(fleet, sim, float(t), keep, agency)
    advisor = HoldingAdvisor(config)
    advise_ms, advise_cpu_ms, board_ms, predictions, at_control, advice = [], [], [], [], [], []
    for k in range(updates):
        now = t_star + k * interval_s
        _feed_pings(fleet, sim, now, keep, agency)
        t0 = time.perf_counter()
        board = fleet.board(now)
        t1, c1 = time.perf_counter(), time.process_time()
        given = advisor.advise(fleet, now, board.predicted)
        t2, c2 = time.perf_counter(), time.process_time()
        advise_cpu_ms.append((c2 - c1) * 1000.0)
        board_ms.append((t1 - t0) * 1000.0)
        advise_ms.append((t2 - t1) * 1000.0)
        predictions.append(len(board.predicted))
        mask = advisor.control_stops(fleet).mask
        at_control.append(int(sum(bool(mask[key[2]]) for key in board.predicted)))
        advice.append(len(given))
    wall, cpu = advise_ms[1:] or advise_ms, advise_cpu_ms[1:] or advise_cpu_ms
    fresh = sum(1 for v in fleet.vehicles.values() if v.trip_id is not None
                and t_star + (updates - 1) * interval_s - v.observed_s <= config.stale_after_s)
    return {
        "feed_trips": len(dense.trips), "copies": copies, "routes": int(dense.trips["route_id"].nunique()),
        "vehicles": fresh, "updates": updates, "interval_s": interval_s,
        "predictions": int(np.median(predictions)), "control_predictions": int(np.median(at_control)),
        "advice": int(np.median(advice)),
        "advise_ms": round(float(np.median(wall)), 2),
        "advise_p95_ms": round(float(np.percentile(wall, 95)), 2),
        "advise_max_ms": round(float(np.max(wall)), 2),
        "advise_cpu_ms": round(float(np.median(cpu)), 2),
        "advise_cpu_p95_ms": round(float(np.percentile(cpu, 95)), 2),
        "board_ms": round(float(np.median(board_ms)), 1),
        "first_update_ms": round(advise_ms[0], 2),
    }

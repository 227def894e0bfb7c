"""``its eval holding``: simulate a day without control and with each holding strategy, score per route.

`load_scenario` builds the days (`telematics.holding_days`: the recorded AVL day, or draws
around a timetable) and their passenger arrivals; `run_scenario` simulates each strategy
(`telematics.holding_sim`) and reports per route and over the frequent routes;
`evaluate_holding` is the command's library function; `select_parameters` (largest
excess-wait cut under an in-vehicle limit) and `select_gain` (least generalised passenger
time over several tuning scenarios, how the default gain was chosen) search the rule's
parameters on tuning routes, held out from the report.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.avl import plausible_positions, read_avl
from telematics.gtfs import Feed, busiest_day, read_feed
from telematics.holding import (
    DEFAULT_CAP_SHARE,
    DEFAULT_GAIN,
    DEFAULT_ORIGIN_CAP_SHARE,
    FREQUENT_HEADWAY_S,
    RouteParams,
)
from telematics.holding_days import (
    CONTROL_SPACING_S,
    RunningTimeModel,
    has_timepoints,
    recorded_day,
    synthetic_day,
)
from telematics.holding_sim import (
    STRATEGIES,
    PassengerArrivals,
    SimDay,
    recorded_cv,
    score,
    simulate,
)
from telematics.kpi import headway_regularity

__all__ = ["WAIT_WEIGHT", "Scenario", "evaluate_holding", "gain_table", "load_scenario", "run_scenario",
           "select_gain", "select_parameters"]

FloatArray = npt.NDArray[np.float64]
#: Weight of a minute of waiting against a minute aboard in the passengers' generalised time
#: (UK WebTAG, unit M3-2: out-of-vehicle time, walking and waiting, counts twice).
WAIT_WEIGHT = 2.0


@dataclass(frozen=True)
class Scenario:
    """Simulated days (one per run: the recorded day, or draws around the schedule) with the
    passenger arrivals of each, the routes' labels and scheduled headways (s), the service
    date, whether it is a recording and whether the feed marks timepoints."""

    days: list[SimDay]
    passengers: list[PassengerArrivals]
    route_ids: list[str]
    route_headway_s: FloatArray
    service_date: dt.date
    recorded: bool
    timepoints: bool


def load_scenario(gtfs: str | Path | Feed, avl: str | Path | None = None, *, day: dt.date | None = None,
                  runs: int = 3, seed: int = 0, pax_per_stop_h: float = 5.0, board_s: float = 3.0,
                  dead_s: float = 5.0, routes: Sequence[str] | None = None,
                  model: RunningTimeModel = RunningTimeModel()) -> Scenario:
    """The days `evaluate_holding` simulates (see there for the parameters)."""
    feed = gtfs if isinstance(gtfs, Feed) else read_feed(gtfs)
    rng = np.random.default_rng(seed)
    rate = pax_per_stop_h / 3600.0
    if avl is not None:
        one, route_ids, route_h, service_date = recorded_day(feed, plausible_positions(read_avl(avl), feed).avl, rate_per_s=rate, board_s=board_s,
                                                             dead_s=dead_s, routes=routes)
        days = [one] * runs
    else:
        service_date = day or busiest_day(feed)
        days = []
        for _ in range(runs):
            one, route_ids, route_h = synthetic_day(feed, service_date, rng, rate_per_s=rate, board_s=board_s,
                                                    dead_s=dead_s, model=model, routes=routes)
            days.append(one)
    pax = []
    for d in days:
        t0 = min(float(np.nanmin(d.sched_s)), float(d.start_s.min())) - 7200.0
        pax.append(PassengerArrivals.draw(int(d.stop_key.max()) + 1, rate, t0, float(np.nanmax(d.sched_s)) + 7200.0,
                                          rng))
    return Scenario(days, pax, route_ids, route_h, service_date, avl is not None, has_timepoints(feed))


def run_scenario(sc: Scenario, params: RouteParams, *, board_s: float = 3.0, dead_s: float = 5.0
                 ) -> dict[str, Any]:
    """Simulate every day of ``sc`` under each strategy; ``overall`` and ``routes`` of
    `evaluate_holding` (means over the days)."""
    frequent = np.flatnonzero(params.frequent)
    scope = frequent if len(frequent) else np.arange(len(sc.route_ids))
    scored: dict[str, list[pd.DataFrame]] = {s: [] for s in STRATEGIES}
    pooled: dict[str, list[tuple[float, float, float, float]]] = {s: [] for s in STRATEGIES}
    rep_routes: list[pd.Series] = []
    rep_pooled: list[float] = []
    for d, pax in zip(sc.days, sc.passengers, strict=True):
        for s in STRATEGIES:
            res = simulate(d, s, params, pax, board_s=board_s, dead_s=dead_s)
            frame = score(d, res, params)
            scored[s].append(frame)
            passing = np.where(d.last_row, res.arrival_s, res.departure_s)
            day_ewt, day_cv = _pooled(d, scope, passing)
            mine = frame[frame.index.isin(scope)]
            pooled[s].append((day_ewt, day_cv, float((mine["ivt_s"] * mine["passengers"]).sum()),
                              float(mine["passengers"].sum())))
            if s == "none" and sc.recorded:
                rep_routes.append(recorded_cv(d, passing))
                rep_pooled.append(_pooled(d, scope, passing, np.isfinite(d.recorded_s))[1])
    recorded = recorded_cv(sc.days[0], sc.days[0].recorded_s) if sc.recorded else None
    p = {s: np.asarray(v, dtype=np.float64) for s, v in pooled.items()}
    ivt_mean = {s: float(p[s][:, 2].sum() / max(p[s][:, 3].sum(), 1.0)) for s in STRATEGIES}
    ewt = {s: float(np.nanmean(p[s][:, 0])) for s in STRATEGIES}
    overall: dict[str, Any] = {
        "scope": "frequent" if len(frequent) else "all",
        "routes": [sc.route_ids[c] for c in scope],
        "ewt_s": {s: _r(ewt[s]) for s in STRATEGIES},
        "headway_cv": {s: _r(np.nanmean(p[s][:, 1]), 4) for s in STRATEGIES},
        "ewt_cut_pct": {s: _pct(ewt[s], ewt["none"]) for s in STRATEGIES[1:]},
        "in_vehicle_added_pct": {s: _r(100.0 * (ivt_mean[s] / ivt_mean["none"] - 1.0), 2) for s in STRATEGIES},
        "recorded_headway_cv": None, "reproduction_cv_error_pct": None,
    }
    if sc.recorded:
        rec_cv = _pooled(sc.days[0], scope, sc.days[0].recorded_s, np.isfinite(sc.days[0].recorded_s))[1]
        overall["recorded_headway_cv"] = _r(rec_cv, 4)
        overall["reproduction_cv_error_pct"] = _r(100.0 * abs(float(np.mean(rep_pooled)) / rec_cv - 1.0), 2)
    return {"overall": overall, "routes": _per_route(scored, params, sc.route_ids, recorded, rep_routes)}


def _per_route(scored: dict[str, list[pd.DataFrame]], params: RouteParams, route_ids: list[str],
               recorded: pd.Series | None, reproduced: list[pd.Series]) -> dict[str, Any]:
    """Per-route means over the days, keyed by route id."""
    mean = {s: pd.concat(frames).groupby(level=0).mean() for s, frames in scored.items()}
    rep = pd.concat(reproduced).groupby(level=0).mean() if reproduced else None
    out: dict[str, Any] = {}
    for code, rid in enumerate(route_ids):
        if code not in mean["none"].index:
            continue
        row = {s: mean[s].loc[code] for s in STRATEGIES}
        ivt0 = float(mean["none"]["ivt_s"].to_numpy()[mean["none"].index.get_loc(code)])
        entry: dict[str, Any] = {
            "frequent": bool(params.frequent[code]), "scheduled_headway_s": _r(params.headway_s[code]),
            "ewt_s": {s: _r(row[s]["ewt_s"]) for s in STRATEGIES},
            "headway_cv": {s: _r(row[s]["headway_cv"], 4) for s in STRATEGIES},
            "ewt_cut_pct": {s: _pct(row[s]["ewt_s"], row["none"]["ewt_s"]) for s in STRATEGIES[1:]},
            "in_vehicle_s": {s: _r(row[s]["ivt_s"]) for s in STRATEGIES},
            "in_vehicle_added_pct": {s: _r(100.0 * (row[s]["ivt_s"] / ivt0 - 1.0), 2) if ivt0 else None
                                     for s in STRATEGIES},
            "bunching": {s: _r(row[s]["bunching"], 1) for s in STRATEGIES},
            "holds": {s: _r(row[s]["holds"], 1) for s in STRATEGIES},
            "hold_s": {s: _r(row[s]["hold_s"]) for s in STRATEGIES},
            "recorded_headway_cv": None, "reproduction_cv_error_pct": None,
        }
        if recorded is not None and rep is not None and code in recorded.index:
            entry["recorded_headway_cv"] = _r(recorded[code], 4)
            entry["reproduction_cv_error_pct"] = _r(100.0 * abs(rep[code] / recorded[code] - 1.0), 2)
        out[rid] = entry
    return out


def _r(x: Any, nd: int = 1) -> float | None:
    return None if x is None or not np.isfinite(float(x)) else round(float(x), nd)


def _pct(x: Any, ref: Any) -> float | None:
    """Cut (%) of ``x`` against ``ref``."""
    ok = np.isfinite(float(x)) and np.isfinite(float(ref)) and float(ref) != 0.0
    return round(100.0 * (1.0 - float(x) / float(ref)), 1) if ok else None


def _pooled(day: SimDay, codes: npt.NDArray[np.int64], passing: FloatArray,
            rows: npt.NDArray[np.bool_] | None = None) -> tuple[float, float]:
    """EWT (s) and headway CV of the routes ``codes`` pooled as one route by
    `telematics.kpi.headway_regularity` (stops weighted by their scheduled headways)."""
    keep = np.isin(day.row_route, codes) & np.isfinite(passing)
    if rows is not None:
        keep &= rows
    actual = pd.DataFrame({"route_id": 0, "stop_id": day.stop_key[keep], "time_s": passing[keep]})
    timetable = pd.DataFrame({"route_id": 0, "stop_id": day.stop_key[keep], "time_s": day.sched_s[keep]})
    hw = headway_regularity(actual, timetable, frequent_headway_s=np.inf)
    if hw.empty:
        return float("nan"), float("nan")
    return float(hw["ewt_s"].iloc[0]), float(hw["headway_cv"].iloc[0])


def evaluate_holding(gtfs: str | Path | Feed, avl: str | Path | None = None, *, day: dt.date | None = None,
                     runs: int = 3, seed: int = 0, pax_per_stop_h: float = 5.0, board_s: float = 3.0,
                     dead_s: float = 5.0, gain: float = DEFAULT_GAIN, cap_share: float = DEFAULT_CAP_SHARE,
                     origin_cap_share: float = DEFAULT_ORIGIN_CAP_SHARE,
                     frequent_headway_s: float = FREQUENT_HEADWAY_S, routes: Sequence[str] | None = None,
                     model: RunningTimeModel = RunningTimeModel()) -> dict[str, Any]:
    """Simulate a day without control and with each holding strategy; score per route.

    Parameters
    ----------
    gtfs : path or Feed
        The schedule.
    avl : path, optional
        AVL CSV of the day to replay; without it the timetable of ``day`` (default: the
        busiest day of the feed's first week) is run with ``model``.
    runs : int
        Independent draws of the passengers (and of running times without AVL), averaged.
    seed : int
        Random seed.
    pax_per_stop_h : float
        Passenger arrival rate at every stop (passengers/h).
    board_s, dead_s : float
        Boarding time per passenger and dead time per served stop (s).
    gain, cap_share, origin_cap_share : float
        Headway rule: gain, cap of a hold (share of the route's scheduled headway) and cap
        at a trip's first stop (share).
    frequent_headway_s : float
        Routes with a mean scheduled headway at most this (s) are headway-managed.
    routes : sequence of str, optional
        Restrict to these routes.
    model : RunningTimeModel
        Running times without AVL.

    Returns
    -------
    dict
        ``parameters`` (everything the result depends on), ``overall`` over the frequent
        routes (all routes when none is): ``ewt_s``, ``headway_cv``, ``ewt_cut_pct``,
        ``in_vehicle_added_pct`` by strategy, ``recorded_headway_cv`` and
        ``reproduction_cv_error_pct`` (uncontrolled simulation against the recording, on
        the recorded rows; None without AVL); ``routes``: the same per route id with
        ``bunching``, ``holds``, ``hold_s`` and ``in_vehicle_s`` by strategy.
    """
    sc = load_scenario(gtfs, avl, day=day, runs=runs, seed=seed, pax_per_stop_h=pax_per_stop_h, board_s=board_s,
                       dead_s=dead_s, routes=routes, model=model)
    params = RouteParams.from_headways(sc.route_headway_s, frequent_headway_s=frequent_headway_s, gain=gain,
                                       cap_share=cap_share, origin_cap_share=origin_cap_share)
    result = run_scenario(sc, params, board_s=board_s, dead_s=dead_s)
    parameters = {
        "source": "recorded AVL" if sc.recorded else "timetable with RunningTimeModel",
        "service_date": sc.service_date.isoformat(), "runs": runs, "seed": seed,
        "pax_per_stop_h": pax_per_stop_h, "board_s": board_s, "dead_s": dead_s,
        "gain": gain, "cap_share": cap_share, "origin_cap_share": origin_cap_share,
        "frequent_headway_s": frequent_headway_s,
        "control_stops": "timepoints" if sc.timepoints else f"first stop and every {CONTROL_SPACING_S:.0f} s of schedule",
        "running_time_model": None if sc.recorded else asdict(model),
        "trips": int(sc.days[0].n_trips), "control_stop_visits": int(sc.days[0].control.sum()),
    }
    return {"parameters": parameters, **result}


def select_parameters(sc: Scenario, grid: dict[str, Sequence[float]], *, ivt_limit_pct: float = 2.5,
                      frequent_headway_s: float = np.inf, board_s: float = 3.0, dead_s: float = 5.0
                      ) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Choose the headway rule's parameters on ``sc`` (the tuning routes).

    Every combination of ``grid`` (keys: `telematics.holding.RouteParams.from_headways`
    arguments ``gain``, ``cap_share``, ``origin_cap_share``) is
    simulated with the ``headway`` strategy on every day of ``sc``, routes up to
    ``frequent_headway_s`` headway-managed; the choice is the largest pooled excess-wait cut
    against no control whose in-vehicle time added is at most ``ivt_limit_pct`` (%).

    Returns
    -------
    best : dict
        The chosen combination (empty when none meets the limit).
    table : list of dict
        Every combination with ``ewt_cut_pct`` and ``in_vehicle_added_pct``.
    """
    base = RouteParams.from_headways(sc.route_headway_s, frequent_headway_s=frequent_headway_s)
    scope = np.flatnonzero(base.frequent)
    ref = [_score_pooled(d, simulate(d, "none", base, pax, board_s=board_s, dead_s=dead_s), base, scope)
           for d, pax in zip(sc.days, sc.passengers, strict=True)]
    ewt0, ivt0 = np.mean([r[0] for r in ref]), sum(r[1] for r in ref) / max(sum(r[2] for r in ref), 1.0)
    names = list(grid)
    table: list[dict[str, float]] = []
    for combo in itertools.product(*(grid[k] for k in names)):
        kw = dict(zip(names, combo, strict=True))
        params = RouteParams.from_headways(sc.route_headway_s, frequent_headway_s=frequent_headway_s, **kw)
        got = [_score_pooled(d, simulate(d, "headway", params, pax, board_s=board_s, dead_s=dead_s), params, scope)
               for d, pax in zip(sc.days, sc.passengers, strict=True)]
        ewt, ivt = np.mean([g[0] for g in got]), sum(g[1] for g in got) / max(sum(g[2] for g in got), 1.0)
        table.append({**kw, "ewt_cut_pct": round(float(100.0 * (1.0 - ewt / ewt0)), 1),
                      "in_vehicle_added_pct": round(float(100.0 * (ivt / ivt0 - 1.0)), 2)})
    ok = [row for row in table if row["in_vehicle_added_pct"] <= ivt_limit_pct]
    best = max(ok, key=lambda row: row["ewt_cut_pct"]) if ok else {}
    return {k: best[k] for k in names} if best else {}, table


def _score_pooled(day: SimDay, res: Any, params: RouteParams, scope: npt.NDArray[np.int64]
                  ) -> tuple[float, float, float]:
    """Pooled EWT (s), total in-vehicle time (s) and boardings of the routes ``scope``."""
    frame = score(day, res, params)
    mine = frame[frame.index.isin(scope)]
    ewt, _ = _pooled(day, scope, np.where(day.last_row, res.arrival_s, res.departure_s))
    return ewt, float((mine["ivt_s"] * mine["passengers"]).sum()), float(mine["passengers"].sum())


def gain_table(sc: Scenario, gains: Sequence[float], *, frequent_headway_s: float = np.inf,
               wait_weight: float = WAIT_WEIGHT, board_s: float = 3.0, dead_s: float = 5.0) -> list[dict[str, float]]:
    """Headway holding at each gain on ``sc`` against no control (gain 0 is the uncontrolled row).

    Routes with a scheduled headway up to ``frequent_headway_s`` (s) are headway-managed,
    the others held at most to their schedule; scores are pooled over the managed routes
    (all routes when none is).

    Returns
    -------
    list of dict
        Per gain: ``ewt_s`` (pooled excess wait, s), ``in_vehicle_s`` (mean time aboard per
        passenger, s), ``ewt_cut_pct``, ``in_vehicle_added_pct`` and ``generalised_s``: the
        change in generalised time per passenger, ``wait_weight * d(EWT) + d(in-vehicle)``
        (s, negative: passengers gain).
    """
    base = RouteParams.from_headways(sc.route_headway_s, frequent_headway_s=frequent_headway_s)
    scope = np.flatnonzero(base.frequent) if base.frequent.any() else np.arange(len(sc.route_ids))
    rows = []
    for gain in [0.0, *gains]:
        params = RouteParams.from_headways(sc.route_headway_s, frequent_headway_s=frequent_headway_s, gain=gain)
        got = [_score_pooled(d, simulate(d, "headway" if gain > 0 else "none", params, pax, board_s=board_s,
                                         dead_s=dead_s), params, scope)
               for d, pax in zip(sc.days, sc.passengers, strict=True)]
        rows.append({"gain": gain, "ewt_s": float(np.mean([g[0] for g in got])),
                     "in_vehicle_s": sum(g[1] for g in got) / max(sum(g[2] for g in got), 1.0)})
    ewt0, ivt0 = rows[0]["ewt_s"], rows[0]["in_vehicle_s"]
    for row in rows:
        row["ewt_cut_pct"] = round(100.0 * (1.0 - row["ewt_s"] / ewt0), 1)
        row["in_vehicle_added_pct"] = round(100.0 * (row["in_vehicle_s"] / ivt0 - 1.0), 2)
        row["generalised_s"] = round(wait_weight * (row["ewt_s"] - ewt0) + row["in_vehicle_s"] - ivt0, 1)
        row["ewt_s"], row["in_vehicle_s"] = round(row["ewt_s"], 2), round(row["in_vehicle_s"], 2)
    return rows[1:]


def select_gain(tables: dict[str, list[dict[str, float]]]) -> tuple[float, dict[str, dict[float, float]]]:
    """The gain with the least mean change in generalised time over tuning scenarios.

    Parameters
    ----------
    tables : dict
        `gain_table` of each tuning scenario (the same gains in each).

    Returns
    -------
    gain : float
        The choice.
    summary : dict
        ``mean_generalised_s`` and ``max_regret_s`` (s per passenger, against each scenario's
        best gain) by gain: the choice is robust when it also has the least worst regret.
    """
    gains = [row["gain"] for row in next(iter(tables.values()))]
    cost = np.array([[row["generalised_s"] for row in table] for table in tables.values()])
    mean, regret = cost.mean(axis=0), (cost - cost.min(axis=1, keepdims=True)).max(axis=0)
    summary = {"mean_generalised_s": {g: round(float(m), 1) for g, m in zip(gains, mean, strict=True)},
               "max_regret_s": {g: round(float(r), 1) for g, r in zip(gains, regret, strict=True)}}
    return float(gains[int(np.argmin(mean))]), summary

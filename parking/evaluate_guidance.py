"""Replay of parking guidance on a history: did the recommended site have a space on arrival?

Methodology. Request times every ``every_min`` minutes over the history. At a request time
``T`` a site is a candidate when its latest reading is at most ``counter_stale_s`` old (as the
live state would show it) and a reading within +-10 min of the arrival ``T + arrive_in_min``
tells whether it had a free space then (the replay can only score sites whose arrival state
is known; both methods choose among the same candidates). One request per request time and
site ``X`` with a current reading: a driver bound for ``X``. With site positions the
candidates are the sites within ``radius_m`` of ``X``, at their distance from it; without,
every site of the history is a candidate at the same distance and drive time.

- ``model``: the top of the guidance ranking (:func:`parking.guidance.rank`) with the
  walk-forward forecasts and error quantiles of :mod:`parking.forecast` (data before each
  reading only; the quantiles from earlier days), exactly as the live route ranks.
- ``naive``: the candidate with the most free spaces now (ties: nearest).

A request counts when at least one candidate has a forecast (the site's minimum history is
reached). ``success`` is the share of requests whose chosen site had at least one free space
on arrival. The last ``holdout_days`` local days are also reported apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from parking.blend import walk_forward_quantiles
from parking.cleaning import clean_history
from parking.config import ParkingSettings
from parking.forecast import HORIZONS_MIN, MIN_SITE_RESIDUALS, TRUTH_TOLERANCE_S, walk_forward
from parking.guidance import arrival_forecast, rank
from parking.profiles import nearest_reading
from parking.sites import Site
from parking.state import distance_m

__all__ = ["GuidanceEvaluation", "evaluate_guidance"]

CALIBRATION_BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0001)


@dataclass(frozen=True)
class GuidanceEvaluation:
    """Shares of requests whose chosen site had a free space on arrival."""

    requests: int
    success: dict[str, float | None]
    differs: float | None
    holdout: dict[str, Any]
    calibration: list[dict[str, Any]]
    distance_m: dict[str, float | None]
    arrive_in_min: float
    sites: int
    positions: bool
    without_position: int = 0
    positions_without_history: int = 0
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The JSON object printed on the last line of ``its eval guidance --json``."""
        return {
            "success": self.success, "requests": self.requests, "differs": self.differs,
            "arrive_in_min": self.arrive_in_min, "sites": self.sites, "positions": self.positions,
            "holdout": self.holdout, "calibration": self.calibration, "distance_m": self.distance_m,
            "without_position": self.without_position, "positions_without_history": self.positions_without_history,
        }

    def summary(self) -> str:
        """Human-readable lines."""
        def pct(v: float | None) -> str:
            return f"{100 * v:.2f} %" if v is not None else "n/a"
        lines = [
            f"sites: {self.sites} ({'positions given' if self.positions else 'no positions: all sites candidates'}),"
            f" arrival in {self.arrive_in_min:g} min, requests: {self.requests}",
            f"free space on arrival: model {pct(self.success['model'])}, naive (most free now) "
            f"{pct(self.success['naive'])}; the choices differ in {pct(self.differs)} of requests"
            + (f"; mean distance to the chosen site: model {self.distance_m['model']} m, naive"
               f" {self.distance_m['naive']} m" if self.positions else ""),
            f"holdout from {self.holdout.get('from')}: model {pct(self.holdout['success']['model'])}, naive "
            f"{pct(self.holdout['success']['naive'])} ({self.holdout['requests']} requests)",
            "calibration (forecast chance of a space -> observed share):",
        ]
        if self.without_position or self.positions_without_history:
            lines.insert(1, f"left out: {self.without_position} site(s) of the history without a position in the"
                            f" sites file; {self.positions_without_history} site(s) of the sites file without readings")
        lines[1:1] = [f"note: {n}" for n in self.notes]
        lines += [f"  {b['p_low']:.2f}-{min(b['p_high'], 1.0):.2f}: n={b['n']} predicted {b['predicted']:.3f}"
                  f" observed {b['observed']:.3f}" for b in self.calibration if b["n"]]
        return "\n".join(lines)


def _latest_reading(site: np.ndarray, time_s: np.ndarray, n_sites: int, request_s: np.ndarray,
                    max_age_s: float) -> np.ndarray:
    """Index of each site's latest reading at or before each request time (-1 if none that recent),
    shape (len(request_s), n_sites)."""
    span = np.int64(1) << 40
    combined = site.astype(np.int64) * span + time_s
    keys = np.arange(n_sites, dtype=np.int64)[None, :] * span + request_s[:, None]
    idx = np.searchsorted(combined, keys, side="right") - 1
    c = np.clip(idx, 0, None)
    ok = (idx >= 0) & (site[c] == np.arange(n_sites)[None, :]) & (request_s[:, None] - time_s[c] <= max_age_s)
    return np.where(ok, idx, -1)


def evaluate_guidance(history: pd.DataFrame, sites: Sequence[Site] | None = None,
                      settings: ParkingSettings | None = None, arrive_in_min: float = 15.0,
                      every_min: int = 15, radius_m: float = 2000.0, holdout_days: int = 14) -> GuidanceEvaluation:
    """Replay guidance on a history (:func:`parking.cleaning.read_history_csv` frame); see the module doc.

    Parameters
    ----------
    sites : sequence of Site, optional
        Site positions; history sites without one are left out (counted in
        ``without_position``), as are sites of ``sites`` without readings.
    arrive_in_min : float
        Drive time (min, 0-60: the forecasts reach +60).
    every_min : int
        Minutes between request times (min, > 0).
    radius_m : float
        With positions: candidates within this distance of the request's site (m, >= 0).
    holdout_days : int
        The last this many local days are reported apart (days, >= 0; 0: none). When it is the
        history's length or more, ``holdout.from`` is its first day.

    Returns
    -------
    GuidanceEvaluation
        With no requests (shares None, ``notes`` saying why) when the history has no readings or
        no site reaches the minimum history.

    Raises
    ------
    ValueError
        An argument out of range, or ``sites`` given but none of them has readings in the history.
    """
    if not 0 <= arrive_in_min <= 60:
        raise ValueError(f"arrive_in_min must be within 0-60 min (the forecasts reach +60), got {arrive_in_min:g}")
    if every_min <= 0 or radius_m < 0 or holdout_days < 0:
        raise ValueError(f"every_min must be > 0, radius_m and holdout_days >= 0; got {every_min}, {radius_m:g},"
                         f" {holdout_days}")
    settings = settings or ParkingSettings()
    cleaned, _ = clean_history(history)
    history_sites = set(cleaned["site_id"].astype(str))
    placed = history_sites & {s.site_id for s in sites} if sites is not None else history_sites
    if sites is not None and history_sites and not placed:
        listed = f"ids {', '.join(repr(s.site_id) for s in list(sites)[:3])}..." if sites else "no site"
        raise ValueError(f"no site of the sites file ({listed}) has readings in the history (ids"
                         f" {', '.join(map(repr, sorted(history_sites)[:3]))}...): site ids must match exactly")
    unplaced = len(history_sites - placed)
    spare = len({s.site_id for s in sites} - history_sites) if sites is not None else 0
    if cleaned.empty:
        return _no_requests(arrive_in_min, sites is not None, spare, holdout_days, "no readings in the history")
    walk = walk_forward(cleaned, settings.forecast_slot_min, settings.forecast_min_days,
                        settings.forecast_blend_prior_points, settings.forecast_blend_decay)
    grid, obs = walk.grid, walk.obs
    n_sites, n_days = len(grid.sites), len(grid.days)
    # walk-forward predictions and error quantiles of every reading at every horizon
    pred = np.full((obs.site.size, len(HORIZONS_MIN)), np.nan)
    quants = []
    for k, h in enumerate(HORIZONS_MIN):
        hf = walk.horizons[h]
        pred[:, k] = np.where(hf.mature, hf.blended, np.nan)
        ok = hf.scored
        quants.append(walk_forward_quantiles(obs.site[ok], obs.day[ok], hf.truth[ok] - hf.blended[ok],
                                             grid.capacity, n_sites, n_days, MIN_SITE_RESIDUALS))
    errors_sd = np.stack(quants, axis=2)  # (S, D + 1, H, L)

    positions: dict[str, tuple[float, float]] = {s.site_id: (s.lat, s.lon) for s in sites or ()}
    if sites is not None:
        keep = np.array([s in positions for s in grid.sites])
    else:
        keep = np.ones(n_sites, dtype=bool)
    lat = np.array([positions.get(s, (np.nan, np.nan))[0] for s in grid.sites])
    lon = np.array([positions.get(s, (np.nan, np.nan))[1] for s in grid.sites])

    requests_s = _request_times(obs.time_s, every_min * 60, settings.counter_stale_s)
    latest = _latest_reading(obs.site, obs.time_s, n_sites, requests_s, settings.counter_stale_s)
    arrive_s = requests_s + round(arrive_in_min * 60)
    model_ok: list[bool] = []
    naive_ok: list[bool] = []
    same: list[bool] = []
    dist_m: list[tuple[float, float]] = []
    day_of: list[np.datetime64] = []
    calib_p: list[np.ndarray] = []
    calib_y: list[np.ndarray] = []
    truth_all = nearest_reading(obs.site, obs.time_s, np.tile(np.arange(n_sites), requests_s.size),
                                np.repeat(arrive_s, n_sites), TRUTH_TOLERANCE_S).reshape(requests_s.size, n_sites)
    for r, t in enumerate(requests_s.tolist()):
        cur, truth_i = latest[r], truth_all[r]
        cand = np.flatnonzero((cur >= 0) & (truth_i >= 0) & keep)
        if cand.size < 2:
            continue
        i = cur[cand]
        after = arrive_in_min + (t - obs.time_s[i]) / 60.0
        occupied, prob = arrival_forecast(HORIZONS_MIN, obs.occupied[i], pred[i], errors_sd[obs.site[i], obs.day[i]],
                                          obs.capacity[i], after)
        if np.isnan(prob).all():
            continue
        free_now = obs.free[i]
        expected = np.where(np.isnan(occupied), free_now, obs.capacity[i] - occupied)
        had_space = obs.free[truth_i[cand]] > 0
        known = ~np.isnan(prob)
        calib_p.append(prob[known])
        calib_y.append(had_space[known])
        origins = cand if positions else cand[:1]
        for x in origins:
            if positions:
                dist = distance_m(float(lat[x]), float(lon[x]), lat[cand], lon[cand])
                near = dist <= radius_m
            else:
                dist = np.zeros(cand.size)
                near = np.ones(cand.size, dtype=bool)
            sel = np.flatnonzero(near)
            if sel.size == 0 or np.isnan(prob[sel]).all():
                continue
            m = sel[rank(prob[sel], dist[sel], expected[sel], settings.guidance_probability_step)[0]]
            nv = sel[np.lexsort((dist[sel], -free_now[sel]))[0]]
            weight = 1 if positions else cand.size  # one request per site bound for it
            model_ok += [bool(had_space[m])] * weight
            naive_ok += [bool(had_space[nv])] * weight
            same += [bool(m == nv)] * weight
            dist_m.append((float(dist[m]), float(dist[nv])))
            day_of += [grid.days[obs.day[cur[x]]]] * weight
    model_arr, naive_arr = np.array(model_ok, dtype=bool), np.array(naive_ok, dtype=bool)
    same_arr = np.array(same, dtype=bool)
    days = np.array(day_of, dtype="datetime64[D]")
    cut = max(grid.days[-1] - np.timedelta64(holdout_days - 1, "D"), grid.days[0]) \
        if n_days and holdout_days > 0 else None
    late = days >= cut if cut is not None else np.zeros(days.size, dtype=bool)
    p_all = np.concatenate(calib_p) if calib_p else np.empty(0)
    y_all = np.concatenate(calib_y) if calib_y else np.empty(0, dtype=bool)
    calibration = []
    for lo, hi in pairwise(CALIBRATION_BINS):
        b = (p_all >= lo) & (p_all < hi)
        calibration.append({"p_low": lo, "p_high": round(min(hi, 1.0), 2), "n": int(b.sum()),
                            "predicted": round(float(p_all[b].mean()), 4) if b.any() else 0.0,
                            "observed": round(float(y_all[b].mean()), 4) if b.any() else 0.0})
    return GuidanceEvaluation(
        requests=int(model_arr.size),
        success={"model": _share(model_arr), "naive": _share(naive_arr)},
        differs=_share(~same_arr),
        holdout={"from": str(cut) if cut is not None else None, "requests": int(late.sum()),
                 "success": {"model": _share(model_arr[late]), "naive": _share(naive_arr[late])}},
        calibration=calibration,
        distance_m={"model": round(float(np.mean([d[0] for d in dist_m])), 1) if dist_m and positions else None,
                    "naive": round(float(np.mean([d[1] for d in dist_m])), 1) if dist_m and positions else None},
        arrive_in_min=arrive_in_min,
        sites=int(keep.sum()),
        positions=sites is not None,
        without_position=unplaced,
        positions_without_history=spare,
        notes=() if model_arr.size else _why_no_requests(int(keep.sum()), walk.profiles.history_days,
                                                          settings.forecast_min_days),
    )


def _request_times(time_s: np.ndarray, step_s: int, max_age_s: float) -> np.ndarray:
    """Multiples of ``step_s`` from the first reading to the last (s, UTC) that have a reading at most
    ``max_age_s`` before them: the request times at which some site is current. Others could not
    count, and leaving them out keeps a history with long gaps (a stray reading years away) cheap."""
    u = np.unique(time_s)
    if u.size == 0:
        return np.empty(0, dtype=np.int64)
    age = int(max_age_s)
    starts = np.concatenate([[0], np.flatnonzero(u[1:] > u[:-1] + age) + 1])  # blocks of overlapping windows
    lo = -(-u[starts] // step_s) * step_s
    hi = np.minimum(np.append(u[starts[1:] - 1], u[-1]) + age, u[-1])
    n = np.maximum((hi - lo) // step_s + 1, 0)
    first = np.repeat(lo, n)
    k = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    return (first + k * step_s).astype(np.int64)


def _why_no_requests(n_sites: int, history_days: np.ndarray, min_days: int) -> tuple[str, ...]:
    """Why a replay counted no request: one site only, too short a history, or never two current sites."""
    if n_sites < 2:
        return (f"no request counted: guidance chooses between sites and the history has {n_sites} site",)
    longest = int(history_days.max()) if history_days.size else 0
    if longest < min_days:
        return (f"no request counted: a site is forecast once it has {min_days} days of history"
                f" (ITS_PARKING_FORECAST_MIN_DAYS); the longest here has {longest} earlier day(s)",)
    return ("no request counted: a request needs two sites with a current reading (at most"
            " ITS_PARKING_COUNTER_STALE_S old) and a reading within +-10 min of the arrival, one of them"
            f" forecast with the errors of its forecasts on earlier days (a site is forecast from its day {min_days + 1},"
            f" the longest history here has {longest + 1} day(s))",)


def _no_requests(arrive_in_min: float, positions: bool, spare: int, holdout_days: int,
                 note: str) -> GuidanceEvaluation:
    """The evaluation of a history without any reading."""
    return GuidanceEvaluation(
        requests=0, success={"model": None, "naive": None}, differs=None,
        holdout={"from": None, "requests": 0, "success": {"model": None, "naive": None}},
        calibration=[{"p_low": lo, "p_high": round(min(hi, 1.0), 2), "n": 0, "predicted": 0.0, "observed": 0.0}
                     for lo, hi in pairwise(CALIBRATION_BINS)],
        distance_m={"model": None, "naive": None}, arrive_in_min=arrive_in_min, sites=0, positions=positions,
        positions_without_history=spare, notes=(note,),
    )


def _share(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 6) if values.size else None


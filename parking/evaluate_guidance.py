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

    def as_json(self) -> dict[str, Any]:
        """The JSON object printed on the last line of ``its eval guidance --json``."""
        return {
            "success": self.success, "requests": self.requests, "differs": self.differs,
            "arrive_in_min": self.arrive_in_min, "sites": self.sites, "positions": self.positions,
            "holdout": self.holdout, "calibration": self.calibration, "distance_m": self.distance_m,
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
    """Replay guidance on a history (:func:`parking.cleaning.read_history_csv` frame); see the module doc."""
    settings = settings or ParkingSettings()
    cleaned, _ = clean_history(history)
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

    step = every_min * 60
    requests_s = np.arange(-(-obs.time_s.min() // step) * step, obs.time_s.max() + 1, step, dtype=np.int64)
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
    model_arr, naive_arr, same_arr = np.array(model_ok), np.array(naive_ok), np.array(same)
    days = np.array(day_of, dtype="datetime64[D]")
    cut = grid.days[-1] - np.timedelta64(holdout_days - 1, "D") if n_days and holdout_days > 0 else None
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
        positions=bool(positions),
    )


def _share(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 6) if values.size else None


"""Walk-forward combination of forecasts, and predictive distributions from past errors.

A forecast of a site at a horizon is a convex blend of three candidate forecasts of its
occupancy: persistence (the reading now), the profile model (:mod:`parking.profiles`) and the
seasonal one (the reading a week before the target). The blend weights of a site and
horizon for day ``d`` are those of a fixed simplex grid (steps of ``1 / WEIGHT_STEPS``) with
the smallest absolute error over the forecasts of strictly earlier days (exponentially
forgotten with a per-day factor), the site's own errors counted next to ``prior_points``
forecasts' worth of the mean error over all sites. Nothing is fixed in advance: with no
past errors the profile model is used; where persistence has been better (short horizons,
fast readings) the weights move to it, and so on. Pure numpy, no I/O.

The predictive distribution of a forecast is the forecast plus the site's past errors at that
horizon (their quantiles at :data:`LEVELS`); :func:`free_probability` reads the chance of a
free space from it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "CANDIDATES",
    "COMBOS",
    "LEVELS",
    "combine",
    "free_probability",
    "quantile_at",
    "walk_forward_quantiles",
    "walk_forward_weights",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CANDIDATES = ("persistence", "model", "seasonal")
WEIGHT_STEPS = 10


def _simplex(steps: int) -> FloatArray:
    grid = [(i, j, steps - i - j) for i in range(steps + 1) for j in range(steps + 1 - i)]
    return np.asarray(grid, dtype=np.float64) / steps


#: Candidate weight vectors (persistence, model, seasonal), each summing to 1.
COMBOS = _simplex(WEIGHT_STEPS)
_MODEL_ONLY = np.array([0.0, 1.0, 0.0])
# ties (e.g. no past errors at all) go to the weights nearest the profile model
_TIE_BREAK = 1e-9 * np.abs(COMBOS - _MODEL_ONLY).sum(axis=1)
#: Quantile levels of the stored predictive distributions.
LEVELS = np.round(np.linspace(0.01, 0.99, 99), 2)


def combine(candidates: FloatArray, weights: FloatArray) -> FloatArray:
    """Blend candidate forecasts row by row, ignoring missing ones.

    Parameters
    ----------
    candidates : ndarray, shape (N, 3)
        Forecasts (spaces) in :data:`CANDIDATES` order; NaN where a candidate has none.
    weights : ndarray, shape (N, 3)

    Returns
    -------
    ndarray, shape (N,)
        Weighted mean over the available candidates, the weights renormalised; NaN where
        they sum to zero.
    """
    have = ~np.isnan(candidates)
    w = np.where(have, weights, 0.0)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w * np.nan_to_num(candidates)).sum(axis=1) / total, np.nan)


def _errors_by_site_day(flat: IntArray, deviation: FloatArray, size: int, chunk_rows: int = 100_000) -> FloatArray:
    """Sum of absolute errors of every blend in :data:`COMBOS` per group ``flat`` (shape (size, C)).

    ``deviation`` (N, 3) is candidates minus truth; a blend's error is ``|deviation @ w|`` as
    the weights sum to one. Rows are grouped and summed chunk by chunk (bounded memory).
    """
    order = np.argsort(flat, kind="stable")
    keys = flat[order]
    dev = deviation[order].astype(np.float32)
    combos = COMBOS.T.astype(np.float32)
    out = np.zeros((size, len(COMBOS)))
    if keys.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    g0 = 0
    while g0 < starts.size:
        # whole groups, about chunk_rows rows at a time
        g1 = max(g0 + 1, int(np.searchsorted(starts, starts[g0] + chunk_rows, side="right")) - 1)
        g1 = min(g1, starts.size)
        a, b = starts[g0], starts[g1] if g1 < starts.size else keys.size
        err = np.abs(dev[a:b] @ combos)
        out[keys[starts[g0:g1]]] = np.add.reduceat(err, starts[g0:g1] - a, axis=0)
        g0 = g1
    return out


def walk_forward_weights(
    site_idx: IntArray, day_idx: IntArray, candidates: FloatArray, truth: FloatArray,
    n_sites: int, n_days: int, prior_points: float, decay: float,
) -> FloatArray:
    """Blend weights of every site for every day, from the errors of strictly earlier days.

    Parameters
    ----------
    site_idx, day_idx : ndarray of int, shape (N,)
        Site and local day of each past forecast (all candidates present, truth known).
    candidates : ndarray, shape (N, 3)
        Candidate forecasts (spaces).
    truth : ndarray, shape (N,)
        What was observed at the target time (spaces).
    prior_points : float
        Weight of the all-sites mean error, in forecasts of the site (shrinkage).
    decay : float
        Per-day forgetting factor of past errors (1 = never forget).

    Returns
    -------
    ndarray, shape (n_sites, n_days + 1, 3)
        ``[s, d]``: weights for day ``d`` of site ``s``; ``[:, n_days]`` uses every day
        (for live forecasts after the last day).
    """
    errors = _errors_by_site_day(site_idx * n_days + day_idx, candidates - truth[:, None], n_sites * n_days)
    errors = errors.reshape(n_sites, n_days, len(COMBOS))
    counts = np.bincount(site_idx * n_days + day_idx, minlength=n_sites * n_days)
    counts = counts.reshape(n_sites, n_days).astype(np.float64)
    site_err = np.zeros((n_sites, len(COMBOS)))
    site_n = np.zeros(n_sites)
    out = np.empty((n_sites, n_days + 1, 3))
    for day in range(n_days + 1):
        pooled_n = site_n.sum()
        pooled_mean = site_err.sum(axis=0) / pooled_n if pooled_n > 0 else np.zeros(len(COMBOS))
        score = site_err + prior_points * pooled_mean[None, :] + _TIE_BREAK[None, :]
        out[:, day] = COMBOS[np.argmin(score, axis=1)]
        if day < n_days:
            site_err = decay * site_err + errors[:, day]
            site_n = decay * site_n + counts[:, day]
    return out


def walk_forward_quantiles(
    site_idx: IntArray, day_idx: IntArray, residual: FloatArray, capacity: FloatArray,
    n_sites: int, n_days: int, min_points: int, days: IntArray | None = None,
) -> FloatArray:
    """Quantiles (:data:`LEVELS`) of each site's errors on strictly earlier days (spaces).

    A site with fewer than ``min_points`` earlier errors gets the quantiles of all sites'
    errors relative to capacity, scaled to its own capacity; NaN without any.

    Parameters
    ----------
    residual : ndarray, shape (N,)
        Observed minus forecast occupancy (spaces).
    capacity : ndarray, shape (n_sites,)
        Capacity of each site (spaces).
    days : ndarray of int, optional
        Only these days (0..n_days; n_days = after the last); default all.

    Returns
    -------
    ndarray, shape (n_sites, n_days + 1, len(LEVELS))
        Rows of days not asked for are NaN.
    """
    out = np.full((n_sites, n_days + 1, LEVELS.size), np.nan)
    wanted = np.arange(n_days + 1) if days is None else np.asarray(days, dtype=np.int64)
    scale = np.maximum(capacity, 1.0)
    order = np.argsort(day_idx, kind="stable")
    d_sorted, s_sorted, r_sorted = day_idx[order], site_idx[order], residual[order]
    rel_sorted = r_sorted / scale[s_sorted]
    for day in wanted:
        upto = int(np.searchsorted(d_sorted, day, side="left"))
        if upto == 0:
            continue
        pooled = np.quantile(rel_sorted[:upto], LEVELS)
        out[:, day] = pooled[None, :] * scale[:, None]
        by_site = np.argsort(s_sorted[:upto], kind="stable")
        grouped = r_sorted[:upto][by_site]
        bounds = np.searchsorted(s_sorted[:upto][by_site], np.arange(n_sites + 1))
        for s in np.flatnonzero(np.diff(bounds) >= min_points):
            out[s, day] = np.quantile(grouped[bounds[s]:bounds[s + 1]], LEVELS)
    return out


def quantile_at(quantiles: FloatArray, level: float) -> FloatArray:
    """A quantile at any level in ``[0.01, 0.99]``, linear between :data:`LEVELS` (last axis)."""
    pos = float(np.interp(level, LEVELS, np.arange(LEVELS.size)))
    lo = int(np.floor(pos))
    hi = min(lo + 1, LEVELS.size - 1)
    frac = pos - lo
    return np.asarray((1 - frac) * quantiles[..., lo] + frac * quantiles[..., hi], dtype=np.float64)


def free_probability(predicted: npt.ArrayLike, capacity: npt.ArrayLike, quantiles: FloatArray) -> FloatArray:
    """Chance that at least one space is free at the target time.

    Assumes the occupancy then is the forecast plus an error drawn from the site's past
    errors at that horizon (``quantiles``), whatever the level: ``P(predicted + e <=
    capacity - 1)``, read from the error distribution between its quantiles (half a space of
    continuity correction; beyond the 1st / 99th percentile, 0.005 / 0.995: the tails past the
    stored quantiles are not resolved).

    Parameters
    ----------
    predicted : array_like, shape (N,)
        Forecast occupancy (spaces).
    capacity : array_like, shape (N,)
        Capacity (spaces).
    quantiles : ndarray, shape (N, len(LEVELS))
        Error quantiles (spaces), non-decreasing along the last axis.

    Returns
    -------
    ndarray, shape (N,)
        Probability in ``[0, 1]``; NaN where the forecast or the quantiles are missing.
    """
    q = np.atleast_2d(np.asarray(quantiles, dtype=np.float64))
    threshold = np.asarray(capacity, dtype=np.float64) - 0.5 - np.asarray(predicted, dtype=np.float64)
    threshold = np.atleast_1d(threshold)
    k = (q <= threshold[:, None]).sum(axis=1)  # quantiles at or below the threshold
    lo = np.clip(k - 1, 0, LEVELS.size - 1)
    hi = np.clip(k, 0, LEVELS.size - 1)
    q_lo = np.take_along_axis(q, lo[:, None], axis=1)[:, 0]
    q_hi = np.take_along_axis(q, hi[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(q_hi > q_lo, (threshold - q_lo) / (q_hi - q_lo), 1.0)
    inner = LEVELS[lo] + np.clip(frac, 0.0, 1.0) * (LEVELS[hi] - LEVELS[lo])
    prob = np.where(k == 0, LEVELS[0] / 2, np.where(k >= LEVELS.size, 1.0 - (1.0 - LEVELS[-1]) / 2, inner))
    missing = np.isnan(threshold) | np.isnan(q).any(axis=1)
    return np.where(missing, np.nan, prob)

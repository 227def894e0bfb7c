"""Weekday x time-of-day occupancy profiles and the structural forecast built on them.

Model, per site: the profile ``P(weekday, slot)`` is the mean occupancy (spaces) in that
time-of-day slot on earlier days of the same weekday, shrunk toward the all-days mean of the
slot when few same-weekday days exist. Profiles are read between slot centres by linear
interpolation, so a forecast depends on the time of day continuously whatever the reading
rate. A forecast made at time ``t`` for ``t + h`` is

    occupied(t + h) = P(t + h) + rho(h) * (occupied(t) - P(t))

where ``rho(h)`` (how fast today's deviation from the usual decays) is fitted by least
squares on earlier days' deviations at lags of whole slots and interpolated log-linearly
between them (``rho(0) = 1``). Everything is vectorised over sites x days x slots and uses
only days before the one forecast (walk-forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "FloatArray",
    "IntArray",
    "OccupancyGrid",
    "Profiles",
    "build_grid",
    "decay_at",
    "fit_decay",
    "nearest_reading",
    "predict_occupied",
    "profile_at",
    "slot_of",
    "walk_forward_profiles",
]

SHRINK_DAYS = 2.0  # weight (in days) of the all-days profile in the weekday blend
MAX_LAG_SLOTS = 6

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class OccupancyGrid:
    """Mean occupancy per site x local day x time-of-day slot.

    Attributes
    ----------
    sites : ndarray of str, shape (S,)
    days : ndarray of datetime64[D], shape (D,)
        Local calendar days, sorted.
    weekdays : ndarray of int, shape (D,)
        0 = Monday.
    slot_min : int
        Slot width (min); ``K = 1440 // slot_min`` slots.
    occupied : ndarray of float, shape (S, D, K)
        Mean occupied spaces, NaN where there was no reading.
    capacity : ndarray of float, shape (S,)
        Last known capacity (spaces).
    """

    sites: npt.NDArray[np.str_]
    days: npt.NDArray[np.datetime64]
    weekdays: IntArray
    slot_min: int
    occupied: FloatArray
    capacity: FloatArray

    @property
    def n_slots(self) -> int:
        return 1440 // self.slot_min


@dataclass(frozen=True)
class Profiles:
    """Profiles seen from each day using only earlier days.

    Attributes
    ----------
    blended : ndarray, shape (S, D, K)
        Weekday profile shrunk toward the all-days profile (spaces); NaN without history.
    all_days : ndarray, shape (S, D, K)
        Mean over all earlier days (spaces).
    history_days : ndarray of int, shape (S, D)
        Earlier days with at least one reading.
    """

    blended: FloatArray
    all_days: FloatArray
    history_days: IntArray


def slot_of(local_min: npt.ArrayLike, slot_min: int) -> IntArray:
    """Nearest slot index of a local time of day (min); wraps at midnight."""
    k = np.rint(np.asarray(local_min, dtype=np.float64) / slot_min).astype(np.int64)
    return np.mod(k, 1440 // slot_min)


def build_grid(cleaned: pd.DataFrame, slot_min: int = 30) -> OccupancyGrid:
    """Aggregate cleaned readings (see :func:`parking.cleaning.clean_history`) into a grid."""
    sites, site_idx = np.unique(cleaned["site_id"].to_numpy().astype(str), return_inverse=True)
    day_values = cleaned["local_date"].to_numpy().astype("datetime64[D]")
    days, day_idx = np.unique(day_values, return_inverse=True)
    n_slots = 1440 // slot_min
    slot = slot_of(cleaned["local_min"].to_numpy(), slot_min)
    flat = (site_idx * len(days) + day_idx) * n_slots + slot
    size = len(sites) * len(days) * n_slots
    sums = np.bincount(flat, weights=cleaned["occupied"].to_numpy(dtype=np.float64), minlength=size)
    counts = np.bincount(flat, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        occupied = np.where(counts > 0, sums / counts, np.nan).reshape(len(sites), len(days), n_slots)
    last = cleaned.groupby("site_id", sort=True)["capacity"].last()
    capacity = last.reindex(sites).to_numpy(dtype=np.float64)
    weekdays = ((days.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(np.int64)
    return OccupancyGrid(sites, days, weekdays, slot_min, occupied, capacity)


def _exclusive_cumsum(values: FloatArray, axis: int) -> FloatArray:
    out = np.cumsum(values, axis=axis)
    return out - values


def walk_forward_profiles(grid: OccupancyGrid, extra_weekday: int | None = None) -> Profiles:
    """Profiles for every day from strictly earlier days.

    Parameters
    ----------
    extra_weekday : int, optional
        Also compute the profile of one more day after the last (the live "today"), with this
        weekday; the returned arrays then have ``D + 1`` days.
    """
    occ = grid.occupied
    weekdays = grid.weekdays
    if extra_weekday is not None:
        pad = np.full((*occ.shape[:1], 1, *occ.shape[2:]), np.nan)
        occ = np.concatenate([occ, pad], axis=1)
        weekdays = np.append(weekdays, extra_weekday)
    seen = ~np.isnan(occ)
    values = np.where(seen, occ, 0.0)
    all_sum = _exclusive_cumsum(values, axis=1)
    all_cnt = _exclusive_cumsum(seen.astype(np.float64), axis=1)
    wd_sum = np.zeros_like(values)
    wd_cnt = np.zeros_like(values)
    for weekday in range(7):
        cols = np.flatnonzero(weekdays == weekday)
        if cols.size:
            wd_sum[:, cols] = _exclusive_cumsum(values[:, cols], axis=1)
            wd_cnt[:, cols] = _exclusive_cumsum(seen[:, cols].astype(np.float64), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        all_mean = np.where(all_cnt > 0, all_sum / all_cnt, np.nan)
        blended = np.where(
            all_cnt > 0,
            (wd_sum + SHRINK_DAYS * np.nan_to_num(all_mean)) / (wd_cnt + SHRINK_DAYS),
            np.nan,
        )
    day_has_data = seen.any(axis=2).astype(np.int64)
    history_days = np.cumsum(day_has_data, axis=1) - day_has_data
    return Profiles(blended, all_mean, history_days)


def fit_decay(grid: OccupancyGrid, profiles: Profiles) -> FloatArray:
    """Walk-forward least-squares decay of the deviation from the profile.

    Returns
    -------
    ndarray, shape (D_p, MAX_LAG_SLOTS + 1)
        ``rho`` at lags of 0..MAX_LAG_SLOTS slots, for each day of ``profiles`` fitted on the
        deviations of strictly earlier days (all sites pooled); lag 0 is 1. Where nothing
        could be fitted yet, 0 (pure profile).
    """
    n_days = profiles.blended.shape[1]
    occ = grid.occupied
    if occ.shape[1] < n_days:
        occ = np.concatenate([occ, np.full((occ.shape[0], n_days - occ.shape[1], occ.shape[2]), np.nan)], axis=1)
    scale = np.maximum(grid.capacity, 1.0)[:, None, None]
    dev = (occ - profiles.blended) / scale
    rho = np.zeros((n_days, MAX_LAG_SLOTS + 1))
    rho[:, 0] = 1.0
    for lag in range(1, MAX_LAG_SLOTS + 1):
        x, y = dev[:, :, :-lag], dev[:, :, lag:]
        ok = ~(np.isnan(x) | np.isnan(y))
        sxy = np.where(ok, x * y, 0.0).sum(axis=(0, 2))
        sxx = np.where(ok, x * x, 0.0).sum(axis=(0, 2))
        cxy, cxx = _exclusive_cumsum(sxy, 0), _exclusive_cumsum(sxx, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho[:, lag] = np.where(cxx > 0, np.clip(cxy / cxx, 0.0, 1.0), 0.0)
    return rho


def decay_at(rho_lags: FloatArray, horizon_min: float, slot_min: int) -> FloatArray:
    """``rho`` at a horizon (min), log-linear between whole-slot lags.

    Parameters
    ----------
    rho_lags : ndarray, shape (..., L + 1)
        Decay at lags 0..L slots (as from :func:`fit_decay`).
    """
    pos = horizon_min / slot_min
    lo = min(int(np.floor(pos)), rho_lags.shape[-1] - 1)
    hi = min(lo + 1, rho_lags.shape[-1] - 1)
    frac = pos - lo if hi > lo else 0.0
    a = np.maximum(rho_lags[..., lo], 1e-6)
    b = np.maximum(rho_lags[..., hi], 1e-6)
    out = np.exp((1 - frac) * np.log(a) + frac * np.log(b))
    return np.where(rho_lags[..., hi] <= 0, (1 - frac) * rho_lags[..., lo], out)


def profile_at(values: FloatArray, site_idx: npt.ArrayLike, day_idx: npt.ArrayLike, local_min: npt.ArrayLike,
               slot_min: int) -> FloatArray:
    """A profile read at any time of day, linear between slot centres (spaces).

    Slot ``k`` holds the mean around ``k * slot_min`` minutes. Where one of the two
    neighbouring slots has no value the other is used; outside the day, NaN.

    Parameters
    ----------
    values : ndarray, shape (S, D, K)
        A profile (e.g. :attr:`Profiles.blended`).
    site_idx, day_idx : array_like of int
    local_min : array_like of float
        Local time of day (min), within ``[0, 1440)``.
    """
    n_slots = values.shape[2]
    s = np.asarray(site_idx, dtype=np.int64)
    d = np.asarray(day_idx, dtype=np.int64)
    pos = np.asarray(local_min, dtype=np.float64) / slot_min
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    hi = lo + 1
    a = np.where((lo >= 0) & (lo < n_slots), values[s, d, np.clip(lo, 0, n_slots - 1)], np.nan)
    b = np.where((hi >= 0) & (hi < n_slots), values[s, d, np.clip(hi, 0, n_slots - 1)], np.nan)
    out = (1.0 - frac) * a + frac * b
    return np.where(np.isnan(a), b, np.where(np.isnan(b), a, out))


def predict_occupied(
    profiles: Profiles,
    rho_lags: FloatArray,
    slot_min: int,
    site_idx: npt.ArrayLike,
    day_idx: npt.ArrayLike,
    local_min: npt.ArrayLike,
    occupied_now: npt.ArrayLike,
    horizon_min: int,
) -> FloatArray:
    """Structural forecast of occupancy at ``t + horizon`` for many points at once (spaces).

    NaN where the target falls on the next local day or the profile has no value.

    Parameters
    ----------
    site_idx, day_idx : ndarray of int
        Grid indices of the site and local day of each forecast time ``t``.
    local_min : ndarray of float
        Local time of day of ``t`` (min).
    occupied_now : ndarray of float
        Occupancy observed at ``t`` (spaces).
    """
    local_min = np.asarray(local_min, dtype=np.float64)
    occupied_now = np.asarray(occupied_now, dtype=np.float64)
    day_idx = np.asarray(day_idx, dtype=np.int64)
    target = local_min + horizon_min
    same_day = target < 1440 - slot_min / 2
    p_now = profile_at(profiles.blended, site_idx, day_idx, local_min, slot_min)
    p_target = profile_at(profiles.blended, site_idx, day_idx, np.where(same_day, target, 0.0), slot_min)
    rho = decay_at(rho_lags[day_idx], horizon_min, slot_min)
    out = p_target + rho * (occupied_now - p_now)
    return np.where(same_day, out, np.nan)


def nearest_reading(
    keys: npt.ArrayLike, times_s: npt.ArrayLike, query_keys: npt.ArrayLike,
    query_s: npt.ArrayLike, tolerance_s: int,
) -> IntArray:
    """Index of the reading of the same key nearest each query time, -1 if none within tolerance.

    ``keys``/``times_s`` must be sorted by (key, time). Times in s.
    """
    span = np.int64(1) << 40
    keys = np.asarray(keys, dtype=np.int64)
    query_keys = np.asarray(query_keys, dtype=np.int64)
    combined = keys * span + np.asarray(times_s, dtype=np.int64)
    query = query_keys * span + np.asarray(query_s, dtype=np.int64)
    right = np.searchsorted(combined, query, side="left")
    left = right - 1
    best = np.full(query.shape, -1, dtype=np.int64)
    best_gap = np.full(query.shape, np.iinfo(np.int64).max)
    for cand in (left, right):
        inside = (cand >= 0) & (cand < combined.size)
        c = np.clip(cand, 0, max(combined.size - 1, 0))
        gap = np.abs(combined[c] - query) if combined.size else np.zeros_like(query)
        ok = inside & (keys[c] == query_keys) & (gap <= tolerance_s) & (gap < best_gap)
        best = np.where(ok, c, best)
        best_gap = np.where(ok, gap, best_gap)
    return best

"""Free-space forecasts from weekday x time-of-day profiles blended with the current deviation.

Model, per site: the profile ``P(weekday, slot)`` is the mean occupancy (spaces) in that
time-of-day slot on earlier days of the same weekday, shrunk toward the all-days mean of the
slot when few same-weekday days exist. A forecast made at time ``t`` for ``t + h`` is

    occupied(t + h) = P(t + h) + rho(h) * (occupied(t) - P(t))

where ``rho(h)`` (how fast today's deviation from the usual decays) is fitted by least
squares on earlier days' deviations at lags of whole slots and interpolated log-linearly
between them (``rho(0) = 1``). The uncertainty band comes from quantiles of the residuals
the same model made on the history. Everything is vectorised over sites x days x slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "HORIZONS_MIN",
    "ForecastPoint",
    "IssuedForecast",
    "OccupancyGrid",
    "Profiles",
    "SiteForecaster",
    "build_grid",
    "decay_at",
    "fit_decay",
    "predict_occupied",
    "walk_forward_profiles",
]

HORIZONS_MIN = (15, 30, 60)
SHRINK_DAYS = 2.0  # weight (in days) of the all-days profile in the weekday blend
MAX_LAG_SLOTS = 6
MIN_SITE_RESIDUALS = 30

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
    """Forecast occupancy at ``t + horizon`` for many points at once (spaces, NaN if none).

    Parameters
    ----------
    site_idx, day_idx : ndarray of int
        Grid indices of the site and local day of each forecast time ``t``.
    local_min : ndarray of float
        Local time of day of ``t`` (min).
    occupied_now : ndarray of float
        Occupancy observed at ``t`` (spaces).
    """
    n_slots = 1440 // slot_min
    site_idx = np.asarray(site_idx, dtype=np.int64)
    day_idx = np.asarray(day_idx, dtype=np.int64)
    local_min = np.asarray(local_min, dtype=np.float64)
    occupied_now = np.asarray(occupied_now, dtype=np.float64)
    now_slot = slot_of(local_min, slot_min)
    target_min = np.asarray(local_min) + horizon_min
    target_slot = slot_of(target_min, slot_min)
    same_day = target_min < 1440 - slot_min / 2
    p_now = profiles.blended[site_idx, day_idx, now_slot]
    p_target = profiles.blended[site_idx, day_idx, np.where(same_day, target_slot, n_slots - 1)]
    rho = decay_at(rho_lags[day_idx], horizon_min, slot_min)
    out = p_target + rho * (occupied_now - p_now)
    return np.where(same_day, out, np.nan)


@dataclass(frozen=True)
class ForecastPoint:
    """One forecast of a site.

    Attributes
    ----------
    horizon_min : int
    free : int or None
        Expected free spaces (spaces); None with ``reason`` when no forecast is made.
    free_low, free_high : int or None
        Uncertainty band (spaces).
    reason : str or None
    """

    horizon_min: int
    free: int | None
    free_low: int | None
    free_high: int | None
    reason: str | None = None


@dataclass(frozen=True)
class IssuedForecast:
    """The forecasts of one site made from one observation.

    Attributes
    ----------
    site_id : str
    capacity : int
        Site capacity (spaces).
    observed_at : datetime or None
        Time of the observation the forecasts start from (UTC); targets are
        ``observed_at + horizon``. None when the site has no current observation.
    occupied_now : int or None
        Occupancy observed then (spaces).
    points : tuple of ForecastPoint
        One per horizon (+15/+30/+60 min).
    reason : str or None
        Why there is no forecast at all (no current observation).
    """

    site_id: str
    capacity: int
    observed_at: datetime | None
    occupied_now: int | None
    points: tuple[ForecastPoint, ...]
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record served by ``/v1/parking/sites/{id}/forecast``."""
        base: dict[str, Any] = {"site_id": self.site_id, "capacity": self.capacity,
                                "observed_at": self.observed_at.isoformat() if self.observed_at else None}
        if self.observed_at is None:
            base["forecasts"] = [{"horizon_min": p.horizon_min, "free": None, "free_low": None, "free_high": None,
                                  "reason": p.reason} for p in self.points]
            return base
        base["forecasts"] = [
            {"horizon_min": p.horizon_min, "at": (self.observed_at + timedelta(minutes=p.horizon_min)).isoformat(),
             "free": p.free, "free_low": p.free_low, "free_high": p.free_high, "reason": p.reason}
            for p in self.points
        ]
        return base

    def rows(self, issued_at: datetime) -> list[tuple[Any, ...]]:
        """Rows of ``parking_forecasts`` (``parking.store.FORECAST_COLUMNS`` order) issued at ``issued_at``.

        Only horizons with a forecast whose target time is after ``issued_at`` (a forecast of
        the past is not one).
        """
        if self.observed_at is None or self.occupied_now is None:
            return []
        out = []
        for p in self.points:
            target = self.observed_at + timedelta(minutes=p.horizon_min)
            if p.free is None or p.free_low is None or p.free_high is None or target <= issued_at:
                continue
            out.append((issued_at, self.site_id, p.horizon_min, self.observed_at, target, self.capacity,
                        self.occupied_now, p.free, p.free_low, p.free_high))
        return out


class SiteForecaster:
    """Live forecasts for the sites of a history, fitted once on all of it.

    Parameters
    ----------
    cleaned : DataFrame
        Cleaned readings (see :func:`parking.cleaning.clean_history`) with ``local_min``,
        ``local_date``.
    slot_min : int
        Profile slot width (min).
    min_days : int
        Days of history a site needs to be forecast.
    band_quantile : float
        Central coverage of the band (0.9 = 5th to 95th percentile of residuals).
    """

    def __init__(self, cleaned: pd.DataFrame, slot_min: int = 30, min_days: int = 7, band_quantile: float = 0.9) -> None:
        self.slot_min = slot_min
        self.min_days = min_days
        self.grid = build_grid(cleaned, slot_min) if len(cleaned) else None
        self._residual_bands: dict[tuple[str, int], tuple[float, float]] = {}
        self._pooled_bands: dict[int, tuple[float, float]] = {}
        self._profiles: dict[int, Profiles] = {}
        if self.grid is not None:
            self._site_pos = {s: i for i, s in enumerate(self.grid.sites)}
            walk = walk_forward_profiles(self.grid)
            rho_walk = fit_decay(self.grid, walk)
            self._fit_bands(walk, rho_walk, band_quantile)
            self._final = walk_forward_profiles(self.grid, extra_weekday=0)
            self.rho = fit_decay(self.grid, self._final)[-1]
        else:
            self._site_pos = {}
            self.rho = np.zeros(MAX_LAG_SLOTS + 1)

    def _fit_bands(self, walk: Profiles, rho: FloatArray, coverage: float) -> None:
        """Residual quantiles per site and horizon from walk-forward forecasts on the grid."""
        assert self.grid is not None
        occ = self.grid.occupied
        n_sites, n_days, n_slots = occ.shape
        s, d, k = np.meshgrid(np.arange(n_sites), np.arange(n_days), np.arange(n_slots), indexing="ij")
        ok = ~np.isnan(occ) & (walk.history_days[:, :, None] >= self.min_days)
        s, d, k = s[ok], d[ok], k[ok]
        lo_q, hi_q = (1 - coverage) / 2, 1 - (1 - coverage) / 2
        for h in HORIZONS_MIN:
            pred = predict_occupied(walk, rho, self.slot_min, s, d, k * float(self.slot_min), occ[s, d, k], h)
            lag = h / self.slot_min
            k0 = k + int(np.floor(lag))
            frac = lag - np.floor(lag)
            k1 = np.minimum(k0 + (1 if frac > 0 else 0), n_slots - 1)
            valid = (k0 < n_slots) & ~np.isnan(pred)
            truth = np.full(pred.shape, np.nan)
            a = occ[s[valid], d[valid], np.minimum(k0[valid], n_slots - 1)]
            b = occ[s[valid], d[valid], k1[valid]]
            truth[valid] = (1 - frac) * a + frac * b  # NaN unless both slots were observed
            resid = truth - pred  # occupied error (spaces); the free-space error is its negative
            good = ~np.isnan(resid)
            if not good.any():
                continue
            scale = np.maximum(self.grid.capacity[s[good]], 1.0)
            self._pooled_bands[h] = tuple(np.quantile(resid[good] / scale, [lo_q, hi_q]).tolist())
            frame = pd.DataFrame({"site": s[good], "r": resid[good]})
            for site_i, grp in frame.groupby("site"):
                if len(grp) >= MIN_SITE_RESIDUALS:
                    lo, hi = np.quantile(grp["r"].to_numpy(), [lo_q, hi_q])
                    self._residual_bands[(str(self.grid.sites[int(str(site_i))]), h)] = (float(lo), float(hi))

    def band(self, site_id: str, horizon_min: int, capacity: float) -> tuple[float, float]:
        """Residual quantiles (low, high) of occupancy at a horizon (spaces).

        The site's own walk-forward residuals when it has ``MIN_SITE_RESIDUALS`` of them,
        else the residuals of all sites relative to capacity, scaled to this one.
        """
        own = self._residual_bands.get((site_id, horizon_min))
        if own is not None:
            return own
        lo, hi = self._pooled_bands.get(horizon_min, (0.0, 0.0))
        return lo * capacity, hi * capacity

    def history_days(self, site_id: str) -> int:
        """Days of history the site has (days)."""
        if self.grid is None or site_id not in self._site_pos:
            return 0
        return int(self._final.history_days[self._site_pos[site_id], -1])

    def forecast(
        self,
        site_id: str,
        weekday: int,
        local_min: float,
        occupied_now: float,
        capacity: float,
        horizons: tuple[int, ...] = HORIZONS_MIN,
    ) -> list[ForecastPoint]:
        """Forecast free spaces of one site from its current occupancy.

        Parameters
        ----------
        weekday : int
            Local weekday of now (0 = Monday).
        local_min : float
            Local time of day now (min).
        occupied_now, capacity : float
            Current occupancy and capacity (spaces).
        """
        days = self.history_days(site_id)
        if days < self.min_days:
            reason = f"insufficient history: {days} day(s) of readings, at least {self.min_days} needed"
            return [ForecastPoint(h, None, None, None, reason) for h in horizons]
        assert self.grid is not None
        profiles = self._profiles.get(weekday)
        if profiles is None:
            profiles = walk_forward_profiles(self.grid, extra_weekday=weekday)
            self._profiles[weekday] = profiles
        i = self._site_pos[site_id]
        last_day = profiles.blended.shape[1] - 1
        out = []
        for h in horizons:
            pred = self._predict_one(profiles, i, last_day, local_min, occupied_now, h)
            if np.isnan(pred):
                out.append(ForecastPoint(h, None, None, None, "no history at that time of day"))
                continue
            lo, hi = self.band(site_id, h, capacity)
            occ = float(np.clip(pred, 0, capacity))
            free = capacity - occ
            free_low = float(np.clip(capacity - (pred + hi), 0, capacity))
            free_high = float(np.clip(capacity - (pred + lo), 0, capacity))
            out.append(ForecastPoint(h, round(free), round(free_low), round(free_high)))
        return out

    def _predict_one(self, profiles: Profiles, site_i: int, day_i: int, local_min: float, occupied_now: float, h: int) -> float:
        n_slots = 1440 // self.slot_min
        now_k = int(slot_of(local_min, self.slot_min))
        target = local_min + h
        if target >= 1440 - self.slot_min / 2:
            return float("nan")
        target_k = int(slot_of(target, self.slot_min)) % n_slots
        p_now = profiles.blended[site_i, day_i, now_k]
        p_target = profiles.blended[site_i, day_i, target_k]
        rho = float(decay_at(self.rho, h, self.slot_min))
        return float(p_target + rho * (occupied_now - p_now))

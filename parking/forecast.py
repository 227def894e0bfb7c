"""Free-space forecasts: the profile model blended walk-forward with persistence and the seasonal forecast.

At every reading of a site (time ``t``) and horizon ``h`` (+15/+30/+60 min) three candidate
forecasts of the occupancy at ``t + h`` are made from data up to ``t`` only:

- ``persistence``: the occupancy now;
- ``model``: the weekday x time-of-day profile plus the decayed deviation from it
  (:mod:`parking.profiles`);
- ``seasonal``: the reading nearest ``t + h`` one week earlier (within +-10 min), else the
  all-days mean at that time of day.

The forecast is their convex blend with weights learnt walk-forward per site and horizon
(:func:`parking.blend.walk_forward_weights`: the weights with the smallest absolute error on
earlier days, shrunk toward all sites'). Its uncertainty band and the chance of a free space
come from the quantiles of the blended forecast's own errors on earlier days
(:func:`parking.blend.walk_forward_quantiles`). The evaluation (:mod:`parking.evaluate`) scores
exactly these walk-forward forecasts; :class:`SiteForecaster` serves them live, with the
weights and error quantiles learnt on all of its history.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from parking.blend import (
    combine,
    free_probability,
    quantile_at,
    walk_forward_quantiles,
    walk_forward_weights,
)
from parking.profiles import (
    MAX_LAG_SLOTS,
    FloatArray,
    IntArray,
    OccupancyGrid,
    Profiles,
    build_grid,
    decay_at,
    fit_decay,
    nearest_reading,
    predict_occupied,
    profile_at,
    slot_of,
    walk_forward_profiles,
)

__all__ = [
    "HORIZONS_MIN",
    "ForecastPoint",
    "HorizonForecasts",
    "IssuedForecast",
    "Observations",
    "OccupancyGrid",
    "Profiles",
    "SiteForecaster",
    "WalkForward",
    "build_grid",
    "decay_at",
    "fit_decay",
    "nearest_reading",
    "predict_occupied",
    "profile_at",
    "walk_forward",
    "walk_forward_profiles",
]

HORIZONS_MIN = (15, 30, 60)
TRUTH_TOLERANCE_S = 600  # a reading within this of t + h is the truth of a forecast (s)
WEEK_S = 7 * 86400
MIN_SITE_RESIDUALS = 30  # errors a site needs for its own band; fewer: all sites' relative errors
BLEND_PRIOR_POINTS = 100.0
BLEND_DECAY = 0.95
MAX_BLEND_ROWS = 300_000  # past forecasts the blend weights of a horizon are learnt from at most


@dataclass(frozen=True)
class Observations:
    """Cleaned readings as forecast origins; arrays of one length ``N``, sorted by site and time.

    Attributes
    ----------
    site, day : ndarray of int
        Grid indices of the site and local day.
    time_s : ndarray of int
        UTC time (s since the epoch).
    local_min : ndarray of float
        Local time of day (min).
    occupied, free, capacity : ndarray of float
        Occupied and free spaces and capacity (spaces).
    """

    site: IntArray
    day: IntArray
    time_s: IntArray
    local_min: FloatArray
    occupied: FloatArray
    free: FloatArray
    capacity: FloatArray

    @classmethod
    def of(cls, cleaned: pd.DataFrame, grid: OccupancyGrid) -> Observations:
        """From cleaned readings (:func:`parking.cleaning.clean_history` columns, sorted by site and time)."""
        occupied = cleaned["occupied"].to_numpy(dtype=np.float64)
        capacity = cleaned["capacity"].to_numpy(dtype=np.float64)
        return cls(
            site=np.searchsorted(grid.sites, cleaned["site_id"].to_numpy().astype(str)).astype(np.int64),
            day=np.searchsorted(grid.days, cleaned["local_date"].to_numpy().astype("datetime64[D]")).astype(np.int64),
            time_s=((cleaned["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy().astype(np.int64),
            local_min=cleaned["local_min"].to_numpy(dtype=np.float64),
            occupied=occupied,
            free=capacity - occupied,
            capacity=capacity,
        )

    def of_site(self, site: int) -> Observations:
        """The readings of one site (views; the arrays are sorted by site)."""
        lo, hi = np.searchsorted(self.site, [site, site + 1])
        return Observations(*(getattr(self, f.name)[lo:hi] for f in fields(self)))


@dataclass(frozen=True)
class HorizonForecasts:
    """Walk-forward forecasts at one horizon from every observation (occupancy, spaces).

    Attributes
    ----------
    horizon_min : int
    candidates : ndarray, shape (N, 3)
        Persistence, model and seasonal forecasts; NaN where a candidate has none.
    truth : ndarray, shape (N,)
        Occupancy observed nearest ``t + h`` within :data:`TRUTH_TOLERANCE_S`; NaN if none.
    mature : ndarray of bool, shape (N,)
        The site had the minimum days of history at ``t`` (otherwise no forecast is served).
    weights : ndarray, shape (S, D + 1, 3)
        Blend weights per site and day from earlier days (``D``: after the last day).
    blended : ndarray, shape (N,)
        The forecast: candidates blended with the weights of their site and day.
    """

    horizon_min: int
    candidates: FloatArray
    truth: FloatArray
    mature: npt.NDArray[np.bool_]
    weights: FloatArray
    blended: FloatArray

    @property
    def scored(self) -> npt.NDArray[np.bool_]:
        """Forecasts every method made and that have a truth: the ones evaluated and learnt from."""
        return self.mature & ~np.isnan(self.truth) & ~np.isnan(self.candidates).any(axis=1)


@dataclass(frozen=True)
class WalkForward:
    """Everything fitted walk-forward on a history."""

    grid: OccupancyGrid
    profiles: Profiles
    rho: FloatArray
    obs: Observations
    horizons: dict[int, HorizonForecasts]


def seasonal_forecast(
    obs: Observations, all_days: FloatArray, slot_min: int, site: IntArray, day: IntArray,
    time_s: IntArray, local_min: FloatArray, capacity: FloatArray, horizon_min: int,
) -> FloatArray:
    """Occupancy a week before each target (``time_s + h - 7 days``; the reading nearest it within
    :data:`TRUTH_TOLERANCE_S`, as free spaces off the capacity now), else the all-days mean at the
    target's slot (spaces; NaN without either)."""
    week = nearest_reading(obs.site, obs.time_s, site, time_s + horizon_min * 60 - WEEK_S, TRUTH_TOLERANCE_S)
    mean_then = all_days[site, day, slot_of(local_min + horizon_min, slot_min)]
    return np.where(week >= 0, capacity - obs.free[np.clip(week, 0, None)], np.clip(mean_then, 0.0, capacity))


def walk_forward(cleaned: pd.DataFrame, slot_min: int = 30, min_days: int = 7,
                 prior_points: float = BLEND_PRIOR_POINTS, decay: float = BLEND_DECAY) -> WalkForward:
    """Fit profiles, decay and blend weights walk-forward and forecast from every reading.

    Parameters
    ----------
    cleaned : DataFrame
        Cleaned readings (:func:`parking.cleaning.clean_history`), sorted by site and time.
    slot_min : int
        Profile slot width (min).
    min_days : int
        Days of history a site needs to be forecast (and for its forecasts to be learnt from).
    prior_points, decay : float
        Shrinkage and forgetting of the blend weights (:func:`parking.blend.walk_forward_weights`).
    """
    grid = build_grid(cleaned, slot_min)
    profiles = walk_forward_profiles(grid)
    rho = fit_decay(grid, profiles)
    obs = Observations.of(cleaned, grid)
    n_sites, n_days = len(grid.sites), len(grid.days)
    mature = profiles.history_days[obs.site, obs.day] >= min_days
    out: dict[int, HorizonForecasts] = {}
    for h in HORIZONS_MIN:
        truth_i = nearest_reading(obs.site, obs.time_s, obs.site, obs.time_s + h * 60, TRUTH_TOLERANCE_S)
        truth = np.where(truth_i >= 0, obs.occupied[np.clip(truth_i, 0, None)], np.nan)
        model = predict_occupied(profiles, rho, slot_min, obs.site, obs.day, obs.local_min, obs.occupied, h)
        seasonal = seasonal_forecast(obs, profiles.all_days, slot_min, obs.site, obs.day, obs.time_s,
                                     obs.local_min, obs.capacity, h)
        candidates = np.stack([obs.occupied, np.clip(model, 0.0, obs.capacity), seasonal], axis=1)
        scored = np.flatnonzero(mature & ~np.isnan(truth) & ~np.isnan(candidates).any(axis=1))
        learn = scored[::max(1, -(-scored.size // MAX_BLEND_ROWS))]  # every k-th: bounded cost on big networks
        weights = walk_forward_weights(obs.site[learn], obs.day[learn], candidates[learn], truth[learn],
                                       n_sites, n_days, prior_points, decay)
        blended = combine(candidates, weights[obs.site, obs.day])
        blended = np.where(np.isnan(model), np.nan, blended)  # no forecast where the model has none
        out[h] = HorizonForecasts(h, candidates, truth, mature, weights, blended)
    return WalkForward(grid, profiles, rho, obs, out)


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
    occupied : float or None
        Forecast occupancy, unrounded (spaces).
    error_quantiles : ndarray or None
        Quantiles at :data:`parking.blend.LEVELS` of the errors (observed minus forecast
        occupancy, spaces) this site's forecasts at this horizon made before: the
        predictive distribution is ``occupied + error``.
    """

    horizon_min: int
    free: int | None
    free_low: int | None
    free_high: int | None
    reason: str | None = None
    occupied: float | None = field(default=None, compare=False)
    error_quantiles: FloatArray | None = field(default=None, compare=False, repr=False)


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
        ``local_date``, sorted by site and time.
    slot_min : int
        Profile slot width (min).
    min_days : int
        Days of history a site needs to be forecast.
    band_quantile : float
        Central coverage of the band (0.9 = 5th to 95th percentile of past errors).
    prior_points, decay : float
        Shrinkage and forgetting of the blend weights (:func:`parking.blend.walk_forward_weights`).
    """

    def __init__(self, cleaned: pd.DataFrame, slot_min: int = 30, min_days: int = 7, band_quantile: float = 0.9,
                 prior_points: float = BLEND_PRIOR_POINTS, decay: float = BLEND_DECAY) -> None:
        self.slot_min = slot_min
        self.min_days = min_days
        self.band_levels = ((1 - band_quantile) / 2, 1 - (1 - band_quantile) / 2)
        self.walk = walk_forward(cleaned, slot_min, min_days, prior_points, decay) if len(cleaned) else None
        self.grid = self.walk.grid if self.walk is not None else None
        self._profiles: dict[int, Profiles] = {}
        self._weights: dict[int, FloatArray] = {}  # per horizon: (S, 3) for live forecasts
        self._errors: dict[int, FloatArray] = {}  # per horizon: (S, len(LEVELS)) error quantiles
        self._site_pos: dict[str, int] = {}
        self.rho = np.zeros(MAX_LAG_SLOTS + 1)
        if self.walk is not None and self.grid is not None:
            self._site_pos = {s: i for i, s in enumerate(self.grid.sites)}
            n_sites, n_days = len(self.grid.sites), len(self.grid.days)
            obs = self.walk.obs
            for h, hf in self.walk.horizons.items():
                self._weights[h] = hf.weights[:, n_days]
                ok = hf.scored
                self._errors[h] = walk_forward_quantiles(
                    obs.site[ok], obs.day[ok], hf.truth[ok] - hf.blended[ok], self.grid.capacity,
                    n_sites, n_days, MIN_SITE_RESIDUALS, days=np.array([n_days]))[:, n_days]
            self._final = walk_forward_profiles(self.grid, extra_weekday=0)
            self.rho = fit_decay(self.grid, self._final)[-1]

    def weights(self, site_id: str, horizon_min: int) -> FloatArray | None:
        """Blend weights (persistence, model, seasonal) the site's live forecasts use at a horizon."""
        i = self._site_pos.get(site_id)
        return None if i is None or horizon_min not in self._weights else self._weights[horizon_min][i]

    def error_quantiles(self, site_id: str, horizon_min: int) -> FloatArray | None:
        """Quantiles (:data:`parking.blend.LEVELS`) of the site's past forecast errors (spaces)."""
        i = self._site_pos.get(site_id)
        if i is None or horizon_min not in self._errors or np.isnan(self._errors[horizon_min][i]).any():
            return None
        return self._errors[horizon_min][i]

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
        at: datetime | None = None,
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
        at : datetime, optional
            Time of the current reading (aware), for the seasonal candidate (the reading a
            week before the target); without it, the all-days profile stands in.
        """
        days = self.history_days(site_id)
        if days < self.min_days:
            reason = f"insufficient history: {days} day(s) of readings, at least {self.min_days} needed"
            return [ForecastPoint(h, None, None, None, reason) for h in horizons]
        assert self.grid is not None and self.walk is not None
        profiles = self._profiles.get(weekday)
        if profiles is None:
            profiles = walk_forward_profiles(self.grid, extra_weekday=weekday)
            self._profiles[weekday] = profiles
        i = np.array([self._site_pos[site_id]])
        own = self.walk.obs.of_site(int(i[0]))
        day = np.array([profiles.blended.shape[1] - 1])
        rho = np.broadcast_to(self.rho, (profiles.blended.shape[1], self.rho.size))
        now_s = np.array([int(at.timestamp()) if at is not None else -(1 << 40)], dtype=np.int64)
        out = []
        for h in horizons:
            model = predict_occupied(profiles, rho, self.slot_min, i, day, np.array([local_min]),
                                     np.array([occupied_now]), h)
            model = np.clip(model, 0.0, capacity)
            seasonal = seasonal_forecast(own, profiles.all_days, self.slot_min, i, day, now_s,
                                         np.array([local_min]), np.array([capacity]), h)
            weights = self.weights(site_id, h)
            errors = self.error_quantiles(site_id, h)
            if np.isnan(model[0]) or weights is None or errors is None:
                out.append(ForecastPoint(h, None, None, None, "no history at that time of day"))
                continue
            cands = np.array([[occupied_now, model[0], seasonal[0]]])
            pred = float(np.clip(combine(cands, weights[None, :])[0], 0.0, capacity))
            lo, hi = (float(quantile_at(errors, q)) for q in self.band_levels)
            free = capacity - pred
            free_low = float(np.clip(capacity - (pred + hi), 0, capacity))
            free_high = float(np.clip(capacity - (pred + lo), 0, capacity))
            out.append(ForecastPoint(h, round(free), round(free_low), round(free_high), None, pred, errors))
        return out

    @staticmethod
    def chance_of_space(point: ForecastPoint, capacity: float) -> float | None:
        """Chance of at least one free space at the point's target (see :func:`parking.blend.free_probability`)."""
        if point.occupied is None or point.error_quantiles is None:
            return None
        return float(free_probability([point.occupied], [capacity], point.error_quantiles[None, :])[0])

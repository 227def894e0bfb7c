"""Walk-forward evaluation of free-space forecasts against persistence and seasonal baselines.

Methodology (fixed by the issue): clean the input as the live path does; at each observation
time ``t`` of a site, forecast free spaces at ``t + h`` (h = 15, 30, 60 min) from data up to
``t`` only; the truth is the site's observation nearest ``t + h`` within +-10 min (otherwise
skipped). Baselines in the same run, on the same forecast points: ``persistence`` (free now)
and ``seasonal`` (the observation nearest the same weekday and time one week earlier, within
+-10 min, else the historical mean at that time of day). A site is forecast only once it has
``forecast_min_days`` days of history, so every method is scored on the same points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from parking.cleaning import CleaningReport, clean_history, read_history_csv
from parking.config import ParkingSettings
from parking.forecast import (
    HORIZONS_MIN,
    IntArray,
    build_grid,
    fit_decay,
    predict_occupied,
    slot_of,
    walk_forward_profiles,
)

__all__ = ["ParkingEvaluation", "evaluate_history", "evaluate_history_file", "nearest_reading"]

TRUTH_TOLERANCE_S = 600
WEEK_S = 7 * 86400


@dataclass(frozen=True)
class ParkingEvaluation:
    """Result of a walk-forward evaluation; errors are mean absolute errors in free spaces."""

    sites: int
    forecasts: int
    mae_free: dict[str, float | None]
    baselines: dict[str, dict[str, float | None]]
    cleaned: CleaningReport
    counts: dict[str, int] = field(default_factory=dict)
    points: pd.DataFrame | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        """The JSON object printed on the last line of ``its eval parking --json``."""
        return {
            "sites": self.sites,
            "forecasts": self.forecasts,
            "mae_free": self.mae_free,
            "baselines": self.baselines,
            "cleaned": self.cleaned.as_dict(),
        }

    def summary(self) -> str:
        """Human-readable table of the results."""
        lines = [
            f"sites: {self.sites}, forecasts scored: {self.forecasts}",
            f"cleaned: {self.cleaned.over_capacity} over capacity, {self.cleaned.negative} negative"
            f" (clamped {self.cleaned.clamped}), {self.cleaned.duplicates} duplicates dropped",
            "points with a truth but under the minimum history (not forecast, reason given): "
            + ", ".join(f"{h} min {self.counts.get('thin_' + h, 0)}" for h in self.mae_free),
            f"{'horizon':>8} {'n':>6} {'model':>8} {'persist':>8} {'seasonal':>8} {'gain':>7}",
        ]
        for h in self.mae_free:
            model = self.mae_free[h]
            pers = self.baselines["persistence"][h]
            seas = self.baselines["seasonal"][h]
            best = min(v for v in (pers, seas, float("inf")) if v is not None)
            gain = f"{100 * (1 - model / best):6.1f}%" if model is not None and best not in (0, float("inf")) else "    n/a"
            lines.append(
                f"{h + ' min':>8} {self.counts.get(h, 0):>6} {_fmt(model)} {_fmt(pers)} {_fmt(seas)} {gain}"
            )
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else "     n/a"


def nearest_reading(
    keys: npt.ArrayLike, times_s: npt.ArrayLike, query_keys: npt.ArrayLike,
    query_s: npt.ArrayLike, tolerance_s: int,
) -> npt.NDArray[np.int64]:
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


def evaluate_history(history: pd.DataFrame, settings: ParkingSettings | None = None) -> ParkingEvaluation:
    """Evaluate forecasts on a history (as from :func:`parking.cleaning.read_history_csv`)."""
    settings = settings or ParkingSettings()
    cleaned, report = clean_history(history)
    grid = build_grid(cleaned, settings.forecast_slot_min)
    profiles = walk_forward_profiles(grid)
    rho = fit_decay(grid, profiles)

    site_idx: IntArray = np.searchsorted(grid.sites, cleaned["site_id"].to_numpy().astype(str))
    day_idx: IntArray = np.searchsorted(grid.days, cleaned["local_date"].to_numpy().astype("datetime64[D]"))
    times_s = ((cleaned["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    local_min = cleaned["local_min"].to_numpy(dtype=np.float64)
    occupied = cleaned["occupied"].to_numpy(dtype=np.float64)
    free = cleaned["free"].to_numpy(dtype=np.float64)
    capacity = cleaned["capacity"].to_numpy(dtype=np.float64)
    keys = site_idx.astype(np.int64)
    enough = profiles.history_days[site_idx, day_idx] >= settings.forecast_min_days

    mae: dict[str, float | None] = {}
    persistence: dict[str, float | None] = {}
    seasonal: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    parts: list[pd.DataFrame] = []
    for h in HORIZONS_MIN:
        label = str(h)
        truth_i = nearest_reading(keys, times_s, keys, times_s + h * 60, TRUTH_TOLERANCE_S)
        pred_occ = predict_occupied(profiles, rho, grid.slot_min, site_idx, day_idx, local_min, occupied, h)
        pred_free = capacity - np.clip(pred_occ, 0.0, capacity)
        week_i = nearest_reading(keys, times_s, keys, times_s + h * 60 - WEEK_S, TRUTH_TOLERANCE_S)
        target_slot = slot_of(local_min + h, grid.slot_min)
        mean_then = profiles.all_days[site_idx, day_idx, target_slot]
        seasonal_free = np.where(
            week_i >= 0, free[np.clip(week_i, 0, None)], capacity - np.clip(mean_then, 0.0, capacity)
        )
        scored = (truth_i >= 0) & enough & ~np.isnan(pred_free) & ~np.isnan(seasonal_free)
        truth = free[truth_i[scored]]
        counts[label] = int(scored.sum())
        counts[f"thin_{label}"] = int(((truth_i >= 0) & ~enough).sum())
        mae[label] = _mae(pred_free[scored], truth)
        persistence[label] = _mae(free[scored], truth)
        seasonal[label] = _mae(seasonal_free[scored], truth)
        parts.append(pd.DataFrame({
            "site_id": cleaned["site_id"].to_numpy()[scored], "time": cleaned["time"].to_numpy()[scored],
            "horizon_min": h, "truth": truth, "model": pred_free[scored],
            "persistence": free[scored], "seasonal": seasonal_free[scored],
        }))
    return ParkingEvaluation(
        sites=len(grid.sites),
        forecasts=int(sum(counts[str(h)] for h in HORIZONS_MIN)),
        mae_free=mae,
        baselines={"persistence": persistence, "seasonal": seasonal},
        cleaned=report,
        counts=counts,
        points=pd.concat(parts, ignore_index=True),
    )


def _mae(pred: npt.NDArray[np.float64], truth: npt.NDArray[np.float64]) -> float | None:
    return round(float(np.mean(np.abs(pred - truth))), 3) if pred.size else None


def evaluate_history_file(path: str | Path, settings: ParkingSettings | None = None) -> ParkingEvaluation:
    """Read, clean and evaluate a parking history CSV (``site_id,timestamp,capacity,occupied``)."""
    return evaluate_history(read_history_csv(path), settings)

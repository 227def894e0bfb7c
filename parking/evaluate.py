"""Walk-forward evaluation of free-space forecasts against persistence and seasonal baselines.

Methodology (fixed by the issue): clean the input as the live path does; at each observation
time ``t`` of a site, forecast free spaces at ``t + h`` (h = 15, 30, 60 min) from data up to
``t`` only; the truth is the site's observation nearest ``t + h`` within +-10 min (otherwise
skipped). Baselines in the same run, on the same forecast points: ``persistence`` (free now)
and ``seasonal`` (the observation nearest the same weekday and time one week earlier, within
+-10 min, else the historical mean at that time of day). A site is forecast only once it has
``forecast_min_days`` days of history, so every method is scored on the same points.

The forecast scored is the one served (:func:`parking.forecast.walk_forward`: profile model
blended with persistence and seasonal, weights learnt on earlier days). The points of the
last ``holdout_days`` local days of the file are reported apart (``holdout``) from the ones
before (``train``); nothing is fitted differently for them, they are the part kept unseen
while the method was developed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from parking.blend import CANDIDATES
from parking.cleaning import CleaningReport, clean_history, read_history_csv
from parking.config import ParkingSettings
from parking.forecast import HORIZONS_MIN, walk_forward
from parking.profiles import nearest_reading
from parking.resample import resample_readings

__all__ = ["ParkingEvaluation", "Scores", "evaluate_history", "evaluate_history_file", "nearest_reading"]


@dataclass(frozen=True)
class Scores:
    """Mean absolute errors (free spaces) per horizon (``"15"``, ``"30"``, ``"60"``) on a set of points."""

    model: dict[str, float | None]
    persistence: dict[str, float | None]
    seasonal: dict[str, float | None]
    profile: dict[str, float | None]
    counts: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "mae_free": self.model,
            "baselines": {"persistence": self.persistence, "seasonal": self.seasonal},
            "counts": self.counts,
        }


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
    train: Scores | None = None
    holdout: Scores | None = None
    holdout_from: str | None = None
    profile_mae: dict[str, float | None] = field(default_factory=dict)
    blend_weights: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The JSON object printed on the last line of ``its eval parking --json``."""
        out: dict[str, Any] = {
            "sites": self.sites,
            "forecasts": self.forecasts,
            "mae_free": self.mae_free,
            "baselines": self.baselines,
            "cleaned": self.cleaned.as_dict(),
            "profile_model": self.profile_mae,
            "blend_weights": self.blend_weights,
        }
        if self.train is not None and self.holdout is not None:
            out["train"] = self.train.as_json()
            out["holdout"] = {"from": self.holdout_from, **self.holdout.as_json()}
        return out

    def summary(self) -> str:
        """Human-readable table of the results."""
        lines = [
            f"sites: {self.sites}, forecasts scored: {self.forecasts}",
            f"cleaned: {self.cleaned.over_capacity} over capacity, {self.cleaned.negative} negative"
            f" (clamped {self.cleaned.clamped}), {self.cleaned.duplicates} duplicates dropped",
            "points with a truth but under the minimum history (not forecast, reason given): "
            + ", ".join(f"{h} min {self.counts.get('thin_' + h, 0)}" for h in self.mae_free),
        ]
        parts = [("all", Scores(self.mae_free, self.baselines["persistence"], self.baselines["seasonal"],
                                self.profile_mae, {h: self.counts.get(h, 0) for h in self.mae_free}))]
        if self.train is not None and self.holdout is not None:
            parts += [("train", self.train), (f"holdout from {self.holdout_from}", self.holdout)]
        for name, sc in parts:
            lines.append(f"{name}:")
            lines.append(f"{'horizon':>8} {'n':>6} {'model':>8} {'persist':>8} {'seasonal':>8} {'gain':>7} {'profile':>8}")
            for h in sc.model:
                lines.append(_row(h, sc))
        lines.append("mean blend weights (persistence/model/seasonal): " + ", ".join(
            f"{h} min {w['persistence']:.2f}/{w['model']:.2f}/{w['seasonal']:.2f}" for h, w in self.blend_weights.items()))
        return "\n".join(lines)


def _row(h: str, sc: Scores) -> str:
    model, pers, seas = sc.model[h], sc.persistence[h], sc.seasonal[h]
    best = min(v for v in (pers, seas, float("inf")) if v is not None)
    gain = f"{100 * (1 - model / best):6.1f}%" if model is not None and best not in (0, float("inf")) else "    n/a"
    return f"{h + ' min':>8} {sc.counts.get(h, 0):>6} {_fmt(model)} {_fmt(pers)} {_fmt(seas)} {gain} {_fmt(sc.profile[h])}"


def _fmt(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else "     n/a"


def _scores(points: pd.DataFrame) -> Scores:
    out: dict[str, dict[str, float | None]] = {k: {} for k in ("model", "persistence", "seasonal", "profile")}
    counts: dict[str, int] = {}
    for h in HORIZONS_MIN:
        part = points[points["horizon_min"] == h]
        counts[str(h)] = len(part)
        for k in out:
            out[k][str(h)] = _mae(part[k].to_numpy(), part["truth"].to_numpy())
    return Scores(out["model"], out["persistence"], out["seasonal"], out["profile"], counts)


def evaluate_history(history: pd.DataFrame, settings: ParkingSettings | None = None,
                     holdout_days: int = 14) -> ParkingEvaluation:
    """Evaluate forecasts on a history (as from :func:`parking.cleaning.read_history_csv`).

    Parameters
    ----------
    holdout_days : int
        The last this many local days of the history are scored apart (``holdout``); 0 for none.
    """
    settings = settings or ParkingSettings()
    cleaned, report = clean_history(history)
    walk = walk_forward(cleaned, settings.forecast_slot_min, settings.forecast_min_days,
                        settings.forecast_blend_prior_points, settings.forecast_blend_decay)
    obs, grid = walk.obs, walk.grid
    counts: dict[str, int] = {}
    parts: list[pd.DataFrame] = []
    weights: dict[str, dict[str, float]] = {}
    site_ids = cleaned["site_id"].to_numpy()
    times = cleaned["time"].to_numpy()
    for h, hf in walk.horizons.items():
        scored = hf.scored & ~np.isnan(hf.blended)
        counts[str(h)] = int(scored.sum())
        counts[f"thin_{h}"] = int((~np.isnan(hf.truth) & ~hf.mature).sum())
        cap = obs.capacity[scored]
        w = hf.weights[obs.site[scored], obs.day[scored]]
        if len(w):
            weights[str(h)] = {name: round(float(w[:, k].mean()), 3) for k, name in enumerate(CANDIDATES)}
        parts.append(pd.DataFrame({
            "site_id": site_ids[scored], "time": times[scored], "horizon_min": h,
            "truth": cap - hf.truth[scored], "model": cap - hf.blended[scored],
            "persistence": obs.free[scored], "seasonal": cap - hf.candidates[scored, 2],
            "profile": cap - hf.candidates[scored, 1], "local_date": grid.days[obs.day[scored]],
        }))
    points = pd.concat(parts, ignore_index=True)
    everything = _scores(points)
    train = holdout = None
    holdout_from = None
    if holdout_days > 0 and len(grid.days):
        cut = grid.days[-1] - np.timedelta64(holdout_days - 1, "D")
        holdout_from = str(cut)
        late = points["local_date"].to_numpy() >= cut
        train, holdout = _scores(points[~late]), _scores(points[late])
    return ParkingEvaluation(
        sites=len(grid.sites),
        forecasts=int(sum(counts[str(h)] for h in HORIZONS_MIN)),
        mae_free=everything.model,
        baselines={"persistence": everything.persistence, "seasonal": everything.seasonal},
        cleaned=report,
        counts=counts,
        points=points.drop(columns=["local_date"]),
        train=train,
        holdout=holdout,
        holdout_from=holdout_from,
        profile_mae=everything.profile,
        blend_weights=weights,
    )


def _mae(pred: npt.NDArray[np.float64], truth: npt.NDArray[np.float64]) -> float | None:
    return round(float(np.mean(np.abs(pred - truth))), 3) if pred.size else None


def evaluate_history_file(path: str | Path, settings: ParkingSettings | None = None, holdout_days: int = 14,
                          every_min: int | None = None) -> ParkingEvaluation:
    """Read, clean and evaluate a parking history CSV (``site_id,timestamp,capacity,occupied``).

    Parameters
    ----------
    every_min : int, optional
        First resample the readings to one every this many minutes
        (:func:`parking.resample.resample_readings`), as a counter polled at that rate would give.
    """
    history = read_history_csv(path)
    if every_min is not None:
        history = resample_readings(history, every_min)
    return evaluate_history(history, settings, holdout_days)

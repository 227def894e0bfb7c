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
from parking.forecast import HORIZONS_MIN, TRUTH_TOLERANCE_S, WalkForward, walk_forward
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
    notes: tuple[str, ...] = ()

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
            f" (clamped {self.cleaned.clamped}), {self.cleaned.duplicates} duplicates dropped"
            + (f", {self.cleaned.zero_capacity} readings with capacity 0 dropped" if self.cleaned.zero_capacity else ""),
            *(f"note: {n}" for n in self.notes),
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
        When it is the history's length or more, every point is in the holdout (``from`` is
        the first day) and ``train`` is empty.

    Returns
    -------
    ParkingEvaluation
        Empty (no forecast scored, MAEs None, ``notes`` saying why) when the history has no
        readings, no site reaches ``forecast_min_days`` of history, or no reading lies within
        +-10 min of a forecast's target.
    """
    settings = settings or ParkingSettings()
    cleaned, report = clean_history(history)
    if cleaned.empty:
        return _empty_evaluation(report, holdout_days, "no readings to forecast from"
                                 + (" (every reading had capacity 0)" if report.zero_capacity else ""))
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
        cut = max(grid.days[-1] - np.timedelta64(holdout_days - 1, "D"), grid.days[0])
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
        notes=_why_nothing_scored(walk, settings.forecast_min_days) if points.empty else (),
    )


def _empty_evaluation(report: CleaningReport, holdout_days: int, note: str) -> ParkingEvaluation:
    """The evaluation of a history without any reading to forecast from."""
    nothing = _scores(pd.DataFrame({k: pd.Series(dtype=np.float64) for k in
                                    ("horizon_min", "truth", "model", "persistence", "seasonal", "profile")}))
    counts = {**{str(h): 0 for h in HORIZONS_MIN}, **{f"thin_{h}": 0 for h in HORIZONS_MIN}}
    return ParkingEvaluation(
        sites=0, forecasts=0, mae_free=nothing.model,
        baselines={"persistence": nothing.persistence, "seasonal": nothing.seasonal}, cleaned=report,
        counts=counts, points=pd.DataFrame(columns=["site_id", "time", "horizon_min", "truth", "model", "persistence",
                                                    "seasonal", "profile"]),
        train=nothing if holdout_days > 0 else None, holdout=nothing if holdout_days > 0 else None,
        profile_mae=nothing.profile, notes=(note,),
    )


def _why_nothing_scored(walk: WalkForward, min_days: int) -> tuple[str, ...]:
    """Why a walk-forward run scored no forecast: too short a history, or no truth near the targets."""
    longest = int(walk.profiles.history_days.max()) if walk.profiles.history_days.size else 0
    if longest < min_days:
        return (f"no forecast scored: a site is forecast once it has {min_days} days of history"
                f" (ITS_PARKING_FORECAST_MIN_DAYS); the longest here has {longest} earlier day(s)",)
    obs = walk.obs
    same = np.diff(obs.site) == 0
    gaps = np.diff(obs.time_s)[same]
    typical = f"; readings are about {np.median(gaps) / 60:.0f} min apart" if gaps.size else ""
    return (f"no forecast scored: no reading lies within +-{TRUTH_TOLERANCE_S // 60} min of t + 15, 30 or"
            f" 60 min{typical} (resample with --every-min to score another rate)",)


def _mae(pred: npt.NDArray[np.float64], truth: npt.NDArray[np.float64]) -> float | None:
    return round(float(np.mean(np.abs(pred - truth))), 3) if pred.size else None


def evaluate_history_file(path: str | Path, settings: ParkingSettings | None = None, holdout_days: int = 14,
                          every_min: int | None = None, timezone: str | None = None) -> ParkingEvaluation:
    """Read, clean and evaluate a parking history CSV (``site_id,timestamp,capacity,occupied``).

    Parameters
    ----------
    every_min : int, optional
        First resample the readings to one every this many minutes
        (:func:`parking.resample.resample_readings`), as a counter polled at that rate would give.
    timezone : str, optional
        IANA time zone of the readings (:func:`parking.cleaning.parse_history`): needed for
        timestamps without a UTC offset; with it every reading's local time is taken there.
    """
    history = read_history_csv(path, timezone)
    if every_min is not None:
        history = resample_readings(history, every_min)
    return evaluate_history(history, settings, holdout_days)

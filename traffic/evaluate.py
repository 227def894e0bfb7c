"""Congestion evaluation with the fixed methodology of issue 6.

For each timestamp of the test speeds a seeded random subset of segments (the observed
fraction, ``rng = numpy.random.default_rng(seed)``, one ``rng.permutation`` per timestamp)
is visible. The live :class:`traffic.congestion.CongestionEstimator` — the same code the
service runs, here with the gradient-boosted model of :mod:`traffic.boosted` (over the
per-segment linear model of :mod:`traffic.learned`) fitted on TRAIN (its own visible
subsets, drawn from ``default_rng([seed, 1])``) since every segment has a speed history —
receives the visible speeds of that timestamp (having received all earlier
ones) and predicts every segment; the mean absolute error is taken over the hidden
segments that have a true speed. History (the historical profile, free-flow speeds, the
model) comes only from TRAIN. Baselines in the same run: ``free_flow`` = 95th percentile of the
segment's TRAIN speeds; ``historical`` = the segment's mean TRAIN speed at that time of day.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from traffic.boosted import fit_boosted_model
from traffic.config import TrafficSettings
from traffic.congestion import CongestionEstimator, SpeedProfile
from traffic.learned import SpeedModel, fit_segment_model
from traffic.segment_graph import SegmentGraph, SpeedTable, read_segment_graph, read_speeds

__all__ = ["MIN_HISTORY_TIMESTAMPS", "MODELS", "CongestionEval", "evaluate_congestion", "evaluate_files", "split_by_days"]

KMH = 3.6
#: ``--model`` choices: trees over the linear model, the linear model alone, graph smoothing alone.
MODELS = ("boosted", "linear", "smoothing")
#: Fewest history timestamps the learned models fit on: twice their 12-timestamp warm-up.
MIN_HISTORY_TIMESTAMPS = 24


@dataclass(frozen=True)
class CongestionEval:
    """Scores of one evaluation run (km/h)."""

    timestamps: int
    hidden: int
    mae_kmh: float
    free_flow_mae_kmh: float
    historical_mae_kmh: float
    observed_frac: float
    seed: int
    references: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The issue's JSON object (plus ``references`` when they were computed)."""
        out: dict[str, Any] = {
            "timestamps": self.timestamps,
            "hidden": self.hidden,
            "mae_kmh": round(self.mae_kmh, 4),
            "baselines": {"free_flow": round(self.free_flow_mae_kmh, 4),
                          "historical": round(self.historical_mae_kmh, 4)},
        }
        if self.references:
            out["references"] = {k: round(v, 4) for k, v in self.references.items()}
        return out

    def summary(self) -> str:
        """One human-readable paragraph."""
        def gain(base: float) -> str:
            return f"{100 * (1 - self.mae_kmh / base):.1f}% below" if base > 0 else "n/a"
        return (
            f"congestion eval: {self.timestamps} timestamps, {self.hidden} hidden values "
            f"(observed fraction {self.observed_frac:g}, seed {self.seed})\n"
            f"  estimator  MAE {self.mae_kmh:.3f} km/h\n"
            f"  free_flow  MAE {self.free_flow_mae_kmh:.3f} km/h ({gain(self.free_flow_mae_kmh)})\n"
            f"  historical MAE {self.historical_mae_kmh:.3f} km/h ({gain(self.historical_mae_kmh)})"
        ) + "".join(f"\n  reference {k}: MAE {v:.3f} km/h" for k, v in self.references.items())


def split_by_days(speeds: SpeedTable, train_days: int) -> tuple[SpeedTable, SpeedTable]:
    """First ``train_days`` local calendar days → train, the remaining days → test."""
    day = speeds.local_day()
    days = np.unique(day)
    if len(days) < 2:
        raise ValueError(f"the speeds cover {len(days)} local calendar day: history and test need at least 2 "
                         "(or give the history with --train)")
    if not 0 < train_days < len(days):
        raise ValueError(f"--train-days must be between 1 and {len(days) - 1} (the data has {len(days)} days)")
    is_train = day < days[train_days]
    return speeds.rows(is_train), speeds.rows(~is_train)


def _slot_seconds(times: npt.NDArray[np.float64]) -> int:
    """Profile slot: the data's sampling interval when it divides a day, else 900 s."""
    if len(times) > 1:
        step = int(np.median(np.diff(times)))
        if step > 0 and 86_400 % step == 0:
            return step
    return 900


def evaluate_congestion(
    graph: SegmentGraph,
    train: SpeedTable,
    test: SpeedTable,
    observed_frac: float = 0.5,
    seed: int = 0,
    settings: TrafficSettings | None = None,
    model: str = "boosted",
) -> CongestionEval:
    """Run the methodology on in-memory data (speeds km/h; estimator works in m/s).

    ``model`` (one of :data:`MODELS`): the model fitted on TRAIN (its own seeded visible
    subsets) the estimator is given: ``boosted`` (:func:`traffic.boosted.fit_boosted_model`),
    ``linear`` (:func:`traffic.learned.fit_segment_model`), or ``smoothing``: none, the
    graph smoothing alone, as on networks without dense speed history.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if not 0.0 < observed_frac < 1.0:
        raise ValueError("observed fraction must be in (0, 1)")
    if not len(train.time_s) or not len(test.time_s):
        raise ValueError("train and test speeds must both have rows")
    n = graph.n
    if n < 2:
        raise ValueError(f"the graph has {n} segment: hiding some segments and estimating them from the others "
                         "needs at least 2")
    if not np.isfinite(train.speed_kmh).any():
        raise ValueError("the history (train) speeds have no reading of any segment")
    if not np.isfinite(test.speed_kmh).any():
        raise ValueError("the test speeds have no reading of any segment")
    if model != "smoothing" and len(train.time_s) < MIN_HISTORY_TIMESTAMPS:
        raise ValueError(f"the history (train) speeds have {len(train.time_s)} timestamps; --model {model} learns from "
                         f"at least {MIN_HISTORY_TIMESTAMPS} (give more history, or --model smoothing)")
    train_mps = train.speed_kmh / KMH
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # segments without history: NaN, replaced below
        freeflow = np.nanpercentile(train_mps, 95, axis=0)
    fallback = float(np.nanmedian(freeflow)) if np.isfinite(freeflow).any() else 25.0
    freeflow = np.where(np.isfinite(freeflow) & (freeflow > 0), freeflow, fallback)
    rows, cols = np.nonzero(np.isfinite(train_mps))
    profile = SpeedProfile.from_observations(
        cols, train.time_s[rows], train_mps[rows, cols], n,
        slot_s=_slot_seconds(train.time_s), utc_offset_s=train.utc_offset_s,
    )
    step_s = float(_slot_seconds(train.time_s))
    fit_rng = np.random.default_rng([seed, 1])
    learned: SpeedModel | None = None
    if model == "boosted":
        learned = fit_boosted_model(train.time_s, train_mps, freeflow, step_s, graph.adjacency, fit_rng, observed_frac)
    elif model == "linear":
        learned = fit_segment_model(train.time_s, train_mps, freeflow, step_s, fit_rng, observed_frac)
    estimator = CongestionEstimator(graph.adjacency, freeflow, profile, settings=settings, model=learned)
    rng = np.random.default_rng(seed)
    k = min(max(round(observed_frac * n), 1), n - 1)  # at least one segment seen and one hidden
    err_est: list[npt.NDArray[np.float64]] = []
    err_ff: list[npt.NDArray[np.float64]] = []
    err_hist: list[npt.NDArray[np.float64]] = []
    for t, truth_kmh in zip(test.time_s, test.speed_kmh, strict=True):
        visible = np.zeros(n, dtype=bool)
        visible[rng.permutation(n)[:k]] = True
        seen = visible & np.isfinite(truth_kmh)
        estimator.observe(np.nonzero(seen)[0], t, truth_kmh[seen] / KMH)
        state = estimator.update(float(t))
        hidden = ~visible & np.isfinite(truth_kmh)
        truth = truth_kmh[hidden]
        err_est.append(np.abs(state.speed_mps[hidden] * KMH - truth))
        err_ff.append(np.abs(freeflow[hidden] * KMH - truth))
        hist = profile.at(float(t))[hidden]
        hist = np.where(np.isfinite(hist), hist, freeflow[hidden])
        err_hist.append(np.abs(hist * KMH - truth))
    e = np.concatenate(err_est)
    return CongestionEval(
        timestamps=len(test.time_s), hidden=len(e), mae_kmh=float(e.mean()),
        free_flow_mae_kmh=float(np.concatenate(err_ff).mean()),
        historical_mae_kmh=float(np.concatenate(err_hist).mean()),
        observed_frac=observed_frac, seed=seed,
    )


def evaluate_files(
    segments: str | Path,
    adjacency: str | Path,
    speeds: str | Path,
    train: str | Path | None = None,
    train_days: int | None = None,
    observed_frac: float = 0.5,
    seed: int = 0,
    settings: TrafficSettings | None = None,
    references: bool = False,
    model: str = "boosted",
) -> CongestionEval:
    """Evaluate from segment-graph files (``references``: also score :mod:`traffic.eval_references`;
    ``model``: see :func:`evaluate_congestion`).

    With ``train`` given, SPEEDS is the test set and TRAIN the history. Without it, SPEEDS
    is split by local calendar day: the first ``train_days`` (default: all but the last day)
    are history and the rest is the test set.
    """
    graph = read_segment_graph(segments, adjacency)
    table = read_speeds(speeds, graph.segment_id)
    if train is not None:
        if train_days is not None:
            raise ValueError("give either --train or --train-days, not both")
        train_table, test_table = read_speeds(train, graph.segment_id), table
    else:
        days = len(np.unique(table.local_day()))
        train_table, test_table = split_by_days(table, train_days if train_days is not None else days - 1)
    result = evaluate_congestion(graph, train_table, test_table, observed_frac, seed, settings, model)
    if references:
        from dataclasses import replace

        from traffic.eval_references import reference_predictors

        result = replace(result, references=reference_predictors(graph, train_table, test_table, observed_frac, seed))
    return result

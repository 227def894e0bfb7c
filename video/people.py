"""People counting per zone: a head-density model learnt from annotated frames (CPU only).

The standard way to count a crowd without a neural network: classical image features per
cell of a coarse grid (:mod:`video.people_features`) regressed on the number of annotated
heads in the cell, so the count of any zone is the sum of its cells' densities.

- ``kind="cells"`` (when head positions are given): LightGBM regression of the head count
  of every cell on the cell's features and its neighbours'; the cell's row and column are
  inputs, so the model learns the camera's perspective (people far away are smaller) from
  the heads themselves.
- ``kind="bands"`` (only per-frame counts): ridge regression of the frame count on the
  features summed per grid row (one weight per row and feature: a learnt perspective map);
  the same weights give every cell its share.

A model is a NumPy ``.npz`` (no pickle): settings as JSON, the background image and its
spread, the ROI, and the LightGBM model text or the ridge weights.
:class:`PeopleCounter` is the per-frame kernel the camera worker calls;
:class:`PeopleIntervals` turns its estimates into mean and max people present per interval
and zone, and sums the line crossings of :class:`video.people_flow.LineFlux` per interval,
line and direction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import cv2
import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from video.people_features import (
    Background,
    CellGrid,
    FeatureExtractor,
    PeopleConfig,
    cell_design,
    to_grey,
)

__all__ = [
    "LGB_PARAMS",
    "PeopleCounter",
    "PeopleCrossings",
    "PeopleEstimate",
    "PeopleIntervals",
    "PeopleModel",
    "PeopleRecord",
    "count_frames",
    "extract_features",
    "fit_people_model",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
Kind = Literal["cells", "bands"]

LGB_PARAMS: dict[str, Any] = {
    "objective": "regression", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 50,
    "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8, "num_threads": 1,
    "seed": 7, "deterministic": True, "verbose": -1,
}
"""LightGBM settings of the cell model (chosen by 5-fold blocked cross-validation, Mall 1-600)."""
LGB_ROUNDS = 300
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def _roi_fraction(roi: npt.NDArray[np.bool_], grid: CellGrid) -> F32:
    """Share of each cell inside a model-resolution ROI, ``(rows, cols)``."""
    small = cv2.resize(roi.astype(np.float32), (grid.cols, grid.rows), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.float32)


@dataclass
class PeopleModel:
    """A calibrated people-density model of one camera.

    Attributes
    ----------
    config : PeopleConfig
        Feature settings.
    grid : CellGrid
        Frame size it was calibrated on and the density-map geometry.
    background : Background
        Background at model resolution.
    roi : ndarray (h, w) of bool
        Counted region at model resolution.
    kind : {"cells", "bands"}
        Cell-level LightGBM (from heads) or row-band ridge (from counts).
    booster : str
        LightGBM model text (``kind="cells"``).
    coef : ndarray (rows, K)
        Ridge weight of each feature on each grid row, people per unit (``kind="bands"``).
    intercept : float
        Ridge intercept, people (``kind="bands"``).
    meta : dict
        Calibration facts (frames, mean count, cross-validated alpha...).
    """

    config: PeopleConfig
    grid: CellGrid
    background: Background
    roi: npt.NDArray[np.bool_]
    kind: Kind
    booster: str = ""
    coef: F64 = field(default_factory=lambda: np.zeros((0, 0)))
    intercept: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.roi_frac = _roi_fraction(self.roi, self.grid)
        self.valid = self.roi_frac > 0
        self._booster = lgb.Booster(model_str=self.booster) if self.kind == "cells" else None

    def extractor(self) -> FeatureExtractor:
        """A fresh feature extractor on this model's background."""
        return FeatureExtractor(self.config, self.grid, self.background, self.roi)

    def density(self, features: F32) -> F32:
        """People per cell ``(n, rows, cols)`` from per-cell features ``(n, rows, cols, K)``."""
        f = np.asarray(features, dtype=np.float32)
        out = np.zeros(f.shape[:3], dtype=np.float32)
        if self.kind == "cells":
            assert self._booster is not None
            x = cell_design(f, self.roi_frac)[:, self.valid]
            pred = self._booster.predict(x.reshape(-1, x.shape[-1]), num_threads=1)
            out[:, self.valid] = np.asarray(pred, dtype=np.float32).reshape(len(f), -1)
        else:
            share = self.roi_frac / max(float(self.roi_frac.sum()), 1e-9)
            out[:] = np.einsum("nrck,rk->nrc", f, self.coef) + self.intercept * share
            out[:, ~self.valid] = 0.0
        return out

    def save(self, path: Path) -> Path:
        """Write the model as ``.npz`` (arrays and JSON text only); return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        head = {"format": "its-people/1", "kind": self.kind, "config": self.config.to_dict(),
                "frame_size": list(self.grid.frame_size), "intercept": self.intercept, "meta": self.meta}
        with path.open("wb") as fh:
            np.savez_compressed(
                fh, header=np.array(json.dumps(head)), median=self.background.median,
                spread=self.background.spread, roi=self.roi.astype(np.uint8),
                booster=np.array(self.booster), coef=self.coef,
            )
        return path

    @classmethod
    def load(cls, path: Path) -> PeopleModel:
        """Read a model written by :meth:`save` (no pickle is ever loaded)."""
        with np.load(Path(path), allow_pickle=False) as z:
            head = json.loads(str(z["header"]))
            if head.get("format") != "its-people/1":
                raise ValueError(f"{path}: not a people model (format {head.get('format')!r})")
            config = PeopleConfig(**head["config"])
            grid = CellGrid.for_frame(tuple(head["frame_size"]), config)  # type: ignore[arg-type]
            return cls(config, grid, Background(z["median"], z["spread"]), z["roi"] > 0, head["kind"],
                       booster=str(z["booster"]), coef=z["coef"], intercept=float(head["intercept"]), meta=head["meta"])


def extract_features(greys: npt.NDArray[np.uint8], config: PeopleConfig, grid: CellGrid, background: Background,
                     roi: npt.NDArray[np.bool_] | None) -> F32:
    """Per-cell features ``(n, rows, cols, K)`` of consecutive grey model frames ``(n, h, w)``."""
    ext = FeatureExtractor(config, grid, background, roi)
    return np.stack([ext(g) for g in greys]) if len(greys) else np.zeros((0, grid.rows, grid.cols, 0), np.float32)


def _band_sums(features: F32) -> F64:
    return np.asarray(features, dtype=np.float64).sum(axis=2).reshape(len(features), -1)


def _ridge(x: F64, y: F64, alpha: float) -> tuple[F64, float]:
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mu) / sd
    w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean())) / sd
    return w, float(y.mean() - mu @ w)


def _blocked_folds(n: int, k: int) -> list[npt.NDArray[np.int64]]:
    return [f for f in np.array_split(np.arange(n), min(k, n)) if len(f)]


def _fit_bands(features: F32, counts: F64, folds: int = 5) -> tuple[F64, float, float]:
    """Ridge on row-band sums, alpha by blocked cross-validation; (coef, intercept, alpha)."""
    x = _band_sums(features)
    best, best_err = RIDGE_ALPHAS[0], np.inf
    for alpha in RIDGE_ALPHAS:
        err = 0.0
        for te in _blocked_folds(len(x), folds):
            tr = np.setdiff1d(np.arange(len(x)), te)
            if len(tr) < 2:
                continue
            w, b = _ridge(x[tr], counts[tr], alpha)
            err += float(np.abs(x[te] @ w + b - counts[te]).sum())
        if err < best_err:
            best, best_err = alpha, err
    w, b = _ridge(x, counts, best)
    return w.reshape(features.shape[1], features.shape[3]), b, best


def fit_people_model(
    greys: npt.NDArray[np.uint8], grid: CellGrid, counts: Sequence[float],
    heads: Sequence[npt.ArrayLike] | None = None, roi: npt.NDArray[np.uint8] | None = None,
    config: PeopleConfig | None = None, rounds: int = LGB_ROUNDS,
) -> PeopleModel:
    """Calibrate a camera's model on annotated frames.

    Parameters
    ----------
    greys : ndarray (n, h, w) of uint8
        Consecutive calibration frames as grey model images (:func:`to_grey`).
    grid : CellGrid
        Geometry of those frames.
    counts : sequence of float
        People in the ROI per frame.
    heads : sequence of array (m_i, 2), optional
        Head positions per frame, frame pixels; given, the cell model is fitted.
    roi : ndarray (H, W) of uint8, optional
        Counted region at frame resolution (non-zero = counted; default whole frame).
    config : PeopleConfig, optional
        Feature settings.
    rounds : int
        Boosting rounds of the cell model.
    """
    config = config or PeopleConfig()
    y = np.asarray(counts, dtype=np.float64)
    if len(greys) != len(y) or len(y) < 10:
        raise ValueError(f"need at least 10 frames with one count each, got {len(greys)} frames, {len(y)} counts")
    mw, mh = grid.model_size
    roi_model = np.ones((mh, mw), bool) if roi is None else cv2.resize(np.asarray(roi, np.uint8), (mw, mh), interpolation=cv2.INTER_NEAREST) > 0
    background = Background.estimate(greys)
    feats = extract_features(greys, config, grid, background, roi_model)
    meta: dict[str, Any] = {"frames": len(y), "mean_count": round(float(y.mean()), 3),
                            "calibrated": datetime.now(UTC).isoformat(timespec="seconds")}
    if heads is None:
        coef, intercept, alpha = _fit_bands(feats, y)
        return PeopleModel(config, grid, background, roi_model, "bands", coef=coef, intercept=intercept,
                           meta={**meta, "ridge_alpha": alpha})
    if len(heads) != len(y):
        raise ValueError(f"{len(heads)} head lists for {len(y)} frames")
    roi_frac = _roi_fraction(roi_model, grid)
    valid = roi_frac > 0
    target = np.stack([grid.heads_to_cells(h) for h in heads])
    x = cell_design(feats, roi_frac)[:, valid]
    data = lgb.Dataset(x.reshape(-1, x.shape[-1]), target[:, valid].reshape(-1), free_raw_data=True)
    booster = lgb.train(LGB_PARAMS, data, rounds)
    return PeopleModel(config, grid, background, roi_model, "cells", booster=booster.model_to_string(),
                       meta={**meta, "heads": int(sum(len(np.asarray(h).reshape(-1, 2)) for h in heads)), "rounds": rounds})


@dataclass(frozen=True)
class PeopleEstimate:
    """People present in one frame: whole ROI and per zone, with the density map."""

    count: float
    zones: dict[str, float]
    density: F32


class PeopleCounter:
    """The per-frame kernel: frames in (BGR, calibration size), people counts out.

    Parameters
    ----------
    model : PeopleModel
        The camera's calibrated model.
    zones : mapping of zone id to polygon, optional
        Zones in frame pixels; each estimate carries their counts.
    """

    def __init__(self, model: PeopleModel, zones: Mapping[str, Iterable[tuple[float, float]]] | None = None) -> None:
        self.model = model
        self._features = model.extractor()
        self.zone_weights = {z: model.grid.polygon_weights(p) for z, p in (zones or {}).items()}
        self.frames = 0

    def update(self, frame: U8) -> PeopleEstimate:
        """Estimate the people present in ``frame`` (frames must come in time order)."""
        feats = self._features(to_grey(frame, self.model.grid))
        dens = self.model.density(feats[None])[0]
        self.frames += 1
        zones = {z: float((dens * w).sum()) for z, w in self.zone_weights.items()}
        return PeopleEstimate(float(dens.sum()), zones, dens)


def count_frames(model: PeopleModel, frames: Iterable[U8]) -> F64:
    """Pure kernel: the people count of each frame of a time-ordered sequence."""
    counter = PeopleCounter(model)
    return np.array([counter.update(f).count for f in frames], dtype=np.float64)


@dataclass(frozen=True)
class PeopleRecord:
    """People present in a zone over one interval (``zone_id="all"``: the whole ROI)."""

    interval_start: datetime
    interval_s: int
    zone_id: str
    mean: float
    max: float
    samples: int

    def payload(self) -> dict[str, Any]:
        return {"interval_start": self.interval_start.isoformat().replace("+00:00", "Z"), "interval_s": self.interval_s,
                "zone_id": self.zone_id, "people_mean": round(self.mean, 2), "people_max": round(self.max, 2),
                "samples": self.samples}


@dataclass(frozen=True)
class PeopleCrossings:
    """People crossing one line in one direction over one interval (estimated, fractional)."""

    interval_start: datetime
    interval_s: int
    line_id: str
    direction: str
    people: float

    def payload(self) -> dict[str, Any]:
        return {"interval_start": self.interval_start.isoformat().replace("+00:00", "Z"), "interval_s": self.interval_s,
                "line_id": self.line_id, "direction": self.direction, "crossings": round(self.people, 2)}


class PeopleIntervals:
    """Per epoch-aligned interval: mean and max people present for the ROI and each zone, and
    the people crossing each line per direction.

    Parameters
    ----------
    interval_s : int
        Interval length, s.
    lines : sequence of str
        Line ids; an interval in which crossings were measured reports every line and
        direction (0 when nobody crossed), one without any measurement reports none.
    """

    def __init__(self, interval_s: int = 60, lines: Sequence[str] = ()) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_s = interval_s
        self.lines = tuple(lines)
        self._start: int | None = None
        self._values: dict[str, list[float]] = {}
        self._crossings: dict[tuple[str, str], float] | None = None

    def add(self, wall: float, estimate: PeopleEstimate,
            crossings: Mapping[tuple[str, str], float] | None = None) -> list[PeopleRecord | PeopleCrossings]:
        """Add the estimate of a frame at epoch time ``wall`` (s) and the crossings measured
        with it (``{(line_id, direction): people}``); return the closed intervals' records."""
        start = int(wall // self.interval_s) * self.interval_s
        out = self.flush(wall) if self._start is not None and start != self._start else []
        self._start = start
        for zone, value in {"all": estimate.count, **estimate.zones}.items():
            self._values.setdefault(zone, []).append(max(value, 0.0))
        if crossings is not None:
            if self._crossings is None:
                self._crossings = {(line, d): 0.0 for line in self.lines for d in ("in", "out")}
            for key, people in crossings.items():
                self._crossings[key] = self._crossings.get(key, 0.0) + max(people, 0.0)
        return out

    def flush(self, wall: float | None = None, final: bool = False) -> list[PeopleRecord | PeopleCrossings]:
        """Emit the open interval when ``wall`` is past it (or ``final``)."""
        if self._start is None or not self._values:
            return []
        if not final and wall is not None and wall < self._start + self.interval_s:
            return []
        began = datetime.fromtimestamp(self._start, UTC)
        out: list[PeopleRecord | PeopleCrossings] = [
            PeopleRecord(began, self.interval_s, z, float(np.mean(v)), float(np.max(v)), len(v)) for z, v in self._values.items()]
        out += [PeopleCrossings(began, self.interval_s, line, d, n) for (line, d), n in sorted((self._crossings or {}).items())]
        self._values, self._crossings = {}, None
        return out

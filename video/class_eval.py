"""Per-class line counts against an annotation of the vehicles that crossed, one by one.

An annotation lists every object that crossed a counting line (frame, column, direction,
class); :func:`crossing_events` records the pipeline's crossings on the same frames, and
:func:`score_classes` pairs the two (an optimal one-to-one assignment within a few frames
and pixels, class ignored) to give, per class, the annotated and counted totals, the count
error and precision and recall (a pair is correct when both classes agree).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from video.classify import CLASS_NAMES, class_name
from video.pipeline import CountingPipeline
from video.sources import Frame

__all__ = ["Crossing", "crossing_events", "load_crossings", "match_crossings", "score_classes"]


@dataclass(frozen=True)
class Crossing:
    """One object crossing a counting line.

    Attributes
    ----------
    line_id, direction : str
        The line and ``in``/``out``.
    frame : int
        0-based frame index of the crossing.
    x : float
        Column of the object's centre at the crossing, frame pixels.
    vehicle_class : str
        ``car``, ``truck_bus`` or ``motorcycle``.
    """

    line_id: str
    direction: str
    frame: int
    x: float
    vehicle_class: str


def load_crossings(path: Path, clip: str) -> list[Crossing]:
    """Read the crossings of ``clip`` from an annotation CSV (``#`` lines are comments).

    Columns: ``clip, line_id, frame, x, direction, vehicle_class`` (others ignored).
    """
    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        out = []
        for row in rows:
            if row["clip"] != clip:
                continue
            if row["vehicle_class"] not in CLASS_NAMES:
                raise ValueError(f"{path}: unknown vehicle_class {row['vehicle_class']!r}")
            out.append(Crossing(row["line_id"], row["direction"], int(row["frame"]), float(row["x"]), row["vehicle_class"]))
    return out


def crossing_events(pipeline: CountingPipeline, frames: Iterable[Frame]) -> list[Crossing]:
    """Run ``pipeline`` over ``frames``; return every line crossing with its class.

    The class is the tracked detection's class on the frame of the crossing (what the
    pipeline adds to its per-class counts).
    """
    events: list[Crossing] = []
    for frame in frames:
        result = pipeline.process(frame)
        dets = result.detections
        for line_id, (cin, cout) in result.crossed.items():
            for direction, mask in (("in", cin), ("out", cout)):
                for k in np.flatnonzero(mask):
                    x = float(dets.xyxy[k, 0] + dets.xyxy[k, 2]) / 2
                    cls = int(dets.class_id[k])
                    events.append(Crossing(line_id, direction, frame.index, x, class_name(cls if cls >= 0 else 0)))
    return events


def match_crossings(truth: Sequence[Crossing], found: Sequence[Crossing], *, max_frames: int = 12,
                    max_px: float = 45.0) -> list[tuple[int, int]]:
    """Pair annotated and counted crossings one to one.

    Pairs need the same line and direction, at most ``max_frames`` frames and ``max_px``
    columns apart; among the allowed pairings the one of least total normalised distance
    is chosen (Hungarian algorithm), a class disagreement adding a small penalty so that,
    of two counts near one vehicle (a vehicle split in two), the one of its class is kept.

    Returns
    -------
    list of (int, int)
        Indices into ``truth`` and ``found``.
    """
    if not truth or not found:
        return []
    big = 1e6
    cost = np.full((len(truth), len(found)), big)
    for i, t in enumerate(truth):
        for j, f in enumerate(found):
            df, dx = abs(t.frame - f.frame), abs(t.x - f.x)
            if (t.line_id, t.direction) == (f.line_id, f.direction) and df <= max_frames and dx <= max_px:
                cost[i, j] = df / max_frames + dx / max_px + (0.5 if t.vehicle_class != f.vehicle_class else 0.0)
    rows, cols = linear_sum_assignment(cost)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if cost[i, j] < big]


def score_classes(truth: Sequence[Crossing], found: Sequence[Crossing], **match: Any) -> dict[str, Any]:
    """Per-class counts, count error, precision and recall of ``found`` against ``truth``.

    Returns
    -------
    dict
        ``{"classes": {class: {"annotated", "counted", "count_error", "correct", "precision",
        "recall"}}, "matched", "missed", "extra", "confusion": {"annotated>counted": n}}``;
        ``precision`` (``recall``) is ``None`` for a class never counted (never annotated).
        ``count_error`` = counted - annotated (vehicles).
    """
    pairs = match_crossings(truth, found, **match)
    correct = {c: 0 for c in CLASS_NAMES}
    confusion: dict[str, int] = {}
    for i, j in pairs:
        t, f = truth[i].vehicle_class, found[j].vehicle_class
        if t == f:
            correct[t] += 1
        else:
            key = f"{t}>{f}"
            confusion[key] = confusion.get(key, 0) + 1
    classes: dict[str, dict[str, Any]] = {}
    for c in CLASS_NAMES:
        n_true = sum(t.vehicle_class == c for t in truth)
        n_found = sum(f.vehicle_class == c for f in found)
        classes[c] = {
            "annotated": n_true, "counted": n_found, "count_error": n_found - n_true, "correct": correct[c],
            "precision": round(correct[c] / n_found, 3) if n_found else None,
            "recall": round(correct[c] / n_true, 3) if n_true else None,
        }
    return {"classes": classes, "matched": len(pairs), "missed": len(truth) - len(pairs),
            "extra": len(found) - len(pairs), "confusion": confusion}

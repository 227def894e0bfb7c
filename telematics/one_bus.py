"""One bus at a time against the whole schedule: the shape of a feed that reports one vehicle.

A matrix cell (`telematics.matrix.evaluate_cell`) degrades a whole fleet, where trip assignment
leans on the other buses (the joint assignment keeps two buses off one block) and prediction on
their recent running times. A feed of one bus (a demonstrator, one operator's navigation terminal
against a whole region's GTFS) has neither. `evaluate_one_bus` scores each of a seeded sample of
vehicles alone, with only its own pings and every trip of the schedule as candidates, and
`one_bus_summary` pools them: trip assignment (live and retrospective, ping-weighted), the
within-windows share (prediction-weighted), the worst vehicles, and how many (vehicle, horizon
bucket) pairs the model served worse than delay propagation. The loop is thin; the summary is a
pure function of the per-vehicle cell results.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from telematics.degrade import DegradeSpec, parse_spec
from telematics.gtfs import TripPaths
from telematics.matrix import Dataset, cell_label, evaluate_cell

__all__ = ["MIN_PINGS", "WORST_SHOWN", "evaluate_one_bus", "one_bus_summary", "one_bus_table", "one_bus_vehicles"]

#: A vehicle with fewer pings than this is not sampled (too little to assign or predict from).
MIN_PINGS = 20
#: How many of the lowest live assignments the summary lists.
WORST_SHOWN = 5


def one_bus_vehicles(avl: pd.DataFrame, count: int, seed: int = 0, min_pings: int = MIN_PINGS) -> list[str]:
    """A seeded sample of ``count`` vehicle ids with at least ``min_pings`` pings (all of them
    when there are no more), sorted."""
    pings = avl["vehicle_id"].astype(str).value_counts()
    eligible = sorted(pings.index[pings >= min_pings].tolist())
    if count >= len(eligible):
        return eligible
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.array(eligible, dtype=object), size=count, replace=False).tolist())


def _weighted(rows: Sequence[dict[str, object]], value: str, weight: str) -> float | None:
    """Mean of ``value`` over ``rows`` weighted by ``weight`` (None where nothing is weighed)."""
    pairs = [(float(r[value]), float(r[weight])) for r in rows  # type: ignore[arg-type]
             if r[value] is not None and r[weight]]
    total = sum(w for _, w in pairs)
    return round(sum(v * w for v, w in pairs) / total, 4) if total else None


def one_bus_summary(dataset: str, cell: str, per_vehicle: Sequence[dict[str, object]]) -> dict[str, object]:
    """Pool the cell results of vehicles scored one at a time.

    Parameters
    ----------
    dataset, cell : str
        Names for the summary.
    per_vehicle : sequence of dict
        `telematics.matrix.evaluate_cell` results, one per vehicle, each with a ``vehicle_id``.

    Returns
    -------
    dict
        ``dataset``, ``cell``, ``vehicles`` (count), ``pings``, ``predictions``, ``live`` and
        ``retrospective`` (trip assignment, ping-weighted), ``within_windows``
        (prediction-weighted), ``worse_buckets`` and ``buckets`` ((vehicle, horizon bucket)
        pairs worse than delay propagation, of those with predictions), ``worst`` (the
        ``WORST_SHOWN`` lowest live assignments: vehicle id, live, pings) and ``per_vehicle``
        (vehicle id, pings, live, retrospective, within-windows, buckets worse).
    """
    rows = []
    for r in per_vehicle:
        assign = r["positions_assignment"]
        mae = r["mae_s"]
        assert isinstance(assign, dict) and isinstance(mae, dict)
        worse = r["worse_than_delay_propagation"]
        assert isinstance(worse, list)
        rows.append({"vehicle_id": r["vehicle_id"], "pings": r["pings"], "predictions": r["predictions"],
                     "live": assign["live"], "retrospective": assign["retrospective"],
                     "within_windows": r["within_windows"], "worse": list(worse),
                     "buckets": sum(v is not None for v in mae.values())})
    ranked = sorted((row for row in rows if row["live"] is not None), key=lambda row: row["live"])  # type: ignore[arg-type, return-value]
    return {
        "dataset": dataset, "cell": cell, "vehicles": len(rows),
        "pings": sum(int(row["pings"]) for row in rows),  # type: ignore[call-overload]
        "predictions": sum(int(row["predictions"]) for row in rows),  # type: ignore[call-overload]
        "live": _weighted(rows, "live", "pings"), "retrospective": _weighted(rows, "retrospective", "pings"),
        "within_windows": _weighted(rows, "within_windows", "predictions"),
        "worse_buckets": sum(len(row["worse"]) for row in rows),  # type: ignore[arg-type]
        "buckets": sum(int(row["buckets"]) for row in rows),  # type: ignore[call-overload]
        "worst": [{"vehicle_id": row["vehicle_id"], "live": row["live"], "pings": row["pings"]}
                  for row in ranked[:WORST_SHOWN]],
        "per_vehicle": rows,
    }


def evaluate_one_bus(dataset: Dataset, spec: DegradeSpec | str, count: int, *, seed: int = 0,
                     paths_cache: dict[tuple[int, bool, float], TripPaths] | None = None) -> dict[str, object]:
    """Score ``count`` sampled vehicles of ``dataset`` one at a time in cell ``spec``
    (`one_bus_vehicles`, `telematics.matrix.evaluate_cell`) and pool them (`one_bus_summary`)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    cache = {} if paths_cache is None else paths_cache
    results = []
    for vehicle in one_bus_vehicles(dataset.avl, count, seed):
        result = evaluate_cell(dataset, spec, vehicles=[vehicle], paths_cache=cache)
        results.append({**result, "vehicle_id": vehicle})
    return one_bus_summary(dataset.name, spec.label, results)


def one_bus_table(summaries: Sequence[dict[str, object]]) -> str:
    """Markdown table of `one_bus_summary` results, one row per dataset and cell."""
    lines = ["| dataset | cell | buses | pings | assignment live | retrospective | within | "
             "buckets worse than delay prop. | lowest live |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        worst = s["worst"]
        assert isinstance(worst, list)
        low = ", ".join(f"{w['vehicle_id']} {w['live']}" for w in worst[:3])
        lines.append(f"| {s['dataset']} | {cell_label(str(s['cell']))} | {s['vehicles']} | {s['pings']} | {s['live']} | "
                     f"{s['retrospective']} | {s['within_windows']} | {s['worse_buckets']} of {s['buckets']} | "
                     f"{low} |")
    return "\n".join(lines)

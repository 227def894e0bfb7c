"""``its eval arrivals`` and ``its eval arrivals-matrix``: the arrival prediction evaluation commands."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from telematics.avl import read_avl
from telematics.degrade import DegradeSpec, SpecError, parse_spec
from telematics.evaluate import evaluate_arrivals
from telematics.gtfs import read_feed
from telematics.positions_eval import evaluate_positions_only, has_recorded_trips

__all__ = ["COMMANDS", "eval_arrivals", "eval_arrivals_matrix"]


def _specs(texts: list[str]) -> list[DegradeSpec]:
    try:
        return [parse_spec(t) for t in texts]
    except SpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--degrade/--cell") from None


def eval_arrivals(
    gtfs: Annotated[Path, typer.Option("--gtfs", help="GTFS zip or folder of the schedule.")],
    avl: Annotated[Path, typer.Option("--avl", help="AVL CSV of the day to replay.")],
    history: Annotated[list[Path] | None, typer.Option(
        "--history", help="AVL CSVs of other days (time-of-day profile); repeatable.")] = None,
    degrade: Annotated[list[str] | None, typer.Option(
        "--degrade", help="Score a degraded copy of the day instead, e.g. "
        "'interval=120,shapes=0,ids=hidden,noise=15,motion=0,midnight=1' (one JSON line per cell); "
        "repeatable.")] = None,
    roads: Annotated[Path | None, typer.Option(
        "--roads", help="Road network for trips without shapes: an OSM extract (.osm.pbf) or a saved network "
        "(.npz, its maps import); their paths follow its roads between stops instead of straight lines.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Replay AVL positions and score arrival predictions against actual passings."""
    if degrade:
        from telematics.matrix import Dataset, evaluate_cell, matrix_table

        specs = _specs(degrade)
        dataset = Dataset(avl.stem, read_feed(gtfs), read_avl(avl))
        if not has_recorded_trips(dataset.avl):
            raise typer.BadParameter(f"{avl.name} records no trip ids: a degraded copy has no truth to be "
                                     "scored against (without --degrade it is scored against its retrospective "
                                     "assignment)", param_hint="--degrade")
        cache: dict[tuple[int, bool, float], object] = {}
        results = []
        for spec in specs:
            results.append(evaluate_cell(dataset, spec, paths_cache=cache))  # type: ignore[arg-type]
            typer.echo(json.dumps(results[-1]))
        typer.echo(matrix_table(results))
        return
    stop_path = None
    if roads is not None:
        from telematics.road_paths import RoadStopPaths, load_roads

        try:
            stop_path = RoadStopPaths(load_roads(roads))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--roads") from None
    positions = read_avl(avl)
    if not has_recorded_trips(positions):  # a positions-only file: scored against its retrospective assignment
        if history:
            raise typer.BadParameter("other days' profile is not used for a file without trip ids",
                                     param_hint="--history")
        result = evaluate_positions_only(read_feed(gtfs), positions, name=avl.stem, stop_path=stop_path)
        typer.echo(f"no trip ids in {avl.name}: truth = {result['truth']} "
                   f"({result['truth_pings']} of the pings given a trip by it)")
    else:
        result = evaluate_arrivals(gtfs, avl, history or (), stop_path=stop_path)
    _print_arrivals(result)
    if as_json:
        typer.echo(json.dumps(result))


def _print_arrivals(result: dict[str, object]) -> None:
    """The text summary of an arrivals evaluation."""
    mae = result["mae_s"]
    within = result["within_by_bucket"]
    base = result["baselines"]
    assert isinstance(mae, dict) and isinstance(within, dict) and isinstance(base, dict)
    typer.echo(f"predictions scored: {result['predictions']}")
    typer.echo(f"within MBTA windows: {result['within_windows']}")
    for bucket in mae:
        typer.echo(f"  {bucket:>5} min  MAE {mae[bucket]} s  within {within[bucket]}  "
                   f"schedule MAE {base['schedule']['mae_s'][bucket]} s  "
                   f"delay propagation MAE {base['delay_propagation']['mae_s'][bucket]} s")
    typer.echo(f"baseline within windows: schedule {base['schedule']['within_windows']}, "
               f"delay propagation {base['delay_propagation']['within_windows']}")
    bench = result["eta_benchmark"]
    assert isinstance(bench, dict)
    typer.echo(f"ETA Accuracy Benchmark score: {bench['score']} (by time to actual: "
               + ", ".join(f"{b} min {v}" for b, v in bench["by_bucket"].items())
               + f"; delay propagation {base['delay_propagation']['eta_benchmark']['score']})")
    typer.echo("trip paths: " + ", ".join(f"{n} {k}" for k, n in result["path_sources"].items()  # type: ignore[attr-defined]
                                          if n))
    live = "live vs retrospective" if "truth" in result else "ids hidden"
    typer.echo(f"trip assignment accuracy ({live}): {result['assigned_trip_accuracy']}")
    typer.echo("delay propagation weight served (mean, 0.2 = the model as usual): " + ", ".join(
        f"{b} min {w}" for b, w in result["delay_weight"].items()))  # type: ignore[attr-defined]
    typer.echo(f"prediction completeness: {result['prediction_completeness']} of (ping, stop) pairs, "
               f"{result['trip_minute_completeness']} of in-service trip-minutes")


def eval_arrivals_matrix(
    data: Annotated[Path | None, typer.Option(
        "--data", help="The shared real data folder (default $ITS_SHARED_DATA or ../shared/data).")] = None,
    dataset: Annotated[list[str] | None, typer.Option(
        "--dataset", help="wmata, minneapolis, cairns (default all), or cairns-sim (a simulated day on Cairns); repeatable.")] = None,
    cells: Annotated[str, typer.Option("--cells", help="'default' (the full matrix) or 'subset' (CI).")] = "default",
    cell: Annotated[list[str] | None, typer.Option(
        "--cell", help="Run these cells instead (degrade specs); repeatable.")] = None,
    route: Annotated[str | None, typer.Option(
        "--route", help="Only the vehicles seen on this route (fast subsets).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON lines here.")] = None,
    one_bus: Annotated[int | None, typer.Option(
        "--one-bus", min=1, help="Score this many sampled vehicles one at a time against the whole schedule "
        "(a feed of one bus) instead of the fleet: one pooled JSON line per cell.")] = None,
) -> None:
    """Degraded-feed matrix: each cell degrades each recorded day and scores it (one JSON line per cell),
    then prints the Markdown table."""
    from telematics.matrix import (
        DEFAULT_CELLS,
        SUBSET_CELLS,
        evaluate_cell,
        load_datasets,
        matrix_table,
    )
    from telematics.one_bus import evaluate_one_bus, one_bus_table

    if cell:
        texts = list(cell)
    elif cells in ("default", "subset"):
        texts = list(DEFAULT_CELLS if cells == "default" else SUBSET_CELLS)
    else:
        raise typer.BadParameter(f"expected default or subset, got {cells!r}", param_hint="--cells")
    specs = _specs(texts)
    root = data or Path(os.environ.get("ITS_SHARED_DATA", "../shared/data"))
    datasets, skipped = load_datasets(root, dataset)
    for name, reason in skipped.items():
        typer.echo(f"{name}: not run ({reason})")
    results = []
    sink = out.open("w") if out else None
    try:
        for ds in datasets:
            vehicles = None
            if route:
                seen = ds.avl.loc[ds.avl["route_id"] == route, "vehicle_id"]
                vehicles = sorted(pd.unique(seen))
            cache: dict[tuple[int, bool, float], object] = {}
            for spec in specs:
                if one_bus:
                    result = evaluate_one_bus(ds, spec, one_bus, paths_cache=cache)  # type: ignore[arg-type]
                else:
                    result = evaluate_cell(ds, spec, vehicles=vehicles, paths_cache=cache)  # type: ignore[arg-type]
                results.append(result)
                line = json.dumps(result)
                typer.echo(line)
                if sink:
                    sink.write(line + "\n")
                    sink.flush()
    finally:
        if sink:
            sink.close()
    typer.echo(one_bus_table(results) if one_bus else matrix_table(results))


COMMANDS: list[tuple[str, str, Callable[..., None]]] = [
    ("eval", "arrivals", eval_arrivals), ("eval", "arrivals-matrix", eval_arrivals_matrix)]

"""``its eval arrivals``: the arrival prediction evaluation command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from telematics.evaluate import evaluate_arrivals

__all__ = ["COMMANDS", "eval_arrivals"]


def eval_arrivals(
    gtfs: Annotated[Path, typer.Option("--gtfs", help="GTFS zip or folder of the schedule.")],
    avl: Annotated[Path, typer.Option("--avl", help="AVL CSV of the day to replay.")],
    history: Annotated[list[Path] | None, typer.Option(
        "--history", help="AVL CSVs of other days (time-of-day profile); repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Replay AVL positions and score arrival predictions against actual passings."""
    result = evaluate_arrivals(gtfs, avl, history or ())
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
    typer.echo(f"trip assignment accuracy (ids hidden): {result['assigned_trip_accuracy']}")
    if as_json:
        typer.echo(json.dumps(result))


COMMANDS: list[tuple[str, str, Callable[..., None]]] = [("eval", "arrivals", eval_arrivals)]

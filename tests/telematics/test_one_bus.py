"""One bus at a time against the whole schedule (`telematics.one_bus`).

The cells run on the WMATA day (the stand-in without ``../shared``: its busiest route for
D96), a vehicle alone each time; the pooling is checked against the per-vehicle cells.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from telematics.eval_cli import eval_arrivals_matrix
from telematics.matrix import Dataset, evaluate_cell, load_datasets
from telematics.one_bus import evaluate_one_bus, one_bus_summary, one_bus_table, one_bus_vehicles
from tests.telematics.core_fixtures import pick


@pytest.fixture(scope="module")
def data_root(wmata_dir: Path, sample_data: Path) -> Path:
    """The shared data folder, else the samples folder (it holds the WMATA stand-in)."""
    return wmata_dir.parents[1]


@pytest.fixture(scope="module")
def wmata(data_root: Path) -> Dataset:
    loaded, _ = load_datasets(data_root, ["wmata"])
    if not loaded:
        pytest.skip("WMATA AVL not in the data")
    return loaded[0]


def test_the_sample_is_seeded_and_leaves_out_vehicles_seen_a_few_times() -> None:
    avl = pd.DataFrame({"vehicle_id": ["a"] * 30 + ["b"] * 25 + ["c"] * 5 + ["d"] * 40})
    assert one_bus_vehicles(avl, 10) == ["a", "b", "d"]  # c has 5 pings
    two = one_bus_vehicles(avl, 2, seed=3)
    assert len(two) == 2 and set(two) <= {"a", "b", "d"} and two == sorted(two)
    assert one_bus_vehicles(avl, 2, seed=3) == two


def test_vehicles_alone_are_pooled_by_their_pings(wmata: Dataset, data_root: Path) -> None:
    """Each vehicle of a route scored alone, the summary weighs them by pings (assignment) and
    predictions (windows); the command prints the same as one JSON line and a table row."""
    route = pick(wmata.avl["route_id"], "D96")
    on_route = wmata.avl[wmata.avl["vehicle_id"].isin(wmata.avl.loc[wmata.avl["route_id"] == route, "vehicle_id"])]
    vehicles = one_bus_vehicles(on_route, 2)  # seen often enough to be sampled
    assert vehicles
    small = Dataset(wmata.name, wmata.feed, on_route[on_route["vehicle_id"].isin(vehicles)].reset_index(drop=True))
    cells = [{**evaluate_cell(small, "ids=hidden", vehicles=[v]), "vehicle_id": v} for v in vehicles]
    summary = one_bus_summary("wmata", str(cells[0]["cell"]), cells)
    pings = [c["pings"] for c in cells]
    lives = [c["positions_assignment"]["live"] for c in cells]  # type: ignore[index]
    assert summary["vehicles"] == len(vehicles) and summary["pings"] == sum(pings)  # type: ignore[arg-type]
    assert summary["live"] == round(sum(p * x for p, x in zip(pings, lives, strict=True)) / sum(pings), 4)  # type: ignore[operator]
    assert summary["worst"][0]["live"] == min(lives)  # type: ignore[index]
    assert summary["worse_buckets"] == sum(len(c["worse_than_delay_propagation"]) for c in cells)  # type: ignore[arg-type]
    assert evaluate_one_bus(small, "ids=hidden", 5) == summary  # all its vehicles: the same cells
    assert f"| wmata | ids=hidden | {len(vehicles)} |" in one_bus_table([summary])  # the cell as the matrix shows it
    app = typer.Typer()
    app.command("arrivals-matrix")(eval_arrivals_matrix)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["arrivals-matrix", "--data", str(data_root), "--dataset", "wmata",
                                      "--route", str(route), "--cell", "ids=hidden,interval=120", "--one-bus", "1"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.splitlines()[0])
    assert line["vehicles"] == 1 and line["cell"].startswith("interval=120") and len(line["per_vehicle"]) == 1
    assert "| wmata | interval=120, ids=hidden | 1 |" in result.output

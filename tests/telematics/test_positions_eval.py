"""A positions-only file (no trip ids) scored against its retrospective assignment.

On the real WMATA day (route D96's buses) the trips are recorded, so the estimate can be
checked against the real score of the same feed with its ids hidden (`evaluate_cell`,
``ids=hidden``): the positions-only score must land close to it. The command line takes such
a file as it is (no ``trip_id`` column) and says what its truth is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from telematics.eval_cli import eval_arrivals
from telematics.matrix import Dataset, evaluate_cell, load_datasets
from telematics.positions_eval import TRUTH, evaluate_positions_only, has_recorded_trips
from tests.telematics.core_fixtures import pick

BUCKETS = ["0-3", "3-6", "6-12", "12-30"]


@pytest.fixture(scope="module")
def wmata(wmata_dir: Path) -> Dataset:
    loaded, _ = load_datasets(wmata_dir.parents[1], ["wmata"])
    if not loaded:
        pytest.skip("WMATA AVL not in the data folder")
    return loaded[0]


def _route_buses(wmata: Dataset) -> list[str]:
    route = pick(wmata.avl["route_id"], "D96")  # the stand-in: its busiest route
    return sorted(pd.unique(wmata.avl.loc[wmata.avl["route_id"] == route, "vehicle_id"]))


def _positions_only(wmata: Dataset, vehicles: list[str]) -> pd.DataFrame:
    frame = wmata.avl[wmata.avl["vehicle_id"].isin(vehicles)].reset_index(drop=True)
    return frame.assign(trip_id="", route_id="", start_date="")


@pytest.mark.eval
def test_the_estimate_is_close_to_the_real_score(wmata: Dataset, real_wmata_dir: Path) -> None:
    buses = _route_buses(wmata)
    positions = _positions_only(wmata, buses)
    assert not has_recorded_trips(positions) and has_recorded_trips(wmata.avl)
    estimate = evaluate_positions_only(wmata.feed, positions)
    real = evaluate_cell(wmata, "ids=hidden", vehicles=buses)  # the same feed, scored on its recorded trips
    assert estimate["truth"] == TRUTH and estimate["trips_from"] == "positions"
    assert isinstance(estimate["truth_pings"], float) and estimate["truth_pings"] >= 0.98
    assert isinstance(estimate["predictions"], int) and estimate["predictions"] > 10_000
    assert abs(estimate["within_windows"] - real["within_windows"]) <= 0.01  # type: ignore[operator]
    mae, real_mae = estimate["mae_s"], real["mae_s"]
    assert isinstance(mae, dict) and isinstance(real_mae, dict)
    for bucket in BUCKETS:
        assert abs(mae[bucket] - real_mae[bucket]) <= 0.1 * real_mae[bucket], bucket
    # the live assignment's agreement with the retrospective pass: at least its real accuracy, a little more
    agreement, accuracy = estimate["assigned_trip_accuracy"], real["assigned_trip_accuracy"]
    assert isinstance(agreement, float) and isinstance(accuracy, float)
    assert accuracy - 0.005 <= agreement <= accuracy + 0.03 and agreement >= 0.95
    json.dumps(estimate)


def test_the_command_takes_a_file_without_trip_ids(wmata: Dataset, wmata_dir: Path, tmp_path: Path) -> None:
    buses = _route_buses(wmata)[:2]
    frame = _positions_only(wmata, buses)
    csv = tmp_path / "positions.csv"
    pd.DataFrame({
        "vehicle_id": frame["vehicle_id"],
        "timestamp": pd.to_datetime(frame["time_s"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lat": frame["lat"], "lon": frame["lon"],
    }).to_csv(csv, index=False)  # vehicle id, time and position: nothing else
    app = typer.Typer()
    app.command()(eval_arrivals)
    gtfs = str(wmata_dir / "wmata_gtfs.zip")
    runner = CliRunner()
    out = runner.invoke(app, ["--gtfs", gtfs, "--avl", str(csv), "--json"])
    assert out.exit_code == 0, out.output
    assert "no trip ids in positions.csv: truth = retrospective assignment" in out.output
    assert "trip assignment accuracy (live vs retrospective)" in out.output
    result = json.loads(out.output.splitlines()[-1])
    assert result["truth"] == TRUTH and result["predictions"] > 0 and result["cell"].startswith("interval=native")
    for extra, hint in ((["--history", str(csv)], "--history"), (["--degrade", "interval=60"], "--degrade")):
        bad = runner.invoke(app, ["--gtfs", gtfs, "--avl", str(csv), *extra])
        assert bad.exit_code == 2 and hint in bad.output, bad.output

"""The arrival evaluation on the real WMATA AVL (subset of vehicles, so it stays fast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from telematics.eval_cli import COMMANDS, eval_arrivals
from telematics.evaluate import (
    HOLD_S,
    AvlError,
    evaluate_arrivals,
    read_avl,
    replay_predictions,
    score_predictions,
)
from telematics.gtfs import read_feed, trip_paths

BUCKET_LABELS = ["0-3", "3-6", "6-12", "12-30"]


def _route_vehicles(wmata_dir: Path, route: str) -> list[str]:
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str)
    return sorted(avl.loc[avl["route_id"] == route, "vehicle_id"].unique())


def test_predictions_beat_both_baselines_on_route_d96(wmata_dir: Path) -> None:
    result = evaluate_arrivals(wmata_dir / "wmata_gtfs.zip", wmata_dir / "wmata_avl.csv",
                               vehicles=_route_vehicles(wmata_dir, "D96"))
    predictions = result["predictions"]
    within = result["within_windows"]
    assert isinstance(predictions, int) and predictions > 10_000
    mae = result["mae_s"]
    base = result["baselines"]
    assert isinstance(mae, dict) and isinstance(base, dict)
    assert list(mae) == BUCKET_LABELS
    for bucket in BUCKET_LABELS:
        assert mae[bucket] <= 0.6 * base["schedule"]["mae_s"][bucket]
        assert mae[bucket] <= 0.9 * base["delay_propagation"]["mae_s"][bucket]
    assert isinstance(within, float)
    assert within > base["delay_propagation"]["within_windows"] + 0.03
    assert within > 0.85
    accuracy = result["assigned_trip_accuracy"]
    assert isinstance(accuracy, float) and accuracy > 0.9


def test_scoring_windows_are_asymmetric() -> None:
    horizon = np.array([60.0, 60.0, 200.0, 200.0, 1000.0])
    error = np.array([59.0, -61.0, 119.0, -91.0, 350.0])  # actual - predicted
    scored = score_predictions(horizon, error)
    assert scored["within_by_bucket"] == {"0-3": 0.5, "3-6": 0.5, "6-12": None, "12-30": 1.0}
    assert scored["within_windows"] == 0.6
    assert scored["mae_s"] == {"0-3": 60.0, "3-6": 105.0, "6-12": None, "12-30": 350.0}


def test_bad_avl_row_names_line_and_field(tmp_path: Path, wmata_dir: Path) -> None:
    lines = (wmata_dir / "wmata_avl.csv").read_text().splitlines()[:20]
    parts = lines[9].split(",")
    parts[2] = "north"
    lines[9] = ",".join(parts)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(AvlError, match=r"bad\.csv line 10 field lat"):
        read_avl(bad)


def test_cli_prints_one_json_object_last(wmata_dir: Path, tmp_path: Path) -> None:
    # a small AVL file: two D96 vehicles
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    small = avl[avl["vehicle_id"].isin(_route_vehicles(wmata_dir, "D96")[:2])]
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False)
    assert [("eval", "arrivals", eval_arrivals)] == COMMANDS
    app = typer.Typer()
    app.command()(eval_arrivals)
    out = CliRunner().invoke(app, ["--gtfs", str(wmata_dir / "wmata_gtfs.zip"), "--avl", str(path),
                                   "--json"])
    assert out.exit_code == 0, out.output
    last = json.loads(out.output.strip().splitlines()[-1])
    assert set(last) == {"predictions", "within_windows", "mae_s", "within_by_bucket",
                         "baselines", "assigned_trip_accuracy"}
    assert set(last["baselines"]) == {"schedule", "delay_propagation"}
    assert last["predictions"] > 0


def test_history_days_feed_the_time_of_day_profile(wmata_dir: Path, tmp_path: Path) -> None:
    # another "day": the same D96 positions shifted one week earlier
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    d96 = avl[avl["route_id"] == "D96"]
    today = tmp_path / "today.csv"
    d96.to_csv(today, index=False)
    earlier = d96.copy()
    stamps = pd.to_datetime(earlier["timestamp"]) - pd.Timedelta(days=7)
    earlier["timestamp"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier["start_date"] = stamps.dt.strftime("%Y%m%d")
    history = tmp_path / "history.csv"
    earlier.to_csv(history, index=False)
    gtfs = wmata_dir / "wmata_gtfs.zip"
    plain = evaluate_arrivals(gtfs, today, assign=False)
    informed = evaluate_arrivals(gtfs, today, [history], assign=False)
    assert isinstance(informed["predictions"], int) and informed["predictions"] > 10_000
    assert informed["mae_s"] != plain["mae_s"]  # the profile replaced the schedule prior


def test_vehicle_stopped_ahead_of_schedule_holds_until_its_time(wmata_dir: Path) -> None:
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    avl = read_avl(wmata_dir / "wmata_avl.csv")
    avl = avl[avl["vehicle_id"].isin(_route_vehicles(wmata_dir, "D96"))].reset_index(drop=True)
    cols = replay_predictions(feed, trip_paths(feed), avl)
    # scheduled time at the vehicle's position, from delay propagation's current delay
    sched_here = cols["now"] - (cols["delayprop"] - cols["sched"])
    held = (cols["still"] >= HOLD_S) & (cols["waiting"] == 0) & (sched_here > cols["now"] + 60)
    assert held.sum() > 20
    # before the blend, every held prediction leaves no earlier than the schedule says
    assert (cols["raw"][held] >= sched_here[held] - 1e-6).all()
    moving = cols["still"] == 0
    assert (cols["raw"][moving] < cols["sched"][moving]).any()  # moving early ones are not held

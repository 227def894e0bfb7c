"""The arrival evaluation on the real WMATA AVL (subset of vehicles, so it stays fast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from telematics.avl import AvlError, read_avl
from telematics.eval_cli import COMMANDS, eval_arrivals
from telematics.evaluate import (
    HOLD_S,
    evaluate_arrivals,
    replay_predictions,
    score_predictions,
)
from telematics.gtfs import read_feed, service_day_start, trip_paths
from tests.telematics.degenerate import DAY, TZ, avl_frame, ping_latlon, write_feed

BUCKET_LABELS = ["0-3", "3-6", "6-12", "12-30"]


def _app() -> typer.Typer:
    """``its eval arrivals`` as a one-command Typer app."""
    app = typer.Typer()
    app.command()(eval_arrivals)
    return app


def _route_vehicles(wmata_dir: Path, route: str) -> list[str]:
    """Vehicles of ``route`` (on the stand-in AVL: of its busiest route)."""
    from tests.telematics.core_fixtures import pick

    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    route = pick(avl["route_id"], route)
    return sorted(avl.loc[avl["route_id"] == route, "vehicle_id"].unique())


@pytest.mark.eval
def test_predictions_beat_both_baselines_on_route_d96(real_wmata_dir: Path) -> None:
    wmata_dir = real_wmata_dir
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
    assert ("eval", "arrivals", eval_arrivals) in COMMANDS
    app = typer.Typer()
    app.command()(eval_arrivals)
    out = CliRunner().invoke(app, ["--gtfs", str(wmata_dir / "wmata_gtfs.zip"), "--avl", str(path),
                                   "--json"])
    assert out.exit_code == 0, out.output
    last = json.loads(out.output.strip().splitlines()[-1])
    assert set(last) == {"predictions", "within_windows", "mae_s", "within_by_bucket",
                         "baselines", "assigned_trip_accuracy", "prediction_completeness", "eta_benchmark",
                         "trip_minute_completeness", "path_sources", "positions_left_out", "delay_weight"}
    # two buses teach too little to step away from the model: the default weight, except where a
    # bus is alone on its route (no running time of the other learnt yet: delay propagation, 1.0)
    weights = [w for w in last["delay_weight"].values() if w is not None]
    assert weights and all(0.2 <= w <= 1.0 for w in weights), last["delay_weight"]
    if small.groupby("vehicle_id").size().min() >= 100:  # the real day: the two run together for hours
        assert all(w < 0.25 for w in weights), last["delay_weight"]
    else:  # the stand-in's sample: one of them reports a few pings, completing no segment
        assert all(w == 1.0 for w in weights), last["delay_weight"]
    assert last["path_sources"]["shape"] > 0 and last["path_sources"]["road"] == 0  # the feed's shapes, no roads
    assert 0.0 < last["prediction_completeness"] <= 1.0
    assert set(last["baselines"]) == {"schedule", "delay_propagation"}
    assert last["predictions"] > 0


@pytest.mark.eval  # on the simulated stand-in the profile left the scores unchanged (see notes)
def test_history_days_feed_the_time_of_day_profile(real_wmata_dir: Path, tmp_path: Path) -> None:
    wmata_dir = real_wmata_dir
    # another "day": the same D96 positions shifted one week earlier
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    d96 = avl[avl["vehicle_id"].isin(_route_vehicles(wmata_dir, "D96"))]
    today = tmp_path / "today.csv"
    d96.to_csv(today, index=False)
    earlier = d96.copy()
    # an earlier day that runs the same services (WMATA: a week before; the stand-in's
    # Saturday service: the Saturday before)
    from datetime import date, timedelta

    from telematics.gtfs import service_ids_on

    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    day = date(2026, 2, 16)
    back = next((k for k in (7, 1, 2, 3, 4, 5, 6)
                 if service_ids_on(feed, day) <= service_ids_on(feed, day - timedelta(days=k))), 7)
    stamps = pd.to_datetime(earlier["timestamp"]) - pd.Timedelta(days=back)
    earlier["timestamp"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier["start_date"] = stamps.dt.strftime("%Y%m%d")
    history = tmp_path / "history.csv"
    earlier.to_csv(history, index=False)
    gtfs = wmata_dir / "wmata_gtfs.zip"
    plain = evaluate_arrivals(gtfs, today, assign=False)
    informed = evaluate_arrivals(gtfs, today, [history], assign=False)
    assert isinstance(informed["predictions"], int) and informed["predictions"] > 1_000
    assert informed["mae_s"] != plain["mae_s"]  # the profile replaced the schedule prior


def _early_and_waiting(avl: pd.DataFrame, early_s: float = 480.0, wait_s: float = 360.0,
                       every_s: float = 30.0) -> pd.DataFrame:
    """The busiest recorded trip of one vehicle, run ``early_s`` ahead of its recorded times, the
    bus then standing still mid-trip for ``wait_s`` (a ping every ``every_s``, speed 0) before it
    goes on ``early_s - wait_s`` early: an early bus waiting for its time, built from the
    recorded positions of whichever feed (real or stand-in) is at hand."""
    runs = avl[avl["trip_id"] != ""].groupby(["vehicle_id", "trip_id"]).size()
    vid, trip = runs.idxmax()
    run = avl[(avl["vehicle_id"] == vid) & (avl["trip_id"] == trip)].sort_values("time_s").reset_index(drop=True)
    mid = len(run) // 2
    before = run.iloc[:mid + 1].assign(time_s=lambda f: f["time_s"] - early_s)
    t0 = float(before["time_s"].iloc[-1])
    waiting = pd.concat([before.iloc[[-1]]] * int(wait_s // every_s), ignore_index=True)
    waiting["time_s"] = t0 + every_s * np.arange(1, len(waiting) + 1)
    waiting["speed_mps"] = 0.0
    after = run.iloc[mid + 1:].assign(time_s=lambda f: f["time_s"] - early_s + wait_s)
    out = pd.concat([before, waiting, after], ignore_index=True)
    out["line"] = np.arange(len(out)) + 2
    return out


def test_vehicle_stopped_ahead_of_schedule_holds_until_its_time(wmata_dir: Path) -> None:
    """A bus standing still ahead of its schedule is predicted to leave no earlier than the
    schedule says; an early bus that moves is not held."""
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    avl = _early_and_waiting(read_avl(wmata_dir / "wmata_avl.csv"))
    cols = replay_predictions(feed, trip_paths(feed), avl)
    # scheduled time at the vehicle's position, from delay propagation's current delay
    sched_here = cols["now"] - (cols["delayprop"] - cols["sched"])
    held = (cols["still"] >= HOLD_S) & (cols["waiting"] == 0) & (sched_here > cols["now"] + 60)
    assert held.sum() > 5
    # before the blend, every held prediction leaves no earlier than the schedule says
    assert (cols["raw"][held] >= sched_here[held] - 1e-6).all()
    moving = cols["still"] == 0
    assert (cols["raw"][moving] < cols["sched"][moving]).any()  # moving early ones are not held


def test_one_bus_seen_mid_trip_on_a_full_feed(wmata_dir: Path, tmp_path: Path) -> None:
    """Issue #24's second feed: one bus on a full GTFS, first seen mid-trip, so no departure
    from an origin is ever observed (the model of origin lateness is empty: the ``index -1``
    crash). The CLI runs and scores its predictions."""
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    vid = avl["vehicle_id"].value_counts().index[0]
    run = avl[avl["vehicle_id"] == vid].sort_values("timestamp")
    trip = run["trip_id"].iloc[len(run) // 2]
    on_trip = run[run["trip_id"] == trip]
    path = tmp_path / "one_bus.csv"
    on_trip.iloc[len(on_trip) // 3:].to_csv(path, index=False)  # from a third of the trip on
    result = CliRunner().invoke(_app(), ["--gtfs", str(wmata_dir / "wmata_gtfs.zip"), "--avl", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["predictions"] > 0 and 0.0 <= out["within_windows"] <= 1.0
    assert out["assigned_trip_accuracy"] is not None


def test_sparse_pings_past_midnight_without_shapes(tmp_path: Path) -> None:
    """Issue #24's first feed: pings every 2 min, no shapes.txt, a trip running past midnight
    into a day without service, the bus last seen at its trip's last stop (an empty batch of
    segments ahead: the ``index 0`` crash)."""
    start = service_day_start(DAY, TZ) + 23 * 3600 + 56 * 60  # NIGHT leaves S0 at 23:56
    pings = [("bus", start - 120.0 + 120.0 * k, *ping_latlon("NIGHT", min(max((120.0 * k - 120.0) / 480.0, 0.0), 1.0)),
              "NIGHT", None) for k in range(7)]
    avl_frame(pings).to_csv(tmp_path / "night.csv", index=False)
    result = CliRunner().invoke(_app(), ["--gtfs", str(write_feed(tmp_path, "no-shapes")), "--avl",
                                         str(tmp_path / "night.csv"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["predictions"] > 0 and out["assigned_trip_accuracy"] is not None

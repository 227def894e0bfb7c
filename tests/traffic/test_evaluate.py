"""`its eval congestion`: the issue's JSON on the real Los-loop data, and clear input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from its.app.cli import app
from traffic.evaluate import evaluate_files

runner = CliRunner()


@pytest.mark.eval
@pytest.mark.slow  # the boosted default model: minutes of LightGBM fits on one core
def test_cli_prints_issue_json_last_on_losloop(real_losloop: Path) -> None:
    losloop = real_losloop
    args = ["eval", "congestion", "--segments", str(losloop / "segments.csv"),
            "--adjacency", str(losloop / "adjacency.csv"), "--speeds", str(losloop / "speeds.csv"),
            "--train-days", "3", "--observed-frac", "0.5", "--seed", "0", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {"timestamps", "hidden", "mae_kmh", "baselines"}
    assert set(last["baselines"]) == {"free_flow", "historical"}
    assert last["timestamps"] == 288  # the 4th day, 5-min steps
    assert last["hidden"] == 288 * (207 - round(0.5 * 207))
    # the issue's targets: >= 25 % below historical and >= 50 % below free_flow (2.717 vs 2.747 measured)
    assert last["mae_kmh"] <= 0.75 * last["baselines"]["historical"]
    assert last["mae_kmh"] <= 0.5 * last["baselines"]["free_flow"], last
    # the default model (trees over the linear model) beats the linear model, which beats graph smoothing
    mae = {"boosted": last["mae_kmh"]}
    for model in ("linear", "smoothing"):
        other = runner.invoke(app, [*args, "--model", model])
        assert other.exit_code == 0, other.output
        mae[model] = json.loads(other.stdout.strip().splitlines()[-1])["mae_kmh"]
    assert mae["boosted"] < 0.97 * mae["linear"] and mae["linear"] < 0.95 * mae["smoothing"], mae
    bad = runner.invoke(app, [*args, "--model", "kriging"])
    assert bad.exit_code == 2 and "model must be one of boosted, linear, smoothing" in bad.output


def test_separate_train_file_gives_the_same_result_as_the_day_split(losloop: Path, tmp_path: Path) -> None:
    lines = (losloop / "speeds.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    day4 = [r for r in rows if r.startswith("2012-03-04")]
    other = [r for r in rows if not r.startswith("2012-03-04")]
    (tmp_path / "test.csv").write_text("\n".join([header, *day4]) + "\n")
    (tmp_path / "train.csv").write_text("\n".join([header, *other]) + "\n")
    split = evaluate_files(losloop / "segments.csv", losloop / "adjacency.csv", losloop / "speeds.csv",
                           train_days=3, seed=1, model="linear")
    files = evaluate_files(losloop / "segments.csv", losloop / "adjacency.csv", tmp_path / "test.csv",
                           train=tmp_path / "train.csv", seed=1, model="linear")
    assert files.to_json() == split.to_json()


def test_bad_speed_names_file_line_and_field(losloop: Path, tmp_path: Path) -> None:
    for name in ("segments.csv", "adjacency.csv"):
        shutil.copy(losloop / name, tmp_path / name)
    lines = (losloop / "speeds.csv").read_text().splitlines()[:2000]
    lines[5] = lines[5].rsplit(",", 1)[0] + ",fast"
    bad = tmp_path / "speeds.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"speeds\.csv: line 6: field speed_kmh: not a number: 'fast'"):
        evaluate_files(tmp_path / "segments.csv", tmp_path / "adjacency.csv", bad)
    result = runner.invoke(app, ["eval", "congestion", "--segments", str(tmp_path / "segments.csv"),
                                 "--adjacency", str(tmp_path / "adjacency.csv"), "--speeds", str(bad)])
    assert result.exit_code == 2 and "line 6" in result.output


def test_unknown_segment_in_adjacency_is_reported(losloop: Path, tmp_path: Path) -> None:
    shutil.copy(losloop / "segments.csv", tmp_path / "segments.csv")
    first = (losloop / "segments.csv").read_text().splitlines()[1].split(",")[0]  # real: 773869
    (tmp_path / "adjacency.csv").write_text(f"from_segment,to_segment,weight\n{first},999,0.5\n")
    with pytest.raises(ValueError, match=r"adjacency\.csv: line 2: field to_segment: unknown segment '999'"):
        evaluate_files(tmp_path / "segments.csv", tmp_path / "adjacency.csv", losloop / "speeds.csv")


@pytest.mark.eval
def test_references_show_the_free_flow_target_is_below_full_information_predictors(real_losloop: Path) -> None:
    losloop = real_losloop
    result = evaluate_files(losloop / "segments.csv", losloop / "adjacency.csv", losloop / "speeds.csv",
                            train_days=3, references=True, model="linear")
    ref = result.references
    assert set(ref) == {"linear_full_past", "linear_observed_past", "persistence_full_past", "two_sided_mean",
                        "two_sided_median", "noise_floor"}
    target = 0.5 * result.free_flow_mae_kmh
    # the estimator (even with the linear per-segment model alone) beats the best temporal-only causal reference under the
    # methodology; given every earlier value (the methodology hides half), a linear predictor fitted on
    # TRAIN beats persistence, yet stays above the target; so does non-causal interpolation
    assert result.mae_kmh < ref["linear_observed_past"] < ref["persistence_full_past"]
    assert ref["linear_full_past"] < ref["persistence_full_past"]
    assert ref["linear_full_past"] > target and ref["two_sided_mean"] > target
    assert ref["noise_floor"] < ref["two_sided_median"] < ref["two_sided_mean"]
    # given every earlier value, the temporal-only linear reference beats its own version under the methodology
    assert ref["linear_full_past"] < ref["linear_observed_past"]
    out = result.to_json()
    assert set(out["references"]) == set(ref) and "reference linear_full_past" in result.summary()

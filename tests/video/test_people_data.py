"""People counting CLI on real Mall frames: eval JSON, calibration round trip, range checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from its.app.cli import app
from video.people import PeopleModel, count_frames
from video.people_data import _numbered, load_annotated, parse_range


def _json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_parse_range_and_frame_numbers() -> None:
    assert parse_range("601-800") == (601, 800) and parse_range(" 1 - 1 ") == (1, 1) and parse_range(None) is None
    for bad in ("800-601", "1-", "a-b", "5"):
        with pytest.raises(ValueError, match="FIRST-LAST"):
            parse_range(bad)
    assert list(_numbered({"seq_000802.jpg": b"b", "seq_000801.jpg": b"a"}).items()) == [(801, b"a"), (802, b"b")]
    assert _numbered({"b.jpg": b"2", "a.jpg": b"1"}) == {1: b"1", 2: b"2"}  # no digits: position in name order


def test_load_annotated_selects_frames(mall: Path, tmp_path: Path) -> None:
    frames = load_annotated(mall / "frames.tar", mall / "counts.csv", mall / "heads.csv", (11, 20))
    assert frames.numbers.tolist() == list(range(11, 21)) and len(frames.jpegs) == 10
    assert frames.heads is not None and [len(h) for h in frames.heads] == frames.counts.astype(int).tolist()
    assert frames.decode(0).shape == (480, 640, 3)
    some = tmp_path / "counts.csv"
    some.write_text("frame,count\n5,30\n3,29\n")  # the counts file chooses the frames, in time order
    assert load_annotated(mall / "frames.tar", some).numbers.tolist() == [3, 5]
    some.write_text("frame,count\n900,1\n")
    with pytest.raises(ValueError, match="no image for frame"):
        load_annotated(mall / "frames.tar", some)


def test_eval_people_prints_json_and_refuses_fitted_frames(mall: Path) -> None:
    base = ["eval", "people", "--train-frames", str(mall / "frames.tar"), "--train-counts", str(mall / "counts.csv"),
            "--frames", str(mall / "frames.tar"), "--counts", str(mall / "counts.csv"), "--roi", str(mall / "roi.png")]
    result = CliRunner().invoke(app, [*base, "--train-range", "1-100", "--range", "101-140", "--json"])
    assert result.exit_code == 0, result.output
    out = _json(result.output)
    assert {"mae", "rmse", "mean_count", "frames", "fps"} <= set(out)
    assert out["frames"] == 40 and out["train_frames"] == 100 and out["model"] == "cells"  # heads.csv found beside counts
    counts = np.loadtxt(mall / "counts.csv", delimiter=",", skiprows=1)[:, 1]
    assert out["mean_count"] == pytest.approx(counts[100:140].mean(), abs=1e-3)
    naive = np.abs(counts[:100].mean() - counts[100:140]).mean()
    assert out["mae"] < naive and out["rmse"] >= out["mae"] and out["fps"] > 0
    overlap = CliRunner().invoke(app, [*base, "--train-range", "1-100", "--range", "100-120"])
    assert overlap.exit_code == 2 and "were fitted on" in overlap.output


def test_calibrate_people_round_trips_the_model(mall: Path, tmp_path: Path) -> None:
    train = tmp_path / "cam"
    train.mkdir()
    shutil.copy(mall / "counts.csv", train / "counts.csv")  # no heads.csv here: counts-only model
    out = tmp_path / "cam.npz"
    result = CliRunner().invoke(app, ["video", "calibrate-people", "--frames", str(mall / "frames.tar"),
                                      "--counts", str(train / "counts.csv"), "--range", "1-100",
                                      "--roi", str(mall / "roi.png"), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = _json(result.output)
    assert info["model"] == "bands" and info["frames"] == 100 and Path(info["model_path"]) == out
    model = PeopleModel.load(out)
    assert model.kind == "bands" and model.meta["first_frame"] == 1 and model.meta["last_frame"] == 100
    test = load_annotated(mall / "frames.tar", mall / "counts.csv", None, (101, 130))
    pred = count_frames(model, [test.decode(i) for i in range(len(test))])
    assert np.abs(pred - test.counts).mean() < np.abs(model.meta["mean_count"] - test.counts).mean()
    missing = CliRunner().invoke(app, ["video", "calibrate-people", "--frames", str(tmp_path / "none.tar"),
                                       "--counts", str(train / "counts.csv"), "--out", str(out)])
    assert missing.exit_code == 2 and "not found" in missing.output


@pytest.mark.eval
@pytest.mark.slow
def test_full_mall_eval_meets_the_targets(real_mall: Path) -> None:
    mall = real_mall
    """Fit on frames 1-600, score 601-800 (never fitted on): MAE <= 10 % of the mean, >= 15 fps."""
    result = CliRunner().invoke(app, [
        "eval", "people", "--train-frames", str(mall / "frames.tar"), "--train-counts", str(mall / "counts.csv"),
        "--train-range", "1-600", "--frames", str(mall / "frames.tar"), "--counts", str(mall / "counts.csv"),
        "--range", "601-800", "--roi", str(mall / "roi.png"), "--json"])
    assert result.exit_code == 0, result.output
    out = _json(result.output)
    assert out["frames"] == 200 and out["mae"] <= 0.10 * out["mean_count"] and out["fps"] >= 15.0, out

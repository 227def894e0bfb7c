"""People counting CLI on real Mall frames: eval JSON, calibration round trip, range checks."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from its.app.cli import app
from video.people import PeopleModel, count_frames
from video.people_data import (
    AnnotatedFrames,
    _numbered,
    calibrate,
    load_annotated,
    parse_range,
    read_roi,
)
from video.sources import SourceError


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


# --- hostile annotations a new city could hand us: a clear error naming file, line and field ---

def _folder(mall: Path, tmp_path: Path, frames: int = 12) -> Path:
    """The first ``frames`` Mall frames as a folder, with their counts and heads."""
    out = tmp_path / "cam"
    (out / "frames").mkdir(parents=True)
    with tarfile.open(mall / "frames.tar") as tar:
        for member in sorted((m for m in tar if m.isfile()), key=lambda m: m.name)[:frames]:
            fh = tar.extractfile(member)
            assert fh is not None
            (out / "frames" / Path(member.name).name).write_bytes(fh.read())
    counts = (mall / "counts.csv").read_text().splitlines()
    (out / "counts.csv").write_text("\n".join(counts[:frames + 1]) + "\n")
    heads = [r for r in (mall / "heads.csv").read_text().splitlines()[1:] if int(r.split(",")[0]) <= frames]
    (out / "heads.csv").write_text("\n".join(["frame,x,y", *heads]) + "\n")
    return out


@pytest.mark.parametrize(("counts", "message"), [
    ("frame,count\n1,29\n2,\n", r"counts\.csv: line 3: field count: expected a number >= 0, got ''"),
    ("frame,count\n1,29\n2,many\n", r"counts\.csv: line 3: field count: expected a number >= 0, got 'many'"),
    ("frame,count\n1,29\n2,-4\n", r"counts\.csv: line 3: field count: expected a number >= 0, got '-4'"),
    ("frame,count\n1,29\n2.5,3\n", r"counts\.csv: line 3: field frame: expected a whole number >= 0, got '2\.5'"),
    ("frame,count\n1,29\n1,30\n", r"counts\.csv: line 3: field frame: frame 1 already counted on line 2"),
    ("frame,people\n1,29\n", r"counts\.csv: line 1: missing column\(s\) count \(expected frame,count, found frame,people\)"),
    ("", r"counts\.csv: empty file"),
    ("frame,count\n", r"counts\.csv: no annotated frame"),
])
def test_bad_counts_name_file_line_and_field(mall: Path, tmp_path: Path, counts: str, message: str) -> None:
    cam = _folder(mall, tmp_path, frames=3)
    (cam / "counts.csv").write_text(counts)
    with pytest.raises(ValueError, match=message):
        load_annotated(cam / "frames", cam / "counts.csv")


def test_bad_heads_and_roi_name_the_problem(mall: Path, tmp_path: Path) -> None:
    cam = _folder(mall, tmp_path)
    frames, counts, heads = cam / "frames", cam / "counts.csv", cam / "heads.csv"
    good = heads.read_text().splitlines()
    assert load_annotated(frames, counts, heads).heads is not None
    (cam / "missing.csv").unlink(missing_ok=True)
    with pytest.raises(ValueError, match=r"missing\.csv: file not found"):
        load_annotated(frames, cam / "missing.csv")
    heads.write_text("frame,x,y\n")
    with pytest.raises(ValueError, match=r"heads\.csv: no head positions .*--no-heads"):
        load_annotated(frames, counts, heads)
    heads.write_text("\n".join([good[0], "1,1126.8,60.7", *good[2:]]) + "\n")
    with pytest.raises(ValueError, match=r"heads\.csv: line 2: field x: 1126\.8 lies outside the 640x480 frames"):
        load_annotated(frames, counts, heads)
    heads.write_text("\n".join([good[0], "1,abc,60.7", *good[2:]]) + "\n")
    with pytest.raises(ValueError, match=r"heads\.csv: line 2: field x: expected a number, got 'abc'"):
        load_annotated(frames, counts, heads)
    heads.write_text("\n".join([good[0], *(r for r in good[1:] if not r.startswith("1,"))]) + "\n")
    with pytest.raises(ValueError, match=r"heads\.csv: no head for frame 1 \(count \d+\)"):
        load_annotated(frames, counts, heads)
    # frames of another size than the annotations: the heads fall outside them
    for image in frames.iterdir():
        cv2.imwrite(str(image), cv2.resize(cv2.imread(str(image)), (320, 240)))
    heads.write_text("\n".join(good) + "\n")
    with pytest.raises(ValueError, match=r"lies outside the 320x240 frames"):
        load_annotated(frames, counts, heads)
    small = load_annotated(frames, counts)  # no heads: fits from counts, but the ROI must match
    with pytest.raises(ValueError, match="ROI image is 640x480, frames are 320x240"):
        calibrate(small, read_roi(mall / "roi.png"))
    cv2.imwrite(str(cam / "black.png"), np.zeros((240, 320), np.uint8))
    with pytest.raises(ValueError, match=r"black\.png: no counted"):
        read_roi(cam / "black.png")
    with pytest.raises(ValueError, match="3 annotated frame"):
        calibrate(small.subset(np.arange(3)))
    big = cv2.imencode(".jpg", np.zeros((480, 640, 3), np.uint8))[1].tobytes()
    mixed = AnnotatedFrames(small.source, small.numbers, [small.jpegs[0], big, *small.jpegs[2:]], small.counts)
    with pytest.raises(SourceError, match=r"frame 2 is 640x480, expected 320x240"):
        calibrate(mixed)


def test_eval_people_cli_refuses_bad_annotations_without_traceback(mall: Path, tmp_path: Path) -> None:
    cam = _folder(mall, tmp_path)
    (cam / "counts.csv").write_text("frame,count\n1,29\n2,-4\n")
    args = ["eval", "people", "--train-frames", str(cam / "frames"), "--train-counts", str(cam / "counts.csv"),
            "--frames", str(cam / "frames"), "--counts", str(cam / "counts.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "counts.csv: line 3: field count" in result.output, result.output
    (cam / "counts.csv").unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "counts.csv: file not found" in result.output, result.output

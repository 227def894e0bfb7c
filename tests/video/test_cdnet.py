"""CDnet 2014 highway: foreground F-measure and line counts against the ground truth."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from video.cdnet import ForegroundScore, evaluate_cdnet, load_cdnet
from video.sources import SourceError


@pytest.fixture(scope="module")
def full_run(cdnet_archive: Path) -> dict[str, Any]:
    return evaluate_cdnet(cdnet_archive)


@pytest.mark.eval
def test_foreground_f_measure_over_the_temporal_roi(full_run: dict[str, Any]) -> None:
    fg = full_run["foreground"]
    assert full_run["scored_frames"] == [470, 1700] and fg["frames"] == 1231
    assert fg["f_measure"] >= 0.85
    assert fg["f_measure_shadow_negative"] >= 0.85
    assert fg["precision"] > 0.9 and fg["recall"] > 0.8


@pytest.mark.eval
def test_line_count_within_5_percent_of_ground_truth(full_run: dict[str, Any]) -> None:
    c = full_run["counts"]["line-0"]
    # 22 vehicles cross row 150 in frames 470-1700 (checked by eye on a row-150 time slice
    # of the ground-truth masks); the ground-truth tracker must find them all
    assert c["ground_truth"] == 22 and c["gt_out"] == 0
    assert abs(c["pipeline"] - c["ground_truth"]) <= 0.05 * c["ground_truth"]


def test_scoring_excludes_unknown_and_outside_roi() -> None:
    truth = np.array([[255, 255, 0, 0, 50, 170, 85]], np.uint8)
    mask = np.array([[255, 0, 255, 0, 255, 255, 255]], np.uint8)
    score = ForegroundScore()
    score.add(mask, truth, np.ones_like(truth, bool))
    assert (score.tp, score.fn, score.fp, score.tn, score.shadow_fp) == (1, 1, 1, 1, 1)
    d = score.as_dict()
    assert d["precision"] == 0.5 and d["f_measure"] == 0.5
    assert d["f_measure_shadow_negative"] == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5), abs=1e-4)


def test_load_rejects_non_cdnet_archives(clip1: Path) -> None:
    from video.sources import SourceError

    with pytest.raises(SourceError):
        load_cdnet(clip1)


def _archive(path: Path, n: int = 3, truth_size: tuple[int, int] = (32, 24), temporal: str = "1 3") -> Path:
    """A tiny synthetic CDnet-layout archive (32x24 frames)."""
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for i in range(1, n + 1):
            add(f"seq/input/in{i:06d}.jpg", cv2.imencode(".jpg", np.full((24, 32, 3), 90, np.uint8))[1].tobytes())
            add(f"seq/groundtruth/gt{i:06d}.png",
                cv2.imencode(".png", np.zeros(truth_size[::-1], np.uint8))[1].tobytes())
        add("seq/ROI.bmp", cv2.imencode(".bmp", np.full((24, 32), 255, np.uint8))[1].tobytes())
        add("seq/temporalROI.txt", temporal.encode())
    return path


def test_inconsistent_cdnet_archives_are_refused_with_their_name(tmp_path: Path) -> None:
    assert load_cdnet(_archive(tmp_path / "ok.tar.gz")).last_scored == 3
    with pytest.raises(SourceError, match=r"size\.tar\.gz: frames, ground truth and ROI differ in size: .* 16x12"):
        load_cdnet(_archive(tmp_path / "size.tar.gz", truth_size=(16, 12)))
    for temporal in ("10 20", "3 1"):
        with pytest.raises(SourceError, match=r"temporalROI\.txt: frames .* not within the sequence's 3 frames"):
            load_cdnet(_archive(tmp_path / "t.tar.gz", temporal=temporal))
    (tmp_path / "text.tar.gz").write_text("not an archive\n")
    with pytest.raises(SourceError, match=r"text\.tar\.gz: not a readable tar archive \([^\n]*\)$"):
        load_cdnet(tmp_path / "text.tar.gz")

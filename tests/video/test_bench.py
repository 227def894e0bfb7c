from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from video.bench import bench_video, make_bench_clip


def test_bench_clip_is_640x360(clip1: Path, tmp_path: Path) -> None:
    n = make_bench_clip(clip1, tmp_path / "c.avi")
    cap = cv2.VideoCapture(str(tmp_path / "c.avi"))
    assert n == 500 and (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 360)


def test_bench_reports_both_rates(clip1: Path) -> None:
    threads = cv2.getNumThreads()
    r = bench_video(clip1, repeats=1)
    assert cv2.getNumThreads() == threads  # restored
    assert r["resolution"] == [640, 360] and r["frames"] == 500
    assert r["pipeline_fps"] > 0 and r["decode_mog2_fps"] > 0
    # the reported rates are rounded to 0.1 fps, the ratio is computed before rounding
    assert r["ratio"] == pytest.approx(r["pipeline_fps"] / r["decode_mog2_fps"], abs=0.01)
    assert r["realtime_streams_per_core_at_15fps"] == pytest.approx(r["pipeline_fps"] / 15, abs=0.06)

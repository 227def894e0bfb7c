from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from video.bench import bench_people, bench_video, make_bench_clip


def test_bench_clip_is_640x360(clip1: Path, tmp_path: Path) -> None:
    n = make_bench_clip(clip1, tmp_path / "c.avi")
    cap = cv2.VideoCapture(str(tmp_path / "c.avi"))
    assert n == 500 and (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 360)


def test_bench_reports_both_rates(clip1: Path) -> None:
    threads = cv2.getNumThreads()
    r = bench_video(clip1, repeats=1)
    assert cv2.getNumThreads() == threads  # restored
    assert r["resolution"] == [640, 360] and r["frames"] == 500
    assert r["pipeline_fps"] > 0 and r["decode_mog2_fps"] > 0 and r["baseline_fps"] > 0
    # equal work: the baseline decodes, resizes to the pipeline's model width, runs its subtractor
    assert r["model_width"] == 320 and "320 px + KNN" in r["baseline"]
    # the pipeline does all the baseline does and more (best of interleaved runs; small slack
    # for a busy machine)
    assert r["pipeline_fps"] <= 1.15 * r["baseline_fps"]
    # the reported rates are rounded to 0.1 fps, the ratio is computed before rounding
    assert r["ratio"] == pytest.approx(r["pipeline_fps"] / r["baseline_fps"], abs=0.01)
    assert r["ratio_cpu"] == pytest.approx(r["pipeline_fps_cpu"] / r["baseline_fps_cpu"], abs=0.01)
    assert r["pipeline_fps_cpu"] >= 0.9 * r["pipeline_fps"]  # CPU time <= elapsed time on one thread
    assert r["realtime_streams_per_core_at_15fps"] == pytest.approx(r["pipeline_fps"] / 15, abs=0.06)
    # `its bench all` names the equal-work baseline the ratio is against
    from its.app.bench.all import render_markdown

    row = next(x for x in render_markdown({"machine": "test", "benches": {"video": {"result": r}}}).splitlines()
               if x.startswith("| video | pipeline"))
    assert f"| {r['baseline']} {r['baseline_fps']:.0f} | {r['ratio']} |" in row


def test_bench_people_rate(mall: Path) -> None:
    r = bench_people(mall, calibration=(1, 60), frames=(61, 90), repeats=1)
    assert r["people_frames"] == 30 and r["people_resolution"] == [640, 480]
    assert r["people_fps"] > 0 and r["people_fps_cpu"] >= 0.9 * r["people_fps"]  # CPU time <= elapsed time

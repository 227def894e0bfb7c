"""The rendered street scene: periodic, its true counts known, counted by the real pipeline,
written as a clip the platform's sources read, and labelled synthetic on the API."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from its.app.demo import synthetic_camera_config
from video.config import CameraConfig, load_cameras
from video.ingest import parse_camera_status
from video.pipeline import CountingPipeline
from video.service import CameraService
from video.sources import Frame, VideoSource
from video.synthetic import LINES, StreetScene, camera_config, write_clip


def test_scene_is_periodic_and_deterministic() -> None:
    a, b = StreetScene(seed=3, period_s=20.0), StreetScene(seed=3, period_s=20.0)
    assert np.array_equal(a.frame(7.0), b.frame(7.0))
    assert np.array_equal(a.frame(7.0), a.frame(27.0))  # one period later: the same frame
    truth = a.true_counts()
    assert truth["lanes-150"] == truth["lanes-100"]
    assert truth["lanes-150"]["in"] + truth["lanes-150"]["out"] == len(a.vehicles) == 4 * 2
    by_class = a.true_counts_by_class()
    assert sum(by_class["in"].values()) == truth["lanes-150"]["in"]


def test_pipeline_counts_one_loop_exactly() -> None:
    """Over the second loop (the background learnt in the first) every line counts the truth."""
    scene = StreetScene(seed=5, period_s=16.0, fps=12.5, vehicles_per_min=15.0)
    cam = CameraConfig.model_validate(camera_config("syn", Path("unused.avi")))
    pipeline = CountingPipeline(cam.pipeline_config())
    n = int(scene.period_s * scene.fps)
    wall0 = time.time()
    first: dict[str, dict[str, int]] = {}
    for i in range(2 * n):
        t = i / scene.fps
        pipeline.process(Frame(scene.frame(t), i, t, wall0 + t))
        if i == n - 1:
            first = {k: {"in": v["in"], "out": v["out"]} for k, v in pipeline.counts().items()}
    second = {k: {d: v[d] - first[k][d] for d in ("in", "out")} for k, v in pipeline.counts().items()}
    assert second == scene.true_counts(), (second, scene.true_counts())


def test_two_wheelers_keep_their_class_over_one_loop() -> None:
    """Per-class counts over the second loop equal the truth, the scene's 4 motorcycles included
    (the two-wheeler vote rule and the fragment joining must not turn them into cars)."""
    scene = StreetScene(seed=1, period_s=16.0, fps=12.5, vehicles_per_min=15.0)
    cam = CameraConfig.model_validate(camera_config("syn", Path("unused.avi")))
    pipeline = CountingPipeline(cam.pipeline_config())
    n = int(scene.period_s * scene.fps)

    def by_class() -> dict[str, int]:
        table = pipeline.counts()["lanes-150"]["by_class"]
        return {c: v["in"] + v["out"] for c, v in table.items()}

    first: dict[str, int] = {}
    for i in range(2 * n):
        t = i / scene.fps
        pipeline.process(Frame(scene.frame(t), i, t, 1e9 + t))
        if i == n - 1:
            first = by_class()
    second = {c: v - first.get(c, 0) for c, v in by_class().items()}
    truth = scene.true_counts_by_class()
    expected = {c: truth["in"].get(c, 0) + truth["out"].get(c, 0) for c in ("car", "truck_bus", "motorcycle")}
    assert expected == {"car": 9, "truck_bus": 3, "motorcycle": 4}
    assert {c: second.get(c, 0) for c in expected} == expected


def test_clip_is_read_back_by_the_platforms_source(tmp_path: Path) -> None:
    scene = StreetScene(seed=2, period_s=4.0, fps=10.0)
    clip = write_clip(tmp_path / "street.avi", scene)
    with VideoSource(str(clip)) as src:
        frames = list(src)
    assert len(frames) == 40 and frames[0].image.shape == (240, 320, 3)
    assert frames[-1].t == pytest.approx(3.9, abs=0.01)
    # Motion-JPEG keeps the picture: mean absolute error of a few grey levels
    assert np.abs(frames[5].image.astype(int) - scene.frame(0.5).astype(int)).mean() < 6


def test_demo_camera_config_is_valid_and_labelled(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(synthetic_camera_config(tmp_path))
    (cam,) = load_cameras(path).cameras
    assert cam.synthetic and cam.loop and "not real footage" in (cam.description or "")
    assert [line.id for line in cam.lines] == list(LINES)
    assert Path(cam.source).is_file() and cam.interval_s == 15
    again = synthetic_camera_config(tmp_path)  # a second run reuses the rendered clip
    assert again == path.read_text()


def test_synthetic_label_reaches_the_camera_list() -> None:
    topic = "its/v1/devices/camera/syn-1/status"
    body = {"online": True, "camera_id": "syn-1", "synthetic": True, "description": "rendered"}
    status = parse_camera_status(topic, orjson.dumps(body))
    assert status.synthetic is True and status.description == "rendered"
    service = CameraService()
    service.on_status(topic, orjson.dumps(body))
    (listed,) = service.list_cameras()
    assert listed["synthetic"] is True and listed["description"] == "rendered"
    from its.ingest import PayloadError

    with pytest.raises(PayloadError, match="synthetic"):
        parse_camera_status(topic, orjson.dumps({**body, "synthetic": "yes"}))

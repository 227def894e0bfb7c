"""Per-class counts on the real clips against our by-eye annotation (tests/video/data/class_crossings.csv).

The annotation (method in the CSV header and the README) lists, per clip, every object whose centre
crossed the row-150 counting line, its frame and its class. Only haar_video1 has a truck (a tank
truck), only haar_video2 a lorry and a two-wheeler (a bicycle); CDnet highway has cars only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import pytest

from video.cdnet import HIGHWAY_LINES, HIGHWAY_PERSPECTIVE, load_cdnet
from video.class_eval import (
    Crossing,
    crossing_events,
    load_crossings,
    match_crossings,
    score_classes,
)
from video.config import load_cameras
from video.pipeline import CountingPipeline, PipelineConfig
from video.sources import Frame, VideoSource

ANNOTATION = Path(__file__).parent / "data" / "class_crossings.csv"
EXAMPLE = Path(__file__).resolve().parents[2] / "video" / "data" / "cameras.example.yaml"


def _c(frame: int, x: float, cls: str, line: str = "l", direction: str = "in") -> Crossing:
    return Crossing(line, direction, frame, x, cls)


def test_a_split_vehicle_keeps_its_own_class_and_leaves_one_extra() -> None:
    truth = [_c(100, 200, "car"), _c(300, 100, "truck_bus")]
    # the car counted twice (a car-sized part and a motorcycle-sized part); the truck as a car
    found = [_c(103, 210, "motorcycle"), _c(105, 195, "car"), _c(298, 110, "car")]
    s = score_classes(truth, found)
    assert (s["matched"], s["missed"], s["extra"]) == (2, 0, 1)
    assert s["classes"]["car"] == {"annotated": 1, "counted": 2, "count_error": 1, "correct": 1,
                                   "precision": 0.5, "recall": 1.0}
    assert s["classes"]["truck_bus"]["recall"] == 0.0 and s["classes"]["truck_bus"]["precision"] is None
    assert s["classes"]["motorcycle"]["precision"] == 0.0 and s["classes"]["motorcycle"]["recall"] is None
    assert s["confusion"] == {"truck_bus>car": 1}


def test_pairs_need_the_same_line_and_direction_and_nearby_frames() -> None:
    truth = [_c(100, 200, "car")]
    assert match_crossings(truth, [_c(100, 200, "car", direction="out")]) == []
    assert match_crossings(truth, [_c(100, 200, "car", line="other")]) == []
    assert match_crossings(truth, [_c(113, 200, "car")]) == []
    assert match_crossings(truth, [_c(100, 246, "car")]) == []
    assert match_crossings(truth, [_c(112, 240, "car")]) == [(0, 0)]


def test_annotation_reads_every_clip_and_refuses_unknown_classes(tmp_path: Path) -> None:
    assert [len(load_crossings(ANNOTATION, c)) for c in ("haar_video1", "haar_video2", "cdnet_highway")] == [31, 23, 22]
    bad = tmp_path / "bad.csv"
    bad.write_text("clip,line_id,frame,x,direction,vehicle_class\nc,l,1,2,in,person\n")
    with pytest.raises(ValueError, match="person"):
        load_crossings(bad, "c")


def _camera_run(shared_data: Path, camera_id: str, clip: str) -> dict[str, Any]:
    path = shared_data / "video" / clip
    if not path.is_file():
        pytest.skip(f"shared video data missing: {path}")
    cam = next(c for c in load_cameras(EXAMPLE).cameras if c.id == camera_id)
    cv2.setRNGSeed(0)  # OpenCV's KNN background model samples at random: one fixed run
    pipeline = CountingPipeline(cam.pipeline_config(), roi=cam.roi_mask((240, 320)))
    with VideoSource(str(path)) as frames:
        found = [e for e in crossing_events(pipeline, frames) if e.line_id == "lanes-150"]
        first = round(pipeline.config.warmup_s * frames.fps)  # the first frame the pipeline counts
    truth = [t for t in load_crossings(ANNOTATION, clip.removesuffix(".avi")) if t.frame >= first]
    return score_classes(truth, found)


@pytest.fixture(scope="module")
def clip1_score(shared_data: Path) -> dict[str, Any]:
    return _camera_run(shared_data, "freeway-2", "haar_video1.avi")


@pytest.fixture(scope="module")
def clip2_score(shared_data: Path) -> dict[str, Any]:
    return _camera_run(shared_data, "freeway-1", "haar_video2.avi")


@pytest.fixture(scope="module")
def cdnet_score(shared_data: Path) -> dict[str, Any]:
    archive = shared_data / "video" / "cdnet_highway.tar.gz"
    if not archive.is_file():
        pytest.skip(f"shared video data missing: {archive}")
    seq = load_cdnet(archive)
    cv2.setRNGSeed(0)
    pipeline = CountingPipeline(PipelineConfig(lines=HIGHWAY_LINES, perspective=HIGHWAY_PERSPECTIVE), roi=seq.roi)
    frames = (Frame(seq.image(n), n - 1, (n - 1) / 25.0, (n - 1) / 25.0) for n in range(1, seq.last_scored + 1))
    first, last = seq.first_scored - 1, seq.last_scored - 1  # the temporal ROI, 0-based
    found = [e for e in crossing_events(pipeline, frames) if first <= e.frame <= last]
    truth = [t for t in load_crossings(ANNOTATION, "cdnet_highway") if first <= t.frame <= last]
    return score_classes(truth, found)


@pytest.mark.eval
def test_haar_video1_cars_and_its_tank_truck(clip1_score: dict[str, Any]) -> None:
    cls = clip1_score["classes"]
    assert cls["car"]["annotated"] == 28 and cls["truck_bus"]["annotated"] == 1
    assert cls["motorcycle"]["annotated"] == 0  # no two-wheeler in this clip: nothing to verify
    # measured 28 of 28 cars, all classed right (seeds 0 and 1 of the KNN)
    assert abs(cls["car"]["count_error"]) <= 1 and cls["car"]["recall"] >= 0.95 and cls["car"]["precision"] >= 0.95
    assert cls["truck_bus"]["correct"] == 1 and cls["truck_bus"]["count_error"] == 0
    assert cls["motorcycle"]["counted"] == 0


@pytest.mark.eval
def test_haar_video2_cars_lorry_and_bicycle(clip2_score: dict[str, Any]) -> None:
    cls = clip2_score["classes"]
    assert (cls["car"]["annotated"], cls["truck_bus"]["annotated"], cls["motorcycle"]["annotated"]) == (21, 1, 1)
    # measured 20 of 21 cars, no extra count (seeds 0-3 of the KNN): a dark car overtaking the lorry
    # merges with it. A dark car that is two-wheeler-sized on most frames stays a car (the two-wheeler
    # class needs 3/4 of a track's frames); an SUV split in two and a car's fragment are joined to
    # their vehicle before classing (video.detections.merge_fragments)
    assert abs(cls["car"]["count_error"]) <= 2 and cls["car"]["recall"] >= 0.9 and cls["car"]["precision"] >= 0.95
    assert cls["truck_bus"]["correct"] == 1 and cls["truck_bus"]["count_error"] == 0
    assert clip2_score["extra"] == 0 and clip2_score["missed"] <= 2
    # the bicycle is still missed (its blob is 0.01-0.12 of a car at its row, under the 0.15 noise
    # floor), and no car or piece of a car is counted as a two-wheeler any more
    assert cls["motorcycle"]["counted"] == 0


@pytest.mark.eval
def test_cdnet_highway_cars_only(cdnet_score: dict[str, Any]) -> None:
    cls = cdnet_score["classes"]
    assert cls["car"]["annotated"] == 22 and cls["truck_bus"]["annotated"] == cls["motorcycle"]["annotated"] == 0
    assert abs(cls["car"]["count_error"]) <= 1 and cls["car"]["recall"] >= 0.95 and cls["car"]["precision"] >= 0.95
    assert cls["truck_bus"]["counted"] == 0 and cls["motorcycle"]["counted"] == 0

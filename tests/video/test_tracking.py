from __future__ import annotations

import numpy as np

from video.detections import Detections
from video.tracking import Tracker, TrackerConfig


def _box(cx: float, cy: float, w: float = 30, h: float = 20) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_ids_survive_a_brief_occlusion_and_neighbours_do_not_swap() -> None:
    tracker = Tracker()
    fps = 25.0
    ids_a: set[int] = set()
    ids_b: set[int] = set()
    for k in range(40):
        t = k / fps
        a = (20 + 4 * k, 50.0)  # moving right at 100 px/s
        b = (300 - 4 * k, 90.0)  # moving left in the lane below
        boxes = [_box(*b)] if 15 <= k < 19 else [_box(*a), _box(*b)]  # a hidden 4 frames
        out = tracker.update(Detections(xyxy=boxes), t)
        for tid, (_, cy) in zip(out.tracker_id, out.centroid, strict=True):
            (ids_a if cy < 70 else ids_b).add(int(tid))
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_tracks_expire_and_classes_are_voted() -> None:
    tracker = Tracker()
    for k in range(5):
        cls = [1] if k != 2 else [0]
        tracker.update(Detections(xyxy=[_box(10 + 5 * k, 10)], class_id=cls), k * 0.04)
    assert tracker.class_of(tracker.ids).tolist() == [1]
    tracker.update(Detections.empty(), 5.0)  # long gap: the track is gone
    assert len(tracker) == 0
    out = tracker.update(Detections(xyxy=[_box(200, 200)]), 5.04)
    assert out.tracker_id.tolist() == [2]


def _last_car_ids(tracker: Tracker) -> set[int]:
    # five cars at 300 px/s seen at 25 fps teach the flow; a sixth is seen at 5 fps (60 px/step)
    for car in range(5):
        for k in range(25):
            tracker.update(Detections(xyxy=[_box(20 + 12 * k, 100)]), car * 10.0 + k * 0.04)
    seen: set[int] = set()
    for k in range(5):
        out = tracker.update(Detections(xyxy=[_box(20 + 60 * k, 100)]), 60.0 + k * 0.2)
        seen.update(out.tracker_id.tolist())
    return seen


def test_learned_flow_prior_links_fast_vehicles_at_low_frame_rate() -> None:
    with_prior = Tracker()
    assert len(_last_car_ids(with_prior)) == 1
    np.testing.assert_allclose(with_prior.vel[0], [300.0, 0.0], atol=1.0)
    without = Tracker(TrackerConfig(flow_cell=0))
    assert len(_last_car_ids(without)) > 1


def test_two_wheeler_class_needs_three_quarters_of_the_votes() -> None:
    # a car whose blob is two-wheeler-sized (class 2) on 3 of its 5 frames (cut by the frame
    # edge, dark) stays a car; a track two-wheeler-sized on every frame is a two-wheeler
    tracker = Tracker()
    for k, classes in enumerate(([2, 2], [2, 2], [0, 2], [0, 2], [2, 2])):
        out = tracker.update(Detections(xyxy=[_box(10 + 5 * k, 10), _box(10 + 5 * k, 150)], class_id=classes), k * 0.04)
    assert out.class_id.tolist() == [0, 2] and tracker.class_of(out.tracker_id).tolist() == [0, 2]
    majority = Tracker(TrackerConfig(small_share=0.5))
    for k in range(5):
        out = majority.update(Detections(xyxy=[_box(10 + 5 * k, 10)], class_id=[2 if k != 2 else 0]), k * 0.04)
    assert out.class_id.tolist() == [2]
    plain = Tracker(TrackerConfig(small_class=-1))
    for k, c in enumerate((2, 2, 0, 0, 2)):
        out = plain.update(Detections(xyxy=[_box(10 + 5 * k, 10)], class_id=[c]), k * 0.04)
    assert out.class_id.tolist() == [2]

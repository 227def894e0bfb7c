from __future__ import annotations

import numpy as np
import pytest

from video.counting import LineCounter, ZoneCounter
from video.detections import Detections


def _dets(points: list[tuple[float, float]], ids: list[int], cls: list[int] | None = None) -> Detections:
    xyxy = [[x - 5, y - 5, x + 5, y + 5] for x, y in points]
    return Detections(xyxy=xyxy, tracker_id=ids, class_id=cls if cls is not None else [0] * len(ids))


def test_direction_convention_and_once_per_track() -> None:
    line = LineCounter((0, 100), (200, 100))  # drawn left to right: `in` = moving down
    ys = [80, 95, 105, 120, 99, 101, 130]  # crosses down, back up, down again
    for y in ys:
        line.trigger(_dets([(50, y)], [7]))
    assert (line.in_count, line.out_count) == (1, 0)
    up = LineCounter((0, 100), (200, 100))
    for y in [120, 90]:
        _, cout = up.trigger(_dets([(50, y)], [3], [1]))
    assert (up.in_count, up.out_count) == (0, 1) and cout.tolist() == [True]
    assert up.by_class == {"in": {}, "out": {1: 1}}
    reverse = LineCounter((200, 100), (0, 100))  # drawn right to left: `in` = moving up
    for y in [120, 90]:
        reverse.trigger(_dets([(50, y)], [3]))
    assert reverse.in_count == 1


def test_crossing_outside_the_segment_and_untracked_are_ignored() -> None:
    line = LineCounter((0, 100), (100, 100))
    for y in [80, 120]:
        line.trigger(_dets([(150, y), (50, y)], [1, -1]))
    assert line.in_count == 0 and line.out_count == 0
    for y in [80, 120]:
        line.trigger(_dets([(50, y)], [2]))
    assert line.in_count == 1


def test_many_tracks_in_one_update_and_memory_across_gaps() -> None:
    line = LineCounter((0, 100), (1000, 100), max_gap=5)
    ids = list(range(50))
    line.trigger(_dets([(10 + 15 * i, 90) for i in ids], ids))
    line.trigger(_dets([], []))  # everyone occluded for one frame
    cin, _ = line.trigger(_dets([(10 + 15 * i, 110) for i in ids], ids))
    assert cin.sum() == 50 and line.in_count == 50
    assert line.occupied(_dets([(10, 100)], [1])) and not line.occupied(_dets([(10, 300)], [1]))
    with pytest.raises(ValueError, match="coincide"):
        LineCounter((1, 1), (1, 1))


def test_zone_occupancy_and_dwell() -> None:
    zone = ZoneCounter([(0, 0), (100, 0), (100, 100), (0, 100)], anchor="center")
    for k in range(10):
        inside = zone.trigger(_dets([(50, 50), (500, 500)], [1, 2]), k * 0.5)
        assert inside.tolist() == [True, False] and zone.occupancy == 1
    zone.trigger(_dets([(500, 50)], [1]), 5.0)  # track 1 left
    assert zone.occupancy == 0
    np.testing.assert_allclose(zone.dwell_s, [4.5])
    with pytest.raises(ValueError):
        ZoneCounter([(0, 0), (1, 1)])


def test_occupancy_is_exact_for_long_lines_and_small_boxes() -> None:
    diagonal = LineCounter((0, 0), (1000, 500))
    assert diagonal.occupied(_dets([(600, 300)], [1]))  # box 595..605 x 295..305 holds (600, 300)
    assert not diagonal.occupied(_dets([(600, 330)], [1]))
    vertical = LineCounter((50, 0), (50, 1000))
    assert vertical.occupied(_dets([(53, 700)], [1])) and not vertical.occupied(_dets([(70, 700)], [1]))
    assert not vertical.occupied(_dets([(50, 1010)], [1]))

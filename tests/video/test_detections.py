from __future__ import annotations

import numpy as np
import pytest

from video.detections import Detections, PerspectiveSize, blobs_to_detections, merge_fragments


def test_detections_validate_once_and_select() -> None:
    d = Detections(xyxy=[[0, 0, 10, 20], [5, 5, 7, 9]])
    assert len(d) == 2
    np.testing.assert_allclose(d.area, [200, 8])
    np.testing.assert_allclose(d.centroid, [[5, 10], [6, 7]])
    assert d.class_id.tolist() == [-1, -1] and d.tracker_id.tolist() == [-1, -1]
    sub = d[np.array([False, True])]
    assert len(sub) == 1 and sub.xyxy.tolist() == [[5, 5, 7, 9]]
    with pytest.raises(ValueError, match="class_id has 3 entries"):
        Detections(xyxy=[[0, 0, 1, 1], [0, 0, 2, 2]], class_id=[0, 1, 2])
    with pytest.raises(ValueError, match="x2 >= x1"):
        Detections(xyxy=[[5, 0, 1, 1]])
    with pytest.raises(ValueError, match="non-finite"):
        Detections(xyxy=[[0, 0, np.nan, 1]])
    assert len(Detections.empty()) == 0


def test_blobs_with_size_and_perspective_filters() -> None:
    mask = np.zeros((240, 320), np.uint8)
    mask[10:14, 100:104] = 255  # 16 px, far (top): a small far car
    mask[200:204, 100:104] = 255  # 16 px near the camera: noise
    mask[150:190, 200:250] = 255  # 2000 px near: a car
    dets = blobs_to_detections(mask, min_area=10)
    assert len(dets) == 3
    persp = PerspectiveSize(y_far=10, area_far=60, y_near=220, area_near=2000)
    kept = blobs_to_detections(mask, min_area=10, perspective=persp, min_car_fraction=0.15)
    assert sorted(kept.area.tolist()) == [16.0, 2000.0]
    assert kept.xyxy[:, 3].min() == 14  # the far one survived, the near speck did not
    # scale maps model pixels to frame pixels
    scaled = blobs_to_detections(mask, min_area=10, scale=2.0)
    assert sorted(scaled.area.tolist()) == [64.0, 64.0, 8000.0]
    assert scaled.xyxy.max() == 500.0


def test_perspective_size_grows_with_row() -> None:
    p = PerspectiveSize(y_far=0, area_far=100, y_near=100, area_near=400)
    np.testing.assert_allclose(p.expected_area([0, 50, 100]), [100, 225, 400])
    np.testing.assert_allclose(p.scaled(2).expected_area([100]), [900])
    with pytest.raises(ValueError):
        PerspectiveSize(5, 10, 5, 20)


def test_fragments_of_one_vehicle_are_joined_but_neighbouring_cars_are_not() -> None:
    p = PerspectiveSize(y_far=0.0, area_far=400.0, y_near=100.0, area_near=400.0)  # a car is 20x20 px everywhere
    dets = Detections(
        xyxy=[[10, 10, 30, 20], [12, 24, 28, 32],  # a car split in two pieces 4 px apart (0.5 + 0.32 of a car)
              [60, 10, 80, 30], [60, 33, 80, 53],  # two whole cars 3 px apart
              [100, 10, 106, 16], [113, 10, 119, 16],  # two specks 7 px apart (gap 0.35 of a car side)
              [150, 10, 190, 50], [150, 52, 158, 58]],  # a truck-sized blob and a speck 2 px below it
        area=[200, 128, 400, 400, 36, 36, 1600, 48],
    )
    out = merge_fragments(dets, p, small_max=0.4, merged_max=2.2, gap=0.3)
    order = np.argsort(out.xyxy[:, 0] * 1000 + out.xyxy[:, 1])
    np.testing.assert_array_equal(out.xyxy[order], [[10, 10, 30, 32], [60, 10, 80, 30], [60, 33, 80, 53],
                                                    [100, 10, 106, 16], [113, 10, 119, 16], [150, 10, 190, 50],
                                                    [150, 52, 158, 58]])
    np.testing.assert_array_equal(out.area[order], [328, 400, 400, 36, 36, 1600, 48])
    assert len(merge_fragments(dets[:2], p, gap=0.1)) == 2  # 4 px is more than 0.1 of a car side
    assert len(merge_fragments(Detections.empty(), p)) == 0

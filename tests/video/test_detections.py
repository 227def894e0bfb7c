from __future__ import annotations

import numpy as np
import pytest

from video.detections import Detections, PerspectiveSize, blobs_to_detections


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

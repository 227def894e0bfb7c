from __future__ import annotations

import numpy as np
import pytest

from video.classify import (
    CLASS_NAMES,
    DetectorBackend,
    SizeClassifier,
    class_name,
    decode_yolo_output,
)
from video.detections import Detections, PerspectiveSize


def test_size_classes_follow_perspective() -> None:
    persp = PerspectiveSize(y_far=0, area_far=100, y_near=200, area_near=1600)
    clf = SizeClassifier(persp)
    # bottom rows 100 (car area 625) and 200 (car area 1600)
    boxes = [[0, 75, 25, 100], [0, 160, 40, 200], [0, 185, 15, 200], [0, 140, 80, 200]]
    out = clf(Detections(xyxy=boxes))
    assert [class_name(c) for c in out.class_id] == ["car", "car", "motorcycle", "truck_bus"]
    assert class_name(-1) == "unknown" and CLASS_NAMES[1] == "truck_bus"
    with pytest.raises(ValueError):
        SizeClassifier(persp, motorcycle_max=1.5)


def test_decode_yolo_v8_output_with_nms_and_class_map() -> None:
    # (1, 4 + 3 classes, 3 candidates): two overlapping cars, one ignored class
    out = np.zeros((1, 7, 3), np.float32)
    out[0, :4, 0] = [320, 320, 100, 60]
    out[0, 4, 0] = 0.9
    out[0, :4, 1] = [322, 321, 100, 60]
    out[0, 4, 1] = 0.8
    out[0, :4, 2] = [100, 100, 20, 20]
    out[0, 6, 2] = 0.95  # model class 2 is not mapped
    dets = decode_yolo_output(out, input_size=(640, 640), frame_size=(320, 320), class_map={0: 0, 1: 1}, channels_first=True)
    assert len(dets) == 1
    np.testing.assert_allclose(dets.xyxy[0], [135, 145, 185, 175])
    assert dets.class_id.tolist() == [0] and dets.confidence[0] == pytest.approx(0.9)


def test_detector_backend_protocol() -> None:
    class Fixed:
        def detect(self, frame: np.ndarray) -> Detections:
            return Detections(xyxy=[[0, 0, 1, 1]])

    assert isinstance(Fixed(), DetectorBackend)

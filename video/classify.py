"""Vehicle classes: car, truck/bus, motorcycle by calibrated size; optional ONNX detector.

The size classifier divides each blob's area by the typical car area at its image row
(:class:`video.detections.PerspectiveSize`) and thresholds the ratio. A
:class:`DetectorBackend` can replace background subtraction altogether when the user has a
trained model; :class:`OnnxDetector` runs a YOLO-style ONNX export through ``cv2.dnn``. No
model ships with the platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from video.detections import Detections, PerspectiveSize

__all__ = [
    "CLASS_NAMES",
    "DetectorBackend",
    "OnnxDetector",
    "SizeClassifier",
    "class_name",
    "decode_yolo_output",
]

CLASS_NAMES: tuple[str, ...] = ("car", "truck_bus", "motorcycle")
"""Vehicle classes, indexed by ``class_id``."""
_CAR, _TRUCK, _MOTO = 0, 1, 2


def class_name(class_id: int) -> str:
    """Name of a class id (``"unknown"`` for -1 or out of range)."""
    return CLASS_NAMES[class_id] if 0 <= class_id < len(CLASS_NAMES) else "unknown"


@dataclass(frozen=True)
class SizeClassifier:
    """Classify blobs by their area relative to a typical car at the same image row.

    Attributes
    ----------
    perspective : PerspectiveSize
        Typical car area as a function of row, frame pixels².
    motorcycle_max : float
        Area ratios below this are motorcycles (unitless).
    truck_min : float
        Area ratios above this are trucks/buses (unitless).
    """

    perspective: PerspectiveSize
    motorcycle_max: float = 0.4
    truck_min: float = 2.2

    def __post_init__(self) -> None:
        if not 0 < self.motorcycle_max < 1 < self.truck_min:
            raise ValueError("need 0 < motorcycle_max < 1 < truck_min")

    def ratio(self, detections: Detections) -> npt.NDArray[np.float64]:
        """Area ÷ typical car area at each box's bottom row (unitless)."""
        return detections.area / self.perspective.expected_area(detections.xyxy[:, 3])

    def __call__(self, detections: Detections) -> Detections:
        """Return ``detections`` with ``class_id`` set (0 car, 1 truck_bus, 2 motorcycle)."""
        r = self.ratio(detections)
        cls = np.full(len(detections), _CAR, dtype=np.int64)
        cls[r >= self.truck_min] = _TRUCK
        cls[r < self.motorcycle_max] = _MOTO
        return detections.with_(class_id=cls)


@runtime_checkable
class DetectorBackend(Protocol):
    """Anything that turns a BGR frame into :class:`Detections` (frame pixels)."""

    def detect(self, frame: npt.NDArray[np.uint8]) -> Detections: ...


def decode_yolo_output(
    output: npt.NDArray[np.float32],
    *,
    input_size: tuple[int, int],
    frame_size: tuple[int, int],
    class_map: Mapping[int, int],
    confidence: float = 0.35,
    nms_iou: float = 0.5,
    channels_first: bool | None = None,
) -> Detections:
    """Decode a YOLOv5/v8-style output tensor into :class:`Detections`.

    Parameters
    ----------
    output : ndarray
        ``(1, 4 + C, N)`` (v8) or ``(1, N, 4 + C)`` rows of ``cx, cy, w, h`` in input pixels
        followed by C class scores (a v5 objectness column is not supported).
    input_size, frame_size : (w, h)
        Network input and original frame sizes, pixels.
    class_map : mapping
        Model class index → our class id; other model classes are dropped.
    confidence, nms_iou : float
        Score threshold and non-maximum-suppression IoU (0..1).
    channels_first : bool, optional
        ``True`` for ``(4 + C, N)``; ``None`` guesses from the shape (real models have far
        more candidates N than channels).
    """
    out = np.asarray(output, dtype=np.float32)
    out = out.reshape(out.shape[-2], out.shape[-1])
    if channels_first if channels_first is not None else out.shape[0] < out.shape[1]:
        out = out.T  # (4 + C, N) → (N, 4 + C)
    scores = out[:, 4:]
    best = scores.argmax(axis=1)
    score = scores[np.arange(len(out)), best]
    wanted = np.isin(best, np.fromiter(class_map.keys(), dtype=np.int64)) & (score >= confidence)
    out, best, score = out[wanted], best[wanted], score[wanted]
    if not len(out):
        return Detections.empty()
    sx, sy = frame_size[0] / input_size[0], frame_size[1] / input_size[1]
    cx, cy, w, h = (out[:, 0] * sx, out[:, 1] * sy, out[:, 2] * sx, out[:, 3] * sy)
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    kept = cv2.dnn.NMSBoxes(boxes.tolist(), score.tolist(), confidence, nms_iou)
    keep = np.asarray(kept, dtype=np.int64).reshape(-1)
    xyxy = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]], axis=1)
    ours = np.array([class_map[int(b)] for b in best[keep]], dtype=np.int64)
    return Detections(xyxy=xyxy[keep], class_id=ours, confidence=score[keep])


class OnnxDetector:
    """A YOLO-style ONNX model run with ``cv2.dnn`` (used only when the user supplies one).

    Parameters
    ----------
    model_path : Path
        ``.onnx`` file exported from a detector with output ``(1, 4 + C, N)``.
    class_map : mapping
        Model class index → our class id, e.g. COCO ``{2: 0, 5: 1, 7: 1, 3: 2}``.
    input_size : (w, h)
        Network input size, pixels.
    confidence : float
        Minimum class score, 0..1.
    """

    def __init__(
        self,
        model_path: Path,
        class_map: Mapping[int, int],
        input_size: tuple[int, int] = (640, 640),
        confidence: float = 0.35,
    ) -> None:
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"ONNX model not found: {model_path}")
        self.net = cv2.dnn.readNetFromONNX(str(model_path))
        self.class_map = dict(class_map)
        self.input_size = input_size
        self.confidence = confidence

    def detect(self, frame: npt.NDArray[np.uint8]) -> Detections:
        blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, self.input_size, swapRB=True, crop=False)
        self.net.setInput(blob)
        output = self.net.forward()
        h, w = frame.shape[:2]
        return decode_yolo_output(
            np.asarray(output), input_size=self.input_size, frame_size=(w, h),
            class_map=self.class_map, confidence=self.confidence,
        )

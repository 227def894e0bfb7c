"""Annotated snapshots: lines, tracked boxes with ids/classes and running counts on a frame."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from video.classify import class_name
from video.pipeline import CountingPipeline

__all__ = ["annotate", "encode_jpeg"]

_COLORS = np.array([[66, 135, 245], [245, 96, 66], [66, 245, 135], [200, 66, 245], [245, 215, 66]], dtype=np.int64)


def annotate(image: npt.NDArray[np.uint8], pipeline: CountingPipeline) -> npt.NDArray[np.uint8]:
    """Return a copy of ``image`` with the pipeline's lines, last tracks and counts drawn."""
    out = image.copy()
    for line in pipeline.lines:
        a = tuple(int(v) for v in line.start)
        b = tuple(int(v) for v in line.end)
        cv2.arrowedLine(out, a, b, (0, 255, 255), 2, tipLength=0.03)
        label = f"{line.line_id} in {line.in_count} out {line.out_count}"
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        left = a if a[0] <= b[0] else b
        org = (int(np.clip(left[0] + 2, 0, max(out.shape[1] - tw - 2, 0))), max(left[1] - 6, 12))
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3)
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
    for zone in pipeline.zones:
        pts = np.asarray(zone.polygon.exterior.coords, dtype=np.int32)
        cv2.polylines(out, [pts], True, (255, 0, 255), 1)
    result = pipeline.last
    if result is not None:
        dets = result.detections
        for (x1, y1, x2, y2), tid, cls in zip(dets.xyxy.astype(int).tolist(), dets.tracker_id.tolist(), dets.class_id.tolist(), strict=True):
            color = tuple(int(c) for c in _COLORS[tid % len(_COLORS)])
            cv2.rectangle(out, (x1, y1), (x2, y2), color, 1)
            cv2.putText(out, f"#{tid} {class_name(cls)}", (x1, max(y1 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1)
    return out


def encode_jpeg(image: npt.NDArray[np.uint8], quality: int = 80) -> bytes:
    """JPEG bytes of a BGR image (``quality`` 1..100)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())

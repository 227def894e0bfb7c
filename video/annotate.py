"""Annotated snapshots: lines, tracked boxes with ids/classes (and speeds, km/h, when calibrated) and running
counts; for a camera with a people model, the people density, the people counted per zone and the people
lines with their running crossings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from video.classify import class_name
from video.people import PeopleEstimate
from video.pipeline import CountingPipeline

__all__ = ["annotate", "annotate_people", "encode_jpeg"]

_COLORS = np.array([[66, 135, 245], [245, 96, 66], [66, 245, 135], [200, 66, 245], [245, 215, 66]], dtype=np.int64)


def annotate(image: npt.NDArray[np.uint8], pipeline: CountingPipeline, tracks: bool = True) -> npt.NDArray[np.uint8]:
    """Return a copy of ``image`` with the pipeline's lines, last tracks (unless ``tracks`` is
    false: a pedestrian camera's blobs are people, not vehicles) and counts drawn."""
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
    if result is not None and tracks:
        dets = result.detections
        kmh = pipeline.speeds.speed_kmh(dets.tracker_id) if pipeline.speeds is not None else np.full(len(dets), np.nan)
        for (x1, y1, x2, y2), tid, cls, v in zip(dets.xyxy.astype(int).tolist(), dets.tracker_id.tolist(), dets.class_id.tolist(),
                                                 kmh.tolist(), strict=True):
            color = tuple(int(c) for c in _COLORS[tid % len(_COLORS)])
            cv2.rectangle(out, (x1, y1), (x2, y2), color, 1)
            label = f"#{tid} {class_name(cls)}" + (f" {v:.0f} km/h" if np.isfinite(v) else "")
            cv2.putText(out, label, (x1, max(y1 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1)
    return out


def _label(out: npt.NDArray[np.uint8], text: str, org: tuple[int, int], color: tuple[int, int, int], scale: float = 0.45) -> None:
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1)


def annotate_people(image: npt.NDArray[np.uint8], estimate: PeopleEstimate,
                    lines: Sequence[tuple[str, tuple[float, float, float, float]]] = (),
                    crossed: Mapping[tuple[str, str], float] | None = None) -> npt.NDArray[np.uint8]:
    """Return a copy of ``image`` with the people density (red, stronger where more people per
    cell), the people counted in the whole view and per zone, and each people line with the
    people who crossed it so far (``crossed``: ``{(line_id, "in" | "out"): people}``)."""
    out = image.copy()
    h, w = out.shape[:2]
    dens = np.clip(np.asarray(estimate.density, dtype=np.float32), 0.0, 1.0)  # 1 person per cell: full red
    heat = cv2.resize(dens, (w, h), interpolation=cv2.INTER_NEAREST)[..., None]
    red = np.zeros_like(out)
    red[..., 2] = 255
    out = (out * (1 - 0.5 * heat) + red * 0.5 * heat).astype(np.uint8)
    _label(out, f"people {estimate.count:.1f}", (6, 18), (255, 255, 255), 0.55)
    for i, (zone, n) in enumerate(sorted(estimate.zones.items())):
        _label(out, f"{zone} {n:.1f}", (6, 38 + 18 * i), (0, 255, 255))
    for line_id, (x1, y1, x2, y2) in lines:
        a, b = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.arrowedLine(out, a, b, (0, 255, 0), 2, tipLength=0.03)
        got = crossed or {}
        text = f"{line_id} in {got.get((line_id, 'in'), 0.0):.1f} out {got.get((line_id, 'out'), 0.0):.1f}"
        left = a if a[0] <= b[0] else b
        _label(out, text, (int(np.clip(left[0] + 2, 0, max(w - 160, 0))), max(left[1] - 6, 12)), (0, 255, 0))
    return out


def encode_jpeg(image: npt.NDArray[np.uint8], quality: int = 80) -> bytes:
    """JPEG bytes of a BGR image (``quality`` 1..100)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())
